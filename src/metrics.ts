/**
 * Prometheus metrics (prom-client): one registry per process. Counters and histograms are fed by
 * small `record…` functions called where things happen (the scheduler, the MCP server, the action
 * worker, the webhook worker); gauges about the inventory are read from the store when scraped,
 * from tables that are already counts (clusters, guest_stats, nodes, the actions and deliveries
 * indexes), never guest by guest. Labels take bounded values only: cluster, tool, kind, state,
 * event type, endpoint template; never a vmid, a guest name or a URL.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CycleSummary } from './sync/cycle.js';
import type { Store } from './store/db.js';

const PREFIX = 'proxmox_inventory_';

/** Why every `record…` is module-level: the places that call them are built far from main.ts and need no extra deps. */
const registry = new Registry();

const syncCycles = new Counter({
  name: `${PREFIX}sync_cycles_total`,
  help: 'Sync cycles finished, by cluster and outcome (ok, failed, aborted by shutdown).',
  labelNames: ['cluster', 'outcome'] as const,
  registers: [registry],
});

const syncDuration = new Histogram({
  name: `${PREFIX}sync_cycle_duration_seconds`,
  help: 'Wall time of sync cycles that ran to their end (ok or failed), by cluster.',
  labelNames: ['cluster'] as const,
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
  registers: [registry],
});

const apiRequests = new Counter({
  name: `${PREFIX}proxmox_api_requests_total`,
  help: 'Proxmox API requests made by sync cycles, by cluster, endpoint template (/nodes/{node}/…) and HTTP status (0: no answer).',
  labelNames: ['cluster', 'endpoint', 'status'] as const,
  registers: [registry],
});

const eventsWritten = new Counter({
  name: `${PREFIX}events_written_total`,
  help: 'Change events written by sync cycles, by cluster and event type.',
  labelNames: ['cluster', 'type'] as const,
  registers: [registry],
});

const toolCalls = new Counter({
  name: `${PREFIX}mcp_tool_calls_total`,
  help: 'MCP tool calls, by tool and outcome (ok; miss: an isError answer the model can act on; error: a fault).',
  labelNames: ['tool', 'outcome'] as const,
  registers: [registry],
});

const toolDuration = new Histogram({
  name: `${PREFIX}mcp_tool_duration_seconds`,
  help: 'Time to answer an MCP tool call, by tool and outcome.',
  labelNames: ['tool', 'outcome'] as const,
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30],
  registers: [registry],
});

const actionsFinished = new Counter({
  name: `${PREFIX}actions_finished_total`,
  help: 'Actions that reached a final state, by kind and state (succeeded, failed, expired, cancelled).',
  labelNames: ['kind', 'state'] as const,
  registers: [registry],
});

const actionsRunning = new Gauge({
  name: `${PREFIX}actions_running`,
  help: 'Actions this process is running now (each holds a worker slot).',
  registers: [registry],
});

const deliveryAttempts = new Counter({
  name: `${PREFIX}webhook_delivery_attempts_total`,
  help: 'Webhook delivery attempts, by outcome (success, retry, timeout, error, refused, redirect, gone, too-large).',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

/** When the action worker last took its canary job (epoch ms); undefined until it does. */
let canaryTakenAt: number | undefined;

export function recordCycle(summary: CycleSummary): void {
  const { cluster } = summary;
  const outcome = summary.aborted ? 'aborted' : summary.ok ? 'ok' : 'failed';
  syncCycles.inc({ cluster, outcome });
  if (!summary.aborted) syncDuration.observe({ cluster }, summary.durationMs / 1000);
  for (const [type, n] of Object.entries(summary.changes)) eventsWritten.inc({ cluster, type }, n);
}

/** One request a sync cycle made and the HTTP status it got (200 for an answer, 0 when none came). */
export function recordApiRequest(cluster: string, endpoint: string, status: number): void {
  apiRequests.inc({ cluster, endpoint, status: String(status) });
}

/** A cycle that threw instead of answering with a summary. */
export function recordCycleCrash(cluster: string): void {
  syncCycles.inc({ cluster, outcome: 'failed' });
}

export type ToolOutcome = 'ok' | 'miss' | 'error';

export function recordToolCall(tool: string, outcome: ToolOutcome, seconds: number): void {
  toolCalls.inc({ tool, outcome });
  toolDuration.observe({ tool, outcome }, seconds);
}

/** `handler`, timed and recorded under `tool`: an `isError` answer is a miss, a throw an error. */
export function timedTool<A extends unknown[], T extends { isError?: boolean }>(
  tool: string,
  handler: (...args: A) => Promise<T>,
): (...args: A) => Promise<T> {
  return async (...args) => {
    const started = process.hrtime.bigint();
    const seconds = (): number => Number(process.hrtime.bigint() - started) / 1e9;
    try {
      const result = await handler(...args);
      recordToolCall(tool, result.isError ? 'miss' : 'ok', seconds());
      return result;
    } catch (err) {
      recordToolCall(tool, 'error', seconds());
      throw err;
    }
  };
}

export function recordActionFinished(kind: string, state: string): void {
  actionsFinished.inc({ kind, state });
}

export function recordActionRunning(delta: 1 | -1): void {
  actionsRunning.inc(delta);
}

export function recordCanary(at: number): void {
  canaryTakenAt = at;
}

export function recordDeliveryAttempt(outcome: string): void {
  deliveryAttempts.inc({ outcome });
}

export interface MetricsOptions {
  /** SYNC_INTERVAL_SECONDS, exposed so alert rules can say "older than N intervals". */
  syncIntervalSeconds?: number;
  now?: () => number;
}

export interface Metrics {
  contentType: string;
  /** The exposition text, with the store-read gauges computed now. */
  scrape(): Promise<string>;
}

/** A store-read gauge: `read` runs at scrape time and gives the samples; a store that cannot be read gives none. */
function storeGauge<L extends string>(
  name: string,
  help: string,
  labelNames: readonly L[],
  read: () => Array<{ labels: Record<L, string>; value: number }>,
): Gauge<L> {
  return new Gauge<L>({
    name: `${PREFIX}${name}`,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      let samples: ReturnType<typeof read>;
      try {
        samples = read();
      } catch {
        // A scrape must not fail because the inventory is busy or damaged; /readyz and the log report that.
        return;
      }
      for (const s of samples) this.set(s.labels as Partial<Record<L, string>>, s.value);
    },
  });
}

let source: { store: Store; options: MetricsOptions } | undefined;

/** Built once: later calls (tests, a daemon restarted in-process) point the same gauges at their store. */
let gaugesBuilt = false;

function buildStoreGauges(): void {
  if (gaugesBuilt) return;
  gaugesBuilt = true;
  // Here rather than at import: processes that only record (the stdio mcp, the CLI) start no event-loop monitor.
  collectDefaultMetrics({ register: registry });
  const store = (): Store => source!.store;
  const now = (): number => (source!.options.now ?? Date.now)();

  const clusterRows = () =>
    store()
      .sqlite.prepare('SELECT name, last_success_at AS at, consecutive_failures AS failures FROM clusters')
      .all() as Array<{ name: string; at: number | null; failures: number }>;

  storeGauge(
    'sync_last_success_timestamp_seconds',
    'When each cluster last synced successfully (Unix time).',
    ['cluster'],
    () =>
      clusterRows()
        .filter((c) => c.at !== null)
        .map((c) => ({ labels: { cluster: c.name }, value: c.at! / 1000 })),
  );
  storeGauge(
    'inventory_age_seconds',
    "Age of each cluster's inventory: seconds since its last successful sync.",
    ['cluster'],
    () =>
      clusterRows()
        .filter((c) => c.at !== null)
        .map((c) => ({ labels: { cluster: c.name }, value: Math.max(0, (now() - c.at!) / 1000) })),
  );
  storeGauge(
    'sync_consecutive_failures',
    'Failed sync cycles in a row per cluster (0 after a success).',
    ['cluster'],
    () => clusterRows().map((c) => ({ labels: { cluster: c.name }, value: c.failures })),
  );
  storeGauge(
    'guests',
    'Live guests by cluster, status and type (from guest_stats).',
    ['cluster', 'status', 'type'],
    () =>
      (
        store()
          .sqlite.prepare(
            'SELECT cluster, status, type, sum(guests) AS n FROM guest_stats GROUP BY cluster, status, type',
          )
          .all() as Array<{ cluster: string; status: string; type: string; n: number }>
      ).map((r) => ({ labels: { cluster: r.cluster, status: r.status, type: r.type }, value: r.n })),
  );
  storeGauge('stale_nodes', 'Nodes showing last-known values (offline or unreachable), per cluster.', ['cluster'], () =>
    (
      store()
        .sqlite.prepare(
          'SELECT c.name AS cluster, (SELECT count(*) FROM nodes n WHERE n.cluster = c.name AND n.stale) AS n FROM clusters c',
        )
        .all() as Array<{ cluster: string; n: number }>
    ).map((r) => ({ labels: { cluster: r.cluster }, value: r.n })),
  );
  storeGauge('actions', "Actions waiting or running, by state (the action queue's depth).", ['state'], () => {
    const counts = store()
      .sqlite.prepare("SELECT state, count(*) AS n FROM actions WHERE state IN ('queued', 'running') GROUP BY state")
      .all() as Array<{ state: string; n: number }>;
    const by = new Map(counts.map((r) => [r.state, r.n]));
    return ['queued', 'running'].map((state) => ({ labels: { state }, value: by.get(state) ?? 0 }));
  });
  storeGauge(
    'webhook_dead_letters',
    'Webhook deliveries that failed for good (replayable with `webhooks replay`).',
    [],
    () => [
      {
        labels: {},
        value: store()
          .sqlite.prepare("SELECT count(*) FROM webhook_deliveries WHERE state = 'failed'")
          .pluck()
          .get() as number,
      },
    ],
  );
  new Gauge({
    name: `${PREFIX}action_worker_canary_age_seconds`,
    help: 'Seconds since the action worker last took its canary job; absent until it first does (actions off).',
    registers: [registry],
    collect() {
      this.reset();
      if (canaryTakenAt !== undefined) this.set(Math.max(0, (now() - canaryTakenAt) / 1000));
    },
  });
  new Gauge({
    name: `${PREFIX}sync_interval_seconds`,
    help: 'Seconds between sync cycles (SYNC_INTERVAL_SECONDS); 0: no schedule.',
    registers: [registry],
    collect() {
      this.reset();
      const interval = source!.options.syncIntervalSeconds;
      if (interval !== undefined) this.set(interval);
    },
  });
}

/** The /metrics source for the daemon's store. */
export function createMetrics(store: Store, options: MetricsOptions = {}): Metrics {
  source = { store, options };
  buildStoreGauges();
  return { contentType: registry.contentType, scrape: () => registry.metrics() };
}
