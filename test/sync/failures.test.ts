/**
 * How a cycle fails, and that it says what failed: a step after the commit never turns a written
 * cycle into a failed one; a fault in a phase is recorded with that phase; a cluster that answers
 * too slowly hits the cycle's deadline, and a body that trickles in hits the request's; stored
 * state that does not parse is compensated, not fatal; the tasks table stays bounded.
 */
import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import type { Store } from '../../src/store/db.js';
import { createClusterSync, DEFAULT_SYNC_SETTINGS } from '../../src/sync/cycle.js';
import { clusterEntry, guest, memberEntry, node, startHandmade, type Handmade } from './handmade.js';

const log = createLogger({ level: 'silent' });
let h: Handmade;
afterEach(async () => {
  await h?.close();
});

const twoNodes = (): unknown[] => [clusterEntry(1), memberEntry('pve1', 1), memberEntry('pve2', 2)];

/** The same store, whose `PRAGMA optimize` fails the way a full disk or an I/O error would. */
function optimizeFails(store: Store): Store {
  const sqlite = new Proxy(store.sqlite, {
    get(target, prop) {
      if (prop === 'pragma') {
        return (source: string, options?: { simple?: boolean }) => {
          if (source === 'optimize') throw new Error('disk I/O error');
          return target.pragma(source, options);
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { ...store, sqlite };
}

describe('after the commit', () => {
  it('a failing statistics refresh leaves the written cycle ok: no failure recorded, nothing stale', async () => {
    h = await startHandmade();
    h.status = twoNodes();
    h.resources = [...Array.from({ length: 600 }, (_, i) => guest(100 + i)), node('pve1'), node('pve2')];
    const sync = createClusterSync({
      store: optimizeFails(h.store),
      client: h.client,
      cluster: 'hand',
      settings: { ...DEFAULT_SYNC_SETTINGS, sweepEveryMs: 0 },
      log,
    });
    const cycle = await sync.runCycle(); // 600 new guest rows: a refresh is due
    expect(cycle).toMatchObject({ ok: true, guests: 600 });
    expect(h.count('SELECT count(*) AS n, sum(ok) AS ok FROM sync_runs')).toEqual({ n: 1, ok: 1 });
    expect(h.count("SELECT stale, consecutive_failures AS f FROM clusters WHERE name = 'hand'")).toEqual({
      stale: 0,
      f: 0,
    });
    expect(h.events('cluster.sync_failed')).toEqual([]);
    expect((await sync.runCycle()).ok).toBe(true); // and the kept state carries on
  });
});

describe('a failing phase says which', () => {
  it('a fault during the config reads is recorded as such, not as "aborted"', async () => {
    h = await startHandmade();
    h.status = twoNodes();
    h.resources = [guest(100), guest(101), node('pve1'), node('pve2')];
    const cycle = await h.sync.runCycle({
      onProgress: () => {
        throw new Error('progress display broke');
      },
    });
    expect(cycle.aborted).toBeUndefined();
    expect(cycle.ok).toBe(false);
    expect(cycle.error).toBe('reading guest configs failed: progress display broke');
    expect(h.count('SELECT ok, error FROM sync_runs')).toEqual({
      ok: 0,
      error: 'reading guest configs failed: progress display broke',
    });
    expect(h.events('cluster.sync_failed').map((e) => e.data.kind)).toEqual(['internal']);
  });

  it('a failed bulk read names the request', async () => {
    h = await startHandmade();
    h.answers.set('/cluster/resources', (_req: unknown, res: ServerResponse) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end('{"data":null,"message":"broken pipe\\n"}');
    });
    const cycle = await h.sync.runCycle();
    expect(cycle.error).toMatch(/GET \/cluster\/resources/);
  });

  it('stored log cursors that do not parse are replaced, with a sweep batch instead of a failed cycle', async () => {
    h = await startHandmade({ settings: { sweepEveryMs: 3_600_000, sweepPeriodMs: 3_600_000 } });
    h.status = twoNodes();
    h.resources = [guest(100), guest(101), node('pve1'), node('pve2')];
    h.answers.set('/cluster/log', { data: [{ uid: 5, time: 2_000_000_000, node: 'pve1', msg: 'x' }] });
    expect((await h.sync.runCycle()).ok).toBe(true);
    h.store.sqlite
      .prepare("UPDATE clusters SET log_cursors = '{not json', last_sweep_at = ? WHERE name = 'hand'")
      .run(Date.now());
    const fresh = h.newSync({ sweepEveryMs: 3_600_000, sweepPeriodMs: 3_600_000 }); // loads the damaged row
    const cycle = await fresh.runCycle();
    expect(cycle.ok).toBe(true);
    expect(cycle.configsFetched).toBeGreaterThan(0); // the sweep batch that makes up for lost signals
    expect(h.count("SELECT log_cursors FROM clusters WHERE name = 'hand'")).toEqual({ log_cursors: '{"pve1":5}' });
  });
});

describe('deadlines', () => {
  it('a cycle past its deadline fails as such, naming the phase, and the next cycle runs', async () => {
    h = await startHandmade({ settings: { cycleTimeoutMs: 1_000, configConcurrency: 1 } });
    h.status = twoNodes();
    h.resources = [...Array.from({ length: 20 }, (_, i) => guest(100 + i)), node('pve1'), node('pve2')];
    // Each config answers in 200 ms, well inside the request timeout: only the cycle's deadline can stop it.
    const slowConfig = (_req: unknown, res: ServerResponse): void => {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ data: { name: 'x', memory: '1024', digest: 'c'.repeat(40) } }));
      }, 200);
    };
    for (let i = 0; i < 20; i++) h.answers.set(`/nodes/pve1/qemu/${100 + i}/config`, slowConfig);
    const started = Date.now();
    const cycle = await h.sync.runCycle();
    expect(Date.now() - started).toBeLessThan(4_000); // 20 × 200 ms would be 4 s
    expect(cycle.ok).toBe(false);
    expect(cycle.error).toMatch(/^the cycle passed its deadline of 1 s while reading guest configs/);
    expect(h.events('cluster.sync_failed').map((e) => e.data.kind)).toEqual(['deadline']);
    for (let i = 0; i < 20; i++) h.answers.delete(`/nodes/pve1/qemu/${100 + i}/config`);
    expect((await h.sync.runCycle()).ok).toBe(true);
  });

  it('a response body that trickles in fails its request within the timeout, however steadily it trickles', async () => {
    h = await startHandmade({ timeoutMs: 600 });
    h.status = twoNodes();
    const timers: NodeJS.Timeout[] = [];
    h.answers.set('/cluster/resources', (_req: unknown, res: ServerResponse) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"data":[');
      // A byte every 100 ms: undici's idle body timer (600 ms) never fires.
      timers.push(setInterval(() => res.write(' '), 100));
    });
    const started = Date.now();
    const cycle = await h.sync.runCycle();
    for (const t of timers) clearInterval(t);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(cycle.ok).toBe(false);
    expect(cycle.error).toMatch(/GET \/cluster\/resources.*still arriving 600 ms after its headers/);
  });
});

describe('the tasks table', () => {
  it('keeps the newest 5,000 tasks of a cluster', async () => {
    h = await startHandmade();
    h.status = twoNodes();
    h.resources = [guest(100), node('pve1'), node('pve2')];
    h.tasks = Array.from({ length: 5_300 }, (_, i) => ({
      upid: `UPID:pve1:0000${i.toString(16).padStart(4, '0')}:00000000:${(1_700_000_000 + i).toString(16).toUpperCase()}:vzdump::root@pam:`,
      node: 'pve1',
      starttime: 1_700_000_000 + i,
      endtime: 1_700_000_001 + i,
      type: 'vzdump',
      id: '',
      user: 'root@pam',
      status: 'OK',
    }));
    expect((await h.sync.runCycle()).ok).toBe(true);
    expect(h.count('SELECT count(*) AS n, min(starttime) AS oldest FROM tasks')).toEqual({
      n: 5_000,
      oldest: 1_700_000_300,
    });
  });
});
