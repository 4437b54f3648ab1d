// Lock files shared by sweep claims and downloads: a live owner is respected, a dead one on this host is taken over,
// an empty lock file is respected while fresh (being written) and free once old (a crash, or huggingface_hub's
// leftover), another host's lock is respected, and release never removes a lock someone else now holds.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { tryLock, waitLock } from '../../src/util/lockfile.js';
import { tmpDir } from '../helpers.js';

const deadPid = async () => {
  const c = spawn(process.execPath, ['-e', '0']);
  return new Promise<number>((r) => c.on('exit', () => r(c.pid!)));
};

test('tryLock: live owners are respected, dead and old empty ones taken over, another host respected', async () => {
  const d = tmpDir('reno-lock');
  const f = path.join(d, 'sub', 'a.lock');
  const first = tryLock(f);
  assert.ok(first.ok);
  const second = tryLock(f);
  assert.ok(!second.ok);
  assert.deepEqual([second.owner?.pid, second.owner?.host], [process.pid, os.hostname()]);
  first.release();
  assert.ok(!fs.existsSync(f));

  fs.writeFileSync(f, JSON.stringify({ pid: await deadPid(), host: os.hostname(), since: 'then' }));
  const t = tryLock(f);
  assert.ok(t.ok, 'a dead owner is taken over');
  t.release();

  fs.writeFileSync(f, JSON.stringify({ pid: await deadPid(), host: `not-${os.hostname()}`, since: 'then' }));
  assert.ok(!tryLock(f).ok, "another host's lock cannot be checked: respected");
  fs.rmSync(f);

  fs.writeFileSync(f, '');
  assert.ok(!tryLock(f).ok, 'a fresh empty lock file is being written');
  const old = (Date.now() - 60_000) / 1000;
  fs.utimesSync(f, old, old);
  const e = tryLock(f);
  assert.ok(e.ok, 'an old empty lock file is free');
  // someone else replaced our lock (taken over wrongly): release leaves theirs alone
  fs.writeFileSync(f, JSON.stringify({ pid: 1, host: 'x', since: 'now' }));
  e.release();
  assert.ok(fs.existsSync(f));
});

test('waitLock waits for the holder and tells once who it is', async () => {
  const f = path.join(tmpDir('reno-lock'), 'b.lock');
  const a = tryLock(f);
  assert.ok(a.ok);
  const told: string[] = [];
  const waiting = waitLock(f, { pollMs: 20, onWait: (o) => told.push(String(o?.pid)) });
  await new Promise((r) => setTimeout(r, 100));
  a.release();
  const release = await waiting;
  assert.ok(release);
  assert.deepEqual(told, [String(process.pid)]);
  release!();
  assert.ok(!fs.existsSync(f));
});
