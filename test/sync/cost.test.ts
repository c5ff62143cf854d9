/**
 * What the sync costs a cluster, said honestly (issue 8): 4 calls a steady cycle, a sweep batch of
 * config reads (plus /version and /access/permissions) every `sweepEveryMs`, sized so every config
 * is re-read within `sweepPeriodMs`; and an LXC config edit that changes nothing in
 * /cluster/resources is seen by the sweep only, within the period. Real cycles against the
 * simulator, with a clock that moves 15 s per cycle; the simulator's request counter is the truth.
 * The README's calls-per-hour figures are pinned to the arithmetic here.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeCallsPerHour } from '../../bench/cost.js';
import { loadConfig } from '../../src/config.js';
import { createClusterSync, DEFAULT_SYNC_SETTINGS, type ClusterSync, type SyncSettings } from '../../src/sync/cycle.js';
import { startHarness, type SyncHarness } from './helpers.js';

const GUESTS = 300;
const INTERVAL_MS = 15_000;
const EVERY_MS = 60_000;
/** Scaled down from hours so that a whole period runs in the test: 30 configs a batch. */
const PERIOD_MS = 10 * 60_000;
const BATCH = Math.ceil((GUESTS * EVERY_MS) / PERIOD_MS);

describe('calls per cycle and per period, measured', () => {
  let h: SyncHarness;
  let clock = Date.now();
  let firstSyncCalls = 0;
  let edited = 0;
  const sweepOff: Array<{ calls: number; updated: boolean }> = [];
  const sweepOn: Array<{ calls: number; configs: number; extras: number; updated: boolean }> = [];

  // Node status reads are measured on their own below; here they would blur the sweep's arithmetic.
  const newSync = (settings: Partial<SyncSettings>): ClusterSync =>
    createClusterSync({
      store: h.store,
      client: h.client,
      cluster: 'lab',
      settings: { ...DEFAULT_SYNC_SETTINGS, nodeStatusPeriodMs: 0, ...settings },
      log: h.log,
      now: () => clock,
    });
  const updatedEvents = (): number =>
    h.eventsSince(0).filter((e) => e.type === 'guest.updated' && e.subject === `lab/${edited}`).length;

  async function cycle(sync: ClusterSync): Promise<Record<string, number>> {
    clock += INTERVAL_MS;
    h.sim.resetCounters();
    const r = await sync.runCycle();
    expect(r.ok, r.error).toBe(true);
    return h.sim.counters().byEndpoint;
  }

  beforeAll(async () => {
    h = await startHarness({ guests: GUESTS, nodes: 3, seed: 8 });
    const off = newSync({ sweepEveryMs: 0 });
    h.sim.resetCounters();
    expect((await off.runCycle()).ok).toBe(true);
    firstSyncCalls = h.sim.counters().total;

    // A hand edit of a container's description: no task, no cluster-log line, nothing in /cluster/resources.
    edited = [...h.sim.cluster.guests.values()].find((g) => g.type === 'lxc' && g.values.template !== '1')!.vmid;
    h.sim.updateGuest(edited, { config: { description: 'moved to rack 4' }, silent: true });

    for (let i = 0; i < 8; i++) {
      const calls = await cycle(off);
      sweepOff.push({ calls: Object.values(calls).reduce((a, b) => a + b, 0), updated: updatedEvents() > 0 });
    }
    const on = newSync({ sweepEveryMs: EVERY_MS, sweepPeriodMs: PERIOD_MS });
    for (let i = 0; i < PERIOD_MS / INTERVAL_MS; i++) {
      const calls = await cycle(on);
      const configs = Object.entries(calls)
        .filter(([k]) => k.endsWith('/config'))
        .reduce((a, [, n]) => a + n, 0);
      const extras = (calls['GET /version'] ?? 0) + (calls['GET /access/permissions'] ?? 0);
      sweepOn.push({
        calls: Object.values(calls).reduce((a, b) => a + b, 0),
        configs,
        extras,
        updated: updatedEvents() > 0,
      });
    }
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });

  it('the first sync reads every config once: guests + 4 bulk calls + /version + /access/permissions', () => {
    expect(firstSyncCalls).toBe(GUESTS + 6);
  });

  it('without a sweep: 4 calls a cycle, and the silent LXC edit is never seen', () => {
    expect(sweepOff.map((c) => c.calls)).toEqual(Array(8).fill(4));
    expect(sweepOff.some((c) => c.updated)).toBe(false);
  });

  it('with a sweep: a batch every fourth cycle of 4 + 2 + guests × every / period calls, and 4 calls in between', () => {
    // The first cycle is due at once (no sweep yet), then one a minute: cycles 0, 4, 8, …
    expect(sweepOn.map((c, i) => (i % 4 === 0 ? [c.calls, c.configs, c.extras] : c.calls))).toEqual(
      sweepOn.map((_, i) => (i % 4 === 0 ? [4 + 2 + BATCH, BATCH, 2] : 4)),
    );
  });

  it('one period reads every config exactly once, and the measured calls are the computed ones', () => {
    expect(sweepOn.reduce((a, c) => a + c.configs, 0)).toBe(GUESTS);
    const stale = h.store.sqlite
      .prepare(
        "SELECT count(*) AS n FROM guests WHERE cluster = 'lab' AND deleted_at IS NULL AND config_fetched_at < ?",
      )
      .get(clock - PERIOD_MS + 1) as { n: number };
    expect(stale.n).toBe(0);
    const perHour = computeCallsPerHour(GUESTS, {
      intervalS: INTERVAL_MS / 1000,
      periodMin: PERIOD_MS / 60_000,
      everyS: EVERY_MS / 1000,
      budget: DEFAULT_SYNC_SETTINGS.configBudget,
    });
    expect(perHour).toMatchObject({ steady: 960, batch: BATCH, sweepReads: 60 * BATCH, sweepExtras: 120 });
    // The measured 10 minutes are a sixth of the computed hour.
    expect(sweepOn.reduce((a, c) => a + c.calls, 0)).toBe(perHour.total / 6);
  });

  it('node status: one call per node every 5 minutes by default, as computed', async () => {
    const withStatus = newSync({ sweepEveryMs: 0, nodeStatusPeriodMs: DEFAULT_SYNC_SETTINGS.nodeStatusPeriodMs });
    const status: number[] = [];
    for (let i = 0; i <= 40; i++) status.push((await cycle(withStatus))['GET /nodes/{node}/status'] ?? 0);
    // The first cycle reads every node (its rows were never read), then every twentieth cycle (5 min at 15 s).
    expect(status).toEqual(status.map((_, i) => (i % 20 === 0 ? 3 : 0)));
    const perHour = computeCallsPerHour(GUESTS, {
      intervalS: INTERVAL_MS / 1000,
      periodMin: PERIOD_MS / 60_000,
      everyS: EVERY_MS / 1000,
      budget: DEFAULT_SYNC_SETTINGS.configBudget,
      nodes: 3,
    });
    expect(perHour.nodeStatus).toBe(3 * 12);
    expect(
      computeCallsPerHour(10_000, { intervalS: 15, periodMin: 360, everyS: 60, budget: 200, nodes: 16 }).nodeStatus,
    ).toBe(192);
  });

  it('the silent LXC edit is found by the sweep within the period, not by the steady cycles before it', () => {
    const found = sweepOn.findIndex((c) => c.updated);
    expect(found).toBeGreaterThanOrEqual(0);
    expect(found % 4).toBe(0); // on a sweep cycle
    expect((found + 1) * INTERVAL_MS).toBeLessThanOrEqual(PERIOD_MS);
    const event = h.eventsSince(0).find((e) => e.type === 'guest.updated' && e.subject === `lab/${edited}`)!;
    expect(JSON.stringify(event.data)).toContain('description');
  });
});

describe('the defaults, and what they cost', () => {
  it('the sweep period is 6 h and a batch runs every minute, in the config schema and the cycle defaults alike', () => {
    const config = loadConfig({ env: {}, clustersOptional: true, cwd: mkdtempSync(join(tmpdir(), 'pi-cost-')) });
    expect(config.sync).toMatchObject({
      sweepPeriodMinutes: 360,
      sweepEverySeconds: 60,
      intervalSeconds: 15,
      configBudget: 200,
    });
    expect(DEFAULT_SYNC_SETTINGS).toMatchObject({
      nodeStatusPeriodMs: 5 * 60_000,
      sweepPeriodMs: config.sync.sweepPeriodMinutes * 60_000,
      sweepEveryMs: config.sync.sweepEverySeconds * 1000,
      configBudget: config.sync.configBudget,
    });
  });

  it('calls per hour at 1,000, 10,000 and 30,000 guests: the figures README and docs/benchmarks.md give', () => {
    const at = (guests: number, periodMin: number): ReturnType<typeof computeCallsPerHour> =>
      computeCallsPerHour(guests, { intervalS: 15, periodMin, everyS: 60, budget: 200 });
    expect([1_000, 10_000, 30_000].map((g) => at(g, 360).total)).toEqual([1_260, 2_760, 6_120]);
    expect([1_000, 10_000, 30_000].map((g) => at(g, 360).batch)).toEqual([3, 28, 84]);
    // The old default, an hour: 11,100 calls an hour at 10,000 guests; at 30,000 the budget caps
    // the batch at 200, so the sweep needs 2.5 h, not 1 h.
    expect([1_000, 10_000, 30_000].map((g) => at(g, 60).total)).toEqual([2_100, 11_100, 13_080]);
    expect(at(30_000, 60).roundMin).toBe(150);
    expect(at(10_000, 360).roundMin).toBeLessThanOrEqual(360);
  });
});
