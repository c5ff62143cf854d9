/**
 * `store.write` begins IMMEDIATE: it takes the write lock before its first read, so a
 * read-then-write transaction waits for another process's writer instead of failing with
 * SQLITE_BUSY when that writer commits between its read and its write (which a DEFERRED
 * transaction would). Two real processes increment one counter through it at the same time.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { openStore } from '../../src/store/db.js';

const ROUNDS = 300;

const increment = (store: ReturnType<typeof openStore>): void =>
  store.write(() => {
    const n = (store.sqlite.prepare('SELECT n FROM counter').get() as { n: number }).n;
    store.sqlite.prepare('UPDATE counter SET n = ?').run(n + 1);
  });

it('read-modify-write transactions from two processes never fail and never lose an update', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pi-lock-'));
  const dbPath = join(dir, 'inventory.db');
  const go = join(dir, 'go');
  const store = openStore(dbPath);
  store.sqlite.exec('CREATE TABLE counter (n INTEGER NOT NULL); INSERT INTO counter VALUES (0);');
  const script = `
    import { existsSync } from 'node:fs';
    import { openStore } from './src/store/db.ts';
    const store = openStore(${JSON.stringify(dbPath)});
    process.stdout.write('ready\\n');
    while (!existsSync(${JSON.stringify(go)})) await new Promise((r) => setTimeout(r, 5));
    for (let i = 0; i < ${ROUNDS}; i++) store.write(() => {
      const n = store.sqlite.prepare('SELECT n FROM counter').get().n;
      store.sqlite.prepare('UPDATE counter SET n = ?').run(n + 1);
    });
    store.close();
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    child.on('exit', () => reject(new Error(`child exited before it was ready: ${stderr}`)));
  });
  writeFileSync(go, '');
  const errors: string[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    try {
      increment(store);
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  expect(await exited, stderr).toBe(0);
  expect(errors).toEqual([]);
  expect(store.sqlite.prepare('SELECT n FROM counter').get()).toEqual({ n: 2 * ROUNDS });
  store.close();
}, 60_000);
