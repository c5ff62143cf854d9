/**
 * Readers in another process never see a half-applied cycle: rows and events commit together.
 * The same reader catches a writer that commits them separately, so the check can fail.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/db.js';
import { startHarness, type SyncHarness } from './helpers.js';

const READER = new URL('./fixtures/reader.mjs', import.meta.url).pathname;

/** Runs `write` while the reader checks: from its first check (it says "ready") until `write` is done. */
async function readConcurrently(
  dbPath: string,
  write: () => Promise<void>,
): Promise<{ checks: number; violations: number }> {
  const reader = spawn(process.execPath, [READER, dbPath], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  reader.stdout.on('data', (d: Buffer) => (out += d));
  const closed = new Promise<number | null>((resolve) => reader.once('close', resolve));
  await new Promise<void>((resolve, reject) => {
    reader.stderr.on('data', (d: Buffer) => {
      err += d;
      if (err.includes('ready\n')) resolve();
    });
    void closed.then((code) => reject(new Error(`the reader exited (${code}) before its first check: ${err}`)));
  });
  try {
    await write();
  } finally {
    reader.stdin.end();
  }
  expect(await closed, err).toBe(0);
  return JSON.parse(out) as { checks: number; violations: number };
}

describe('readers in another process', () => {
  let h: SyncHarness;
  beforeAll(async () => {
    h = await startHarness({ guests: 800, nodes: 4, seed: 23 });
    await h.sync.runCycle();
  });
  afterAll(() => h.close());

  it('never see a cycle half-applied, across cycles that create and delete many guests', async () => {
    let created = 0;
    const result = await readConcurrently(h.dbPath, async () => {
      for (let i = 0; i < 12; i++) {
        for (let j = 0; j < 40; j++)
          h.sim.createGuest({
            vmid: 20_000 + created++,
            type: j % 3 ? 'qemu' : 'lxc',
            node: `pve${(j % 4) + 1}`,
            silent: true,
          });
        const victims = [...h.sim.cluster.guests.keys()].filter((v) => v < 20_000).slice(0, 15);
        for (const v of victims) h.sim.deleteGuest(v, true);
        expect((await h.sync.runCycle()).ok).toBe(true);
      }
    });
    expect(result.checks).toBeGreaterThan(100);
    expect(result.violations).toBe(0);
    const counts = h.store.sqlite
      .prepare(
        "SELECT (SELECT count(*) FROM guests WHERE deleted_at IS NULL) AS live, (SELECT count(*) FROM events WHERE type = 'guest.deleted') AS deleted",
      )
      .get();
    expect(counts).toEqual({ live: 800 + 480 - 165, deleted: 165 });
  }, 30_000);

  it('do catch a writer that commits rows and events separately (the check can fail)', async () => {
    const dbPath = join(mkdtempSync(join(tmpdir(), 'pi-torn-')), 'inventory.db');
    const store = openStore(dbPath);
    store.sqlite.prepare("INSERT INTO clusters (name) VALUES ('torn')").run();
    const insertGuest = store.sqlite.prepare(
      "INSERT INTO guests (cluster, vmid, type, node, status, last_seen_at, first_seen_at, updated_at) VALUES ('torn', ?, 'qemu', 'n', 'running', 0, 0, 0)",
    );
    const insertEvent = store.sqlite.prepare(
      "INSERT INTO events (id, type, occurred_at, cluster, subject_kind, subject_id, data) VALUES (?, 'guest.created', 0, 'torn', 'guest', ?, '{}')",
    );
    const result = await readConcurrently(dbPath, async () => {
      for (let vmid = 100; vmid < 160; vmid++) {
        insertGuest.run(vmid); // its own transaction…
        await new Promise((r) => setTimeout(r, 10));
        insertEvent.run(`evt_${vmid}`, `torn/${vmid}`); // …and the event in another
      }
    });
    store.close();
    expect(result.violations).toBeGreaterThan(0);
  }, 15_000);
});
