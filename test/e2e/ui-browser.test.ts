// `reno ui` in headless Chromium (playwright-core, as the report test) on the tiny preset: rate pairs with the
// keyboard and undo, generate with live progress and the best image, open the run in the gallery and its report;
// the queue, Stop, a closed browser mid-run; the token, Origin and Host checks; bad input (empty prompt, a history
// that is not JSON, a port in use). RENO_UI_SCREENSHOTS=DIR saves the three pages as PNGs (the README's pictures).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { startUi } from '../../src/commands/ui.js';
import { readHistory } from '../../src/data/history.js';
import { RenoError } from '../../src/errors.js';
import type { UiServer } from '../../src/ui/server.js';
import { launchChromium, NO_CHROMIUM, ROOT, tmpDir } from '../helpers.js';

const SHOTS = process.env.RENO_UI_SCREENSHOTS;

function request(
  url: string,
  o: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const r = http.request(url, { method: o.method ?? 'GET', headers: o.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    r.on('error', reject);
    r.end(o.body);
  });
}

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 180_000): Promise<void> {
  const t0 = Date.now();
  while (!(await ok())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function start(dir: string, extra: Parameters<typeof startUi>[0] = {}): Promise<{ ui: UiServer; log: string[] }> {
  const log: string[] = [];
  const ui = await startUi({
    preset: 'tiny',
    backend: 'wasm',
    port: 0,
    history: path.join(dir, 'history.json'),
    outputs: path.join(dir, 'outputs'),
    log: (l) => log.push(l),
    stdout: () => {},
    ...extra,
  });
  return { ui, log };
}

let browser: Browser;
before(async () => {
  if (!NO_CHROMIUM) browser = await launchChromium();
});
after(async () => {
  await browser?.close();
});

async function shot(page: Page, name: string, fullPage = false): Promise<void> {
  if (!SHOTS) return;
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, name), fullPage });
}

/** The part of the page's DOM the waits read (this project's TypeScript has no DOM library). The waits are functions,
 * not strings: a string predicate is evaluated with eval, which the page's CSP refuses once polling starts. */
interface PageElement {
  naturalWidth: number;
  innerText: string;
}
interface PageDoc {
  getElementById(id: string): PageElement | null;
  querySelectorAll(selector: string): Iterable<PageElement>;
}

test('the token, the Origin and the Host are checked on every request', async () => {
  const dir = tmpDir('reno-ui');
  const { ui } = await start(dir);
  try {
    const base = `http://127.0.0.1:${ui.port}`;
    assert.match(ui.url, new RegExp(`^http://127\\.0\\.0\\.1:${ui.port}/[\\w-]{20,}/$`));
    assert.equal((await request(ui.url + 'api/state')).status, 200);
    // without the token, or with a wrong one: 403, for the page, the API and the files
    for (const p of ['/', '/api/state', '/api/runs', '/runs/x/best.png', `/${'x'.repeat(ui.token.length)}/api/state`])
      assert.equal((await request(base + p)).status, 403, p);
    const post = (headers: Record<string, string>) =>
      request(ui.url + 'api/undo', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{}' });
    assert.equal((await request(base + '/api/undo', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status, 403);
    // another page's request: its Origin, or Sec-Fetch-Site cross-site, is refused even with the token
    const cross = await post({ origin: 'http://evil.example' });
    assert.equal(cross.status, 403);
    assert.match(JSON.parse(cross.body).error, /cross-origin/);
    assert.equal((await request(ui.url + 'api/state', { headers: { origin: 'http://localhost:1' } })).status, 403);
    assert.equal((await request(ui.url + 'api/state', { headers: { 'sec-fetch-site': 'cross-site' } })).status, 403);
    // DNS rebinding: a name that is not this server
    assert.equal((await request(ui.url + 'api/state', { headers: { host: `evil.example:${ui.port}` } })).status, 403);
    // a form post (not JSON) cannot drive it
    assert.equal(
      (await request(ui.url + 'api/generate', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'prompt=x' }))
        .status,
      415,
    );
    // the same origin is fine
    assert.equal((await request(ui.url + 'api/state', { headers: { origin: base, 'sec-fetch-site': 'same-origin' } })).status, 200);
    // nothing outside the outputs root is served
    assert.equal((await request(ui.url + 'runs/..%2Fhistory.json')).status, 404);
    assert.equal(
      (await request(ui.url + 'api/pair', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"prompt":"  "}' })).status,
      400,
    );
  } finally {
    await ui.close();
  }
});

test('a port in use is a clear error (the command, and the CLI with exit 1)', async () => {
  const dir = tmpDir('reno-ui');
  const { ui } = await start(dir);
  try {
    await assert.rejects(
      start(dir, { port: ui.port }),
      (e: unknown) => e instanceof RenoError && new RegExp(`port ${ui.port} on 127\\.0\\.0\\.1 is already in use.*--port`).test(e.message),
    );
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(ROOT, 'src/cli/run.ts'),
        'ui',
        '--preset',
        'tiny',
        '--port',
        String(ui.port),
        '--history',
        path.join(dir, 'h.json'),
        '--outputs',
        path.join(dir, 'o'),
      ],
      { cwd: ROOT, encoding: 'utf8', timeout: 120_000 },
    );
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^reno: port ${ui.port} on 127\\.0\\.0\\.1 is already in use`, 'm'));
    assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/, 'no stack trace');
    assert.equal(r.stdout, '', 'no URL printed');
    assert.equal(fs.existsSync(path.join(dir, 'h.json')), false);
  } finally {
    await ui.close();
  }
});

test('a history that is not valid JSON is shown on the page and never overwritten', { skip: NO_CHROMIUM }, async () => {
  const dir = tmpDir('reno-ui');
  const file = path.join(dir, 'history.json');
  const broken = '{ "user": "alice", "pairs": [ { "prompt": "a cat", ';
  fs.writeFileSync(file, broken);
  const { ui } = await start(dir, { images: path.join(ROOT, 'examples', 'images') });
  const page = await browser.newPage();
  try {
    await page.goto(ui.url);
    await page.waitForSelector('body[data-ready]');
    const banner = page.locator('#histerr');
    await banner.waitFor({ state: 'visible' });
    assert.match(await banner.innerText(), /history\.json: not valid JSON/);
    assert.match(await banner.innerText(), /does not overwrite it/);
    // a pair from the image folder (no model needed): asking for one works, choosing it is refused
    const pair = JSON.parse(
      (
        await request(ui.url + 'api/pair', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"prompt":"x","source":"images"}',
        })
      ).body,
    );
    const r = await request(ui.url + 'api/choice', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ pair: pair.id, choice: 'left' }),
    });
    assert.equal(r.status, 409);
    assert.match(JSON.parse(r.body).error, /not valid JSON/);
    assert.equal((await request(ui.url + 'api/undo', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status, 409);
    assert.equal(await page.locator('#bleft').isDisabled(), true);
    assert.equal(fs.readFileSync(file, 'utf8'), broken, 'the file is untouched');
    assert.deepEqual(fs.readdirSync(dir).sort(), ['history.json'], 'no images copied, no temporary file left');
  } finally {
    await page.close();
    await ui.close();
  }
});

test('rate three pairs with the keyboard, undo one; generate with live progress; open the run in the gallery', { skip: NO_CHROMIUM }, async () => {
  const dir = tmpDir('reno-ui');
  const { ui, log } = await start(dir);
  const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const elsewhere: string[] = [];
  page.context().on('request', (r) => {
    if (!r.url().startsWith(ui.url)) elsewhere.push(r.url());
  });
  try {
    await page.goto(ui.url);
    await page.waitForSelector('body[data-ready][data-live]');
    // bad input: an empty prompt is refused with a message, nothing is queued
    await page.click('#rnext');
    await until('the empty-prompt message', async () => /prompt is empty/.test(await page.locator('#rerr').innerText()));
    await page.fill('#rprompt', 'a lighthouse at dusk');
    await page.press('#rprompt', 'Enter');
    const lefts: Buffer[] = [];
    const rights: Buffer[] = [];
    const keys = ['ArrowLeft', 'ArrowRight', 'ArrowLeft'];
    for (let i = 0; i < keys.length; i++) {
      await page.locator('#rpair').waitFor({ state: 'visible', timeout: 120_000 });
      await page.waitForFunction(() =>
        ['rleft', 'rright'].every((id) => (globalThis as unknown as { document: PageDoc }).document.getElementById(id)!.naturalWidth > 0),
      );
      const srcs = await page.$$eval('#rleft, #rright', (els) => els.map((e) => (e as unknown as { src: string }).src));
      lefts.push(Buffer.from(await (await page.request.get(srcs[0])).body()));
      rights.push(Buffer.from(await (await page.request.get(srcs[1])).body()));
      if (i === 0) await shot(page, 'ui-rate.png');
      await page.locator('#rprompt').blur();
      await page.keyboard.press(keys[i]);
      await page.waitForSelector(`body[data-choices="${i + 1}"]`);
      assert.equal(await page.locator('#status').getAttribute('data-pairs'), String(i + 1));
    }
    await page.keyboard.press('u');
    await page.waitForSelector('body[data-undos="1"]');
    assert.match(await page.locator('#status').innerText(), /^2 pairs in the history/);
    const h = readHistory(path.join(dir, 'history.json')); // validates every field, and that every image exists
    assert.equal(h.pairs.length, 2);
    for (const p of h.pairs) assert.equal(p.prompt, 'a lighthouse at dusk');
    // the keyboard's choice is the one recorded: left, then right
    assert.deepEqual(fs.readFileSync(h.pairs[0].liked), lefts[0]);
    assert.deepEqual(fs.readFileSync(h.pairs[0].disliked), rights[0]);
    assert.deepEqual(fs.readFileSync(h.pairs[1].liked), rights[1]);
    assert.deepEqual(fs.readFileSync(h.pairs[1].disliked), lefts[1]);
    assert.ok(!lefts[0].equals(rights[0]), 'two seeds, two images');
    assert.equal(fs.readdirSync(path.join(dir, 'images')).length, 4, "the undone pair's copies are gone");
    for (const f of fs.readdirSync(dir)) assert.doesNotMatch(f, /\.tmp-/);
    await until('the next pair', () => page.locator('#rpair').isVisible()); // a pair is waiting: leave it

    // generate: empty prompt refused; then a tiny run with live steps and the best image
    await page.click('nav button[data-tab=generate]');
    await page.click('#gstart');
    await until('the empty-prompt message', async () => /prompt is empty/.test(await page.locator('#gerr').innerText()));
    await page.fill('#gprompt', 'a red fox in snow');
    await page.fill('#gsteps', '3');
    await page.fill('#gsize', '64');
    await page.click('#gstart');
    await page.waitForSelector('body[data-done]', { timeout: 180_000 });
    assert.equal(await page.getAttribute('body', 'data-done'), 'done', log.join('\n'));
    assert.ok(Number(await page.getAttribute('body', 'data-steps')) >= 3, 'a step event for every step');
    assert.match(await page.locator('#gstep').innerText(), /^step 3\/3 · loss \d/);
    assert.match(await page.locator('#grewards').innerText(), /clip/);
    await page.waitForFunction(() => (globalThis as unknown as { document: PageDoc }).document.getElementById('gbest')!.naturalWidth === 64);
    assert.match(await page.locator('#gbestcap').innerText(), /best so far: step \d/);
    await shot(page, 'ui-generate.png', true);
    const runs = fs.readdirSync(path.join(dir, 'outputs'));
    assert.equal(runs.length, 1);
    for (const f of ['run.yaml', 'init.png', 'best.png', 'report.html', 'metrics.jsonl'])
      assert.ok(fs.existsSync(path.join(dir, 'outputs', runs[0], f)), f);
    // the best image shown is the run's best.png (the same pixels; the file adds text chunks)
    assert.equal(
      fs
        .readFileSync(path.join(dir, 'outputs', runs[0], 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n').length,
      3,
    );

    // the gallery: the run's card, highlighted, with init and best, and its report.html opens with its images
    await page.click('#ggallery');
    const card = page.locator('.gallery .card.hl');
    await card.waitFor();
    assert.equal(await card.getAttribute('data-name'), runs[0]);
    assert.match(await card.innerText(), /a red fox in snow/);
    await page.waitForFunction(() => {
      const imgs = [...(globalThis as unknown as { document: PageDoc }).document.querySelectorAll('.gallery .card.hl img')];
      return imgs.length === 2 && imgs.every((i) => i.naturalWidth > 0);
    });
    await shot(page, 'ui-browse.png');
    const [report] = await Promise.all([page.context().waitForEvent('page'), card.locator('a').click()]);
    await report.waitForLoadState('load');
    assert.match(report.url(), new RegExp(`/${ui.token}/runs/${runs[0]}/report\\.html$`));
    const imgs = await report.$$eval('img', (els) => els.map((e) => (e as unknown as { naturalWidth: number }).naturalWidth));
    assert.deepEqual(imgs, [64, 64], "report.html's images load through the server");
    await report.close();
    assert.deepEqual(errors, [], 'no script error on the page');
    assert.deepEqual(elsewhere, [], 'every request stays on this server, under the token');
  } finally {
    await page.close();
    await ui.close();
  }
});

test(
  'one job at a time with a visible queue; Stop keeps the best image; a browser closed mid-run does not stop the run',
  { skip: NO_CHROMIUM },
  async () => {
    const dir = tmpDir('reno-ui');
    const { ui, log } = await start(dir);
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await page.goto(ui.url);
      await page.waitForSelector('body[data-ready][data-live]');
      await page.click('nav button[data-tab=generate]');
      await page.fill('#gsize', '64');
      await page.fill('#gprompt', 'a long run');
      await page.fill('#gsteps', '50');
      await page.click('#gstart');
      await page.waitForFunction(() => /running/.test((globalThis as unknown as { document: PageDoc }).document.getElementById('queue')!.innerText));
      // a second request waits in the queue, shown on the page
      const second = JSON.parse(
        (
          await request(ui.url + 'api/generate', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ prompt: 'the next one', steps: 3, size: '64' }),
          })
        ).body,
      );
      await page.waitForFunction(() =>
        /queued generate: the next one/.test((globalThis as unknown as { document: PageDoc }).document.getElementById('queue')!.innerText),
      );
      // Stop = Ctrl-C: after a step the run stops and its folder is complete, with the best image so far
      await page.waitForSelector('body[data-steps]', { timeout: 180_000 });
      await page.click('#gstop');
      await page.waitForSelector('body[data-done]', { timeout: 180_000 });
      assert.equal(await page.getAttribute('body', 'data-done'), 'stopped', log.join('\n'));
      const first = ui.queue.list().find((j) => j.label === 'a long run')!;
      assert.ok(first.dir);
      for (const f of ['run.yaml', 'best.png', 'report.html']) assert.ok(fs.existsSync(path.join(first.dir!, f)), f);
      assert.ok(fs.readFileSync(path.join(first.dir!, 'metrics.jsonl'), 'utf8').trim().split('\n').length < 50);
      // the queued job starts; the browser goes away after its first step; the run still finishes
      await until('the second job to run a step', () => (ui.queue.get(second.id)?.progress?.step ?? 0) >= 1);
      await context.close();
      // a page opened again follows the run (or shows it finished)
      const again = await browser.newPage();
      await again.goto(ui.url);
      await again.waitForSelector('body[data-ready]');
      assert.equal(await again.locator('#gtitle').innerText(), 'the next one');
      await again.close();
      await until('the second job to end', () => ['done', 'stopped', 'failed'].includes(ui.queue.get(second.id)!.state));
      const j = ui.queue.get(second.id)!;
      assert.equal(j.state, 'done', j.error ?? '');
      assert.equal(j.progress?.step, 3);
      for (const f of ['run.yaml', 'init.png', 'best.png', 'report.html']) assert.ok(fs.existsSync(path.join(j.dir!, f)), f);
    } finally {
      await context.close().catch(() => {});
      await ui.close();
    }
  },
);
