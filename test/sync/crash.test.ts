/**
 * Killing the daemon (SIGKILL) in the middle of syncing leaves a database that passes
 * `PRAGMA integrity_check` and holds the last complete cycle; the next start carries on from it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRng } from '../../src/sim/random.js';
import { startSimulator, type Simulator } from '../../src/sim/server.js';
import { startHarness } from './helpers.js';

let sim: Simulator;
const dataDir = mkdtempSync(join(tmpdir(), 'pi-crash-'));
let daemon: ChildProcess | undefined;

beforeAll(async () => {
  sim = await startSimulator({ tls: false, guests: 4_000, nodes: 8, seed: 29, taskDelayMs: 5 });
});
afterAll(async () => {
  daemon?.kill('SIGKILL');
  await sim.close();
});

function startDaemon(): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve'], {
    env: {
      PATH: process.env.PATH ?? '',
      PVE_URL: sim.url,
      PVE_TOKEN_ID: sim.tokens.full.id,
      PVE_TOKEN_SECRET: sim.tokens.full.secret,
      PVE_CLUSTER_NAME: 'lab',
      DATA_DIR: dataDir,
      SYNC_INTERVAL_SECONDS: '1',
      SNAPSHOT_SCHEDULE: 'off',
      MCP_HTTP: 'off',
      LOG_LEVEL: 'error',
    },
    stdio: 'ignore',
  });
}

/** Resolves once the daemon has created its schema: from then on it is syncing. */
async function daemonReady(): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    try {
      const db = new Database(join(dataDir, 'inventory.db'), { readonly: true, fileMustExist: true });
      const ready = db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'sync_runs'").get() !== undefined;
      db.close();
      if (ready) return;
    } catch {
      // not created yet
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('the daemon did not create its database within 20 s');
}

/** Resolves once a successful cycle is in the database. */
async function firstCycleDone(): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const db = new Database(join(dataDir, 'inventory.db'), { readonly: true, fileMustExist: true });
    const done = db.prepare('SELECT 1 FROM sync_runs WHERE ok = 1 LIMIT 1').get() !== undefined;
    db.close();
    if (done) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('no sync cycle completed within 30 s');
}

function inspectDatabase(): {
  integrity: string;
  live: number;
  announced: number;
  lastRun: { ok: number; guests: number } | undefined;
} {
  const db = new Database(join(dataDir, 'inventory.db'));
  try {
    return {
      integrity: db.pragma('integrity_check', { simple: true }) as string,
      live: (db.prepare('SELECT count(*) AS n FROM guests WHERE deleted_at IS NULL').get() as { n: number }).n,
      announced: (
        db
          .prepare(
            "SELECT coalesce(sum(CASE type WHEN 'guest.created' THEN 1 WHEN 'guest.deleted' THEN -1 ELSE 0 END), 0) AS n FROM events",
          )
          .get() as { n: number }
      ).n,
      lastRun: db.prepare('SELECT ok, guests FROM sync_runs WHERE ok = 1 ORDER BY id DESC LIMIT 1').get() as
        { ok: number; guests: number } | undefined,
    };
  } finally {
    db.close();
  }
}

describe('a process killed inside the write transaction', () => {
  it('leaves the previous cycle exactly as it was', async () => {
    const h = await startHarness({ guests: 400, nodes: 3, seed: 59 });
    try {
      await h.sync.runCycle();
      const snapshot = (): unknown => ({
        names: h.store.sqlite.prepare('SELECT vmid, name FROM guests ORDER BY vmid').all(),
        events: h.store.sqlite.prepare('SELECT count(*) AS n FROM events').get(),
        runs: h.store.sqlite.prepare('SELECT count(*) AS n FROM sync_runs').get(),
      });
      const before = snapshot();
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', 'test/sync/fixtures/die-mid-write.ts', h.dbPath, 'lab'],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d));
      const signal = await new Promise((r) => child.once('exit', (_code, sig) => r(sig)));
      expect(signal).toBe('SIGKILL');
      expect(out).toBe('');
      expect(h.store.sqlite.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(snapshot()).toEqual(before);
      expect((await h.sync.runCycle()).ok).toBe(true); // and the daemon carries on
    } finally {
      await h.close();
    }
  }, 30_000);
});

describe('a daemon killed while syncing', () => {
  it('leaves an intact database holding the last complete cycle, every time', async () => {
    const rng = createRng(31);
    let completedCycles = 0;
    // Three kills during the first sync (config reads, then one big write), timed from the moment
    // the daemon has its schema; then three in the steady cycles, once a cycle is on disk.
    const plan: Array<{ afterFirstCycle: boolean; ms: number }> = [
      { afterFirstCycle: false, ms: 100 },
      { afterFirstCycle: false, ms: 700 },
      { afterFirstCycle: false, ms: 1_300 },
      { afterFirstCycle: true, ms: 300 },
      { afterFirstCycle: true, ms: 900 },
      { afterFirstCycle: true, ms: 1_500 },
    ];
    for (const { afterFirstCycle, ms: killAfterMs } of plan) {
      daemon = startDaemon();
      await daemonReady();
      if (afterFirstCycle) await firstCycleDone();
      const churn = setInterval(() => {
        const ids = [...sim.cluster.guests.keys()];
        sim.updateGuest(ids[Math.floor(rng() * ids.length)]!, { name: `churn-${Math.floor(rng() * 1e6)}` });
        if (rng() < 0.3) sim.createGuest({ type: 'lxc', node: 'pve1' });
      }, 20);
      await new Promise((r) => setTimeout(r, killAfterMs + Math.floor(rng() * 200)));
      daemon.kill('SIGKILL');
      await new Promise((r) => daemon!.once('exit', r));
      clearInterval(churn);

      const state = inspectDatabase();
      expect(state.integrity).toBe('ok');
      expect(state.live).toBe(state.announced); // rows and events of one cycle, or of none
      if (state.lastRun) {
        completedCycles++;
        expect(state.lastRun.guests).toBeGreaterThanOrEqual(4_000);
        expect(state.live).toBeGreaterThanOrEqual(state.lastRun.guests);
      } else {
        expect(state.live).toBe(0); // killed before the first write: nothing half-written
      }
    }
    expect(completedCycles).toBeGreaterThan(0); // the restarts carried on and got cycles through
  }, 60_000);
});
