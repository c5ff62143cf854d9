/**
 * What the daemon costs a cluster in API calls per hour, computed and measured (issue 8). The
 * steady cycle is 4 bulk calls whatever the size; the slow sweep adds a batch of config reads (and
 * /version and /access/permissions) every `sweepEverySeconds`, sized so every config is re-read
 * within `sweepPeriodMinutes`; each online node's /nodes/{node}/status is read every
 * `nodeStatusMinutes` (5 by default). Computed: 4 × cycles an hour + batches an hour × (2 + batch
 * size) + nodes × status reads an hour.
 * Measured: one simulated hour of real cycles (the real client over HTTP, the real store) against
 * the simulator, with a clock that moves 15 s per cycle so the sweep runs as it would; the
 * simulator's own request counter is the figure. No churn: reads that changes trigger come on top.
 *   npm run bench -- cost
 *   npx tsx bench/cost.ts [GUESTS…]     # sizes of your own (default 1000 10000 30000)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createLogger } from '../src/log.js';
import { createHttpProxmoxClient } from '../src/proxmox/http-client.js';
import { Secret } from '../src/secret.js';
import { startSimulator } from '../src/sim/server.js';
import { openStore } from '../src/store/db.js';
import {
  createClusterSync,
  DEFAULT_NODE_STATUS_PERIOD_MS,
  DEFAULT_SYNC_SETTINGS,
  type SyncSettings,
} from '../src/sync/cycle.js';

const INTERVAL_S = 15;
const DEFAULT_SIZES = [1_000, 10_000, 30_000];
const nodesFor = (guests: number): number => (guests <= 1_000 ? 8 : guests <= 10_000 ? 16 : 32);
/** The default sweep period, and the hour the default was before issue 8, for comparison. */
const PERIODS_MIN = [DEFAULT_SYNC_SETTINGS.sweepPeriodMs / 60_000, 60];
const EVERY_S = DEFAULT_SYNC_SETTINGS.sweepEveryMs / 1000;

export interface CallsPerHour {
  steady: number;
  sweepReads: number;
  /** /version and /access/permissions, read with each sweep batch. */
  sweepExtras: number;
  /** GET /nodes/{node}/status, once per online node a status period. */
  nodeStatus: number;
  total: number;
  batch: number;
  /** How long the sweep takes to re-read every config (min), once the budget is taken into account. */
  roundMin: number;
}

/** The arithmetic, as the cycle does it (cycle.ts `sweepBatch`, plan.ts budget). */
export function computeCallsPerHour(
  guests: number,
  s: { intervalS: number; periodMin: number; everyS: number; budget: number; nodes?: number; nodeStatusMin?: number },
): CallsPerHour {
  const cycles = 3600 / s.intervalS;
  // A batch runs on the first cycle at least `everyS` after the last one.
  const batches = 3600 / (Math.ceil(s.everyS / s.intervalS) * s.intervalS);
  const batch = Math.min(Math.ceil((guests * s.everyS) / (s.periodMin * 60)), s.budget);
  const steady = 4 * cycles;
  const sweepReads = batches * batch;
  const sweepExtras = batches * 2;
  // Read on the first cycle at least a status period after the last read, like a sweep batch.
  const statusMin = s.nodeStatusMin ?? DEFAULT_NODE_STATUS_PERIOD_MS / 60_000;
  const nodeStatus =
    statusMin > 0 ? ((s.nodes ?? 0) * 3600) / (Math.ceil((statusMin * 60) / s.intervalS) * s.intervalS) : 0;
  return {
    steady,
    sweepReads,
    sweepExtras,
    nodeStatus,
    total: steady + sweepReads + sweepExtras + nodeStatus,
    batch,
    roundMin: Math.ceil(guests / batch) * (60 / batches),
  };
}

interface Measured {
  firstSync: number;
  hour: number;
  byKind: { bulk: number; configs: number; extras: number };
  cycleMs: number;
}

/** One simulated hour of cycles against a fresh simulator, after the first sync; calls as the simulator counted them. */
async function measure(guests: number, settings: SyncSettings): Promise<Measured> {
  const sim = await startSimulator({ guests, nodes: nodesFor(guests), seed: 1, tls: false, taskDelayMs: 0 });
  const dir = mkdtempSync(join(tmpdir(), 'pi-cost-'));
  const store = openStore(join(dir, 'inventory.db'));
  const client = createHttpProxmoxClient({
    cluster: 'cost',
    url: sim.url,
    tokenId: sim.tokens.full.id,
    tokenSecret: new Secret(sim.tokens.full.secret),
    tls: {},
    retries: 0,
    timeoutMs: 60_000,
  });
  let clock = Date.now();
  const sync = createClusterSync({
    store,
    client,
    cluster: 'cost',
    settings: { ...settings, cycleTimeoutMs: 600_000 },
    log: createLogger({ level: 'silent' }),
    now: () => clock,
  });
  try {
    const first = await sync.runCycle();
    if (!first.ok) throw new Error(`first sync failed: ${first.error}`);
    const firstSync = sim.counters().total;
    sim.resetCounters();
    const started = performance.now();
    const cycles = 3600 / INTERVAL_S;
    for (let i = 0; i < cycles; i++) {
      clock += INTERVAL_S * 1000;
      const r = await sync.runCycle();
      if (!r.ok) throw new Error(`cycle ${i} failed: ${r.error}`);
    }
    const { total, byEndpoint } = sim.counters();
    const sum = (pred: (k: string) => boolean): number =>
      Object.entries(byEndpoint)
        .filter(([k]) => pred(k))
        .reduce((a, [, n]) => a + n, 0);
    const bulk = sum((k) => /^GET \/cluster\/(resources|status|tasks|log)$/.test(k));
    const configs = sum((k) => k.endsWith('/config'));
    return {
      firstSync,
      hour: total,
      byKind: { bulk, configs, extras: total - bulk - configs },
      cycleMs: (performance.now() - started) / cycles,
    };
  } finally {
    await client.close();
    await sim.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const n = (x: number): string => Math.round(x).toLocaleString('en');
const duration = (min: number): string => (min >= 60 ? `${+(min / 60).toFixed(1)} h` : `${Math.round(min)} min`);

export async function benchCost(sizes: number[] = DEFAULT_SIZES): Promise<void> {
  process.stdout.write(
    `\ncost: API calls per hour per cluster, a cycle every ${INTERVAL_S} s, a sweep batch every ${EVERY_S} s, config budget ${DEFAULT_SYNC_SETTINGS.configBudget}; `,
  );
  process.stdout.write(
    'computed, and measured over one simulated hour (240 real cycles against the simulator, no churn)\n',
  );
  process.stdout.write(
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}\n\n`,
  );
  process.stdout.write(
    '| guests | nodes | sweep period | batch | computed calls/h (steady + sweep reads + version/permissions + node status) | measured calls/h (bulk + configs + other) | calls/s | every config re-read within | first sync calls | cycle ms (mean) |\n',
  );
  process.stdout.write('|---:|---:|---:|---:|---|---|---:|---:|---:|---:|\n');
  for (const guests of sizes) {
    for (const periodMin of PERIODS_MIN) {
      const settings: SyncSettings = { ...DEFAULT_SYNC_SETTINGS, sweepPeriodMs: periodMin * 60_000 };
      const c = computeCallsPerHour(guests, {
        intervalS: INTERVAL_S,
        periodMin,
        everyS: EVERY_S,
        budget: settings.configBudget,
        nodes: nodesFor(guests),
      });
      const m = await measure(guests, settings);
      const label =
        periodMin * 60_000 === DEFAULT_SYNC_SETTINGS.sweepPeriodMs
          ? `${duration(periodMin)} (default)`
          : duration(periodMin);
      process.stdout.write(
        `| ${n(guests)} | ${nodesFor(guests)} | ${label} | ${c.batch} | ${n(c.total)} (${n(c.steady)} + ${n(c.sweepReads)} + ${n(c.sweepExtras)} + ${n(c.nodeStatus)}) | ` +
          `${n(m.hour)} (${n(m.byKind.bulk)} + ${n(m.byKind.configs)} + ${n(m.byKind.extras)}) | ${(m.hour / 3600).toFixed(2)} | ${duration(c.roundMin)} | ${n(m.firstSync)} | ${Math.round(m.cycleMs)} |\n`,
      );
    }
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const sizes = process.argv
    .slice(2)
    .map(Number)
    .filter((x) => x > 0);
  await benchCost(sizes.length ? sizes : undefined);
}
