// report.html opened in headless Chromium (Debian's chromium through playwright-core): both images load and every
// reward has a drawn curve. Skipped with a message when no Chromium is installed (CI installs it).
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { generateCommand } from '../../src/commands/generate.js';
import { launchChromium, NO_CHROMIUM, tmpDir } from '../helpers.js';

test('report.html shows both images and a curve for each reward', { skip: NO_CHROMIUM }, async () => {
  const out = tmpDir();
  const weights = { imagereward: 1, aesthetic: 1, pickscore: 0.05, clip: 1, hpsv2: 0.5, personal: 0 };
  const r = await generateCommand({
    prompt: 'a lighthouse at dusk',
    preset: 'tiny',
    backend: 'wasm',
    quiet: true,
    out,
    steps: 4,
    overrides: { weights },
  });
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    await page.goto('file://' + path.join(r.dir, 'report.html'));
    const imgs = await page.$$eval('img', (els) =>
      els.map((e) => ({
        src: e.getAttribute('src'),
        ok: (e as unknown as { complete: boolean; naturalWidth: number }).complete && (e as unknown as { naturalWidth: number }).naturalWidth > 0,
      })),
    );
    assert.deepEqual(
      imgs.map((i) => i.src),
      ['init.png', 'best.png'],
    );
    assert.ok(
      imgs.every((i) => i.ok),
      'both images decoded in the browser',
    );
    // vega's SVG: a line mark's path is labelled with its series' name; one M/L vertex per step
    const curves = await page.$$eval('svg path[aria-roledescription="line mark"]', (els) =>
      els.map((e) => ({
        name: e.getAttribute('aria-label'),
        points: (e.getAttribute('d') ?? '').split(/[ML]/).filter(Boolean).length,
        box: (e as unknown as { getBBox(): { width: number } }).getBBox().width,
      })),
    );
    for (const name of Object.keys(weights).filter((k) => weights[k as keyof typeof weights] > 0)) {
      const c = curves.find((x) => x.name === name);
      assert.ok(c, `curve for ${name}`);
      assert.equal(c!.points, 4, `${name}: one point per step`);
      assert.ok(c!.box > 50, `${name}: drawn across the chart`);
    }
    await page.screenshot({ path: path.join(r.dir, 'report-screenshot.png'), fullPage: true });
  } finally {
    await browser.close();
  }
});
