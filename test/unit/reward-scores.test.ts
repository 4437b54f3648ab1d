// One sign convention per label: every reward's loss reads back as the score `reno score` prints (scoreFromLoss, the
// one place that relation lives), the progress line shows every active reward's score with the seconds per step and
// an ETA, and progress and `reno score` print the same CLIP value for the same image.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { RewardInput, scoreFromLoss } from '../../rewards/index.js';
import { loadRewards } from '../../rewards/load.js';
import { modelPlaces, personalOptions } from '../../src/commands/common.js';
import { scoreTable } from '../../src/commands/score.js';
import { resolveConfig } from '../../src/config/run-config.js';
import { readImage } from '../../src/image/png.js';
import { gaussian } from '../../src/optimize/noise.js';
import { fmtDuration, progress, stepStatus } from '../../src/util/progress.js';
import { openSession, rewardContext, runGeneration } from '../../src/run/session.js';
import { runReport } from '../../src/report/html.js';
import { backend, ROOT, tmpDir } from '../helpers.js';

const HISTORY = path.join(ROOT, 'examples', 'history.json');
const NAMES = ['imagereward', 'aesthetic', 'pickscore', 'clip', 'hpsv2', 'personal'];

function image(seed: number, size = 64): tf.Tensor4D {
  return tf.tensor4d(
    gaussian(size * size * 3, `scores:${seed}`).map((x) => Math.min(1, Math.max(0, 0.5 + 0.25 * x))),
    [1, size, size, 3],
  );
}
const read = (t: tf.Scalar) => {
  const v = t.dataSync()[0];
  t.dispose();
  return v;
};

test("scoreFromLoss turns every tiny reward's loss into its score (personal with like and with dislike guidance)", async () => {
  await backend('cpu');
  for (const guidance of ['like', 'dislike'] as const) {
    const ctx = rewardContext(modelPlaces({ preset: 'tiny' }), personalOptions(HISTORY, guidance, 3));
    const rewards = await loadRewards(guidance === 'like' ? NAMES : ['personal'], ctx);
    const img = image(1);
    const input = new RewardInput(img);
    try {
      for (const [name, r] of rewards) {
        const p = r.prepare('a red fox on a hill');
        const loss = read(p.loss(input));
        const score = read(p.score(input));
        p.dispose();
        const back = scoreFromLoss(name, loss, r);
        assert.ok(
          Math.abs(back - score) <= 1e-4 * (1 + Math.abs(score)),
          `${name} (${guidance}): loss ${loss} reads back as ${back}, score() is ${score}`,
        );
      }
    } finally {
      input.dispose();
      img.dispose();
      for (const r of rewards.values()) r.dispose();
    }
  }
});

test('the progress line shows every active reward (personal included) as a score, the loss labelled, s/step and ETA', () => {
  const scores = Object.fromEntries(NAMES.map((n, i) => [n, i - 2.5]));
  const line = stepStatus({ total: 12.5, scores }, { done: 3, total: 10, seconds: [5, 2, 2.2] });
  for (const n of NAMES) assert.match(line, new RegExp(`\\b${n} ${scores[n].toFixed(4).replace('.', '\\.')}\\b`), `${n} missing: ${line}`);
  assert.match(line, /^loss 12\.50? /);
  assert.match(line, /score: /);
  assert.match(line, /2\.10 s\/step/); // the first step (warm-up) left out of the mean once there are others
  assert.match(line, /ETA 15s$/); // 7 steps left x 2.1 s
  assert.equal(fmtDuration(75), '1:15');
  assert.equal(fmtDuration(3725), '1:02:05');
  assert.match(stepStatus({ total: 1, scores: {} }, { done: 1, total: 4, seconds: [3] }), /3\.00 s\/step, ETA 9s/);
});

/** A stream that collects what the progress writes (not a TTY: one plain line per step). */
function collector(): { stream: NodeJS.WriteStream; text: () => string } {
  let text = '';
  const w = new Writable({
    write(chunk, _enc, cb) {
      text += String(chunk);
      cb();
    },
  });
  return { stream: Object.assign(w, { isTTY: false }) as unknown as NodeJS.WriteStream, text: () => text };
}

test("the same image's CLIP value: the progress line and `reno score`'s table print the same number with the same sign", async () => {
  await backend('wasm');
  const session = await openSession({ places: modelPlaces({ preset: 'tiny' }), generator: 'sd-turbo', rewards: ['clip'], backend: 'wasm' });
  const c = collector();
  try {
    const config = resolveConfig({
      overrides: { prompt: 'a red fox', optimize: false, weights: { imagereward: 0, aesthetic: 0, pickscore: 0, clip: 1 } },
    });
    const dir = path.join(tmpDir(), 'run');
    const out = await runGeneration(session, config, ['clip'], dir, { stream: c.stream, label: 'run' });
    assert.equal(out.result.records.length, 1);
    const m = /\bclip (-?\d+\.\d+)/.exec(c.text());
    assert.ok(m, `no clip value in the progress: ${c.text()}`);
    const p = session.rewards.get('clip')!.prepare('a red fox');
    // what `reno score` reads: the PNG the run wrote (8-bit, so within a rounding of the step's own image)
    const shown = await readImage(path.join(dir, 'init.png'));
    const input = new RewardInput(shown);
    const score = read(p.score(input));
    input.dispose();
    p.dispose();
    shown.dispose();
    const table = scoreTable([{ image: 'x.png', prompt: 'a red fox', scores: { clip: score }, stored: null }], ['clip']);
    const printed = Number(table[1].trim().split(/\s+/)[1]);
    assert.equal(Math.sign(Number(m[1])), Math.sign(printed), `progress ${m[1]} vs score ${printed}`);
    assert.ok(Math.abs(Number(m[1]) - printed) < 0.01 * (1 + Math.abs(printed)), `progress ${m[1]} vs score ${printed}`);
    // the report's per-reward chart names the quantity it plots
    const html = await runReport({ title: 't', prompt: 'p', images: [], records: out.result.records, weights: { clip: 1 }, config: {}, notes: [] });
    assert.match(html, /clip score \(weight 1; higher is better\)/);
    assert.match(html, /weighted reward loss \(lower is better\)/);
    assert.doesNotMatch(html, /<h2>Rewards per step<\/h2>/);
  } finally {
    session.dispose();
  }
});

/**
 * What a terminal `width` columns wide (and tall enough never to scroll) shows for `out`: rows of text, a row that
 * wrapped joined to the next. With auto-wrap off (ESC[?7l, as cli-progress sets it while a bar runs) characters past
 * the margin overwrite the last column; ESC 7 / ESC 8 save and restore the cursor.
 */
function screen(out: string, width: number): string[] {
  const rows: { text: string[]; joinNext: boolean }[] = [];
  let r = 0;
  let col = 0;
  let wrap = true;
  let saved = { r: 0, col: 0 };
  const row = () => {
    while (rows.length <= r) rows.push({ text: [], joinNext: false });
    return rows[r];
  };
  for (let i = 0; i < out.length; i++) {
    const ch = out[i];
    if (ch === '\x1b') {
      if (out[i + 1] === '7' || out[i + 1] === '8') {
        if (out[i + 1] === '7') saved = { r, col };
        else ({ r, col } = saved);
        i++;
        continue;
      }
      const m = /^\x1b\[(\??)([0-9;]*)([A-Za-z])/.exec(out.slice(i));
      if (!m) continue;
      if (m[1] === '?' && m[2] === '7') wrap = m[3] === 'h';
      else if (m[3] === 'K') row().text.length = m[2] === '2' ? 0 : Math.min(row().text.length, col);
      else if (m[3] === 'G') col = Math.max(0, Number(m[2] || 1) - 1);
      i += m[0].length - 1;
    } else if (ch === '\r') col = 0;
    else if (ch === '\n') {
      r++;
      col = 0;
    } else {
      if (col >= width) {
        if (wrap) {
          row().joinNext = true;
          r++;
          col = 0;
        } else col = width - 1;
      }
      row().text[col++] = ch;
    }
  }
  const lines: string[] = [];
  let acc = '';
  for (const r of rows) {
    acc += Array.from(r.text, (c) => c ?? ' ').join('');
    if (!r.joinNext) {
      lines.push(acc);
      acc = '';
    }
  }
  return lines;
}

test('on a narrow terminal the bar keeps every reward: a status wider than the terminal is shown whole above the bar', () => {
  const c = collector();
  Object.assign(c.stream, { isTTY: true, columns: 80 });
  const bar = progress({ total: 30, label: '20261207-230853-a-red-fox', stream: c.stream });
  const status = stepStatus({ total: 138.74, scores: Object.fromEntries(NAMES.map((n) => [n, 1.5])) }, { done: 1, total: 30, seconds: [2] });
  const status2 = status.replace('138.74', '120.00');
  bar.update(1, status);
  bar.update(2, status2);
  bar.stop();
  c.stream.write('reno: the next line\n'); // what the command prints after the bar must not overwrite the statuses
  const shown = screen(c.text(), 80);
  for (const s of [status, status2])
    assert.ok(
      shown.some((l) => l.includes(s)),
      `the terminal does not show the whole status:\n${shown.join('\n')}`,
    );
  assert.ok(
    shown.some((l) => l.startsWith('reno: the next line')),
    shown.join('\n'),
  );
  // a short status stays on the bar's own line
  const d = collector();
  Object.assign(d.stream, { isTTY: true, columns: 200 });
  const wide = progress({ total: 30, label: 'run', stream: d.stream });
  wide.update(1, status);
  wide.stop();
  assert.ok(
    screen(d.text(), 200).some((l) => l.includes('1/30 ' + status)),
    screen(d.text(), 200).join('\n'),
  );
});
