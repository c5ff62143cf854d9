/**
 * One sync cycle for one cluster (DESIGN.md "Sync: a few bulk calls, never N+1"):
 * 1. the bulk reads in parallel: /cluster/resources, /cluster/status, /cluster/tasks, /cluster/log;
 * 2. config reads only for guests a change signal points at (plan.ts), bounded in concurrency and count;
 * 3. diff against the store and write rows, events and the sync_runs row in one transaction.
 * A failed bulk read changes no values: it marks the cluster's rows stale and records the failure.
 */
import type { Logger } from '../log.js';
import type { ProxmoxClient } from '../proxmox/client.js';
import { ProxmoxApiError } from '../proxmox/errors.js';
import type { ClusterLogEntry, Version } from '../proxmox/types.js';
import type { Store } from '../store/db.js';
import type { NewEvent } from '../store/events.js';
import { applyCycle, loadClusterState, recordSyncFailure, type ClusterState, type GuestMetricsRow, type GuestRow, type NodeRow, type StorageRow } from '../store/sync-state.js';
import { countCalls } from './counting-client.js';
import { parseGuestConfig } from './parse-config.js';
import { planConfigFetches } from './plan.js';
import { guestEvents, guestRow, liveMetrics, metricsDiffer, missingGuest, nodeRow, storageRow, taskRow, unchangedLive, type FetchedConfig } from './rows.js';

export interface SyncSettings {
  /** Consecutive complete reads a guest must be missing from before it is tombstoned. */
  missingThreshold: number;
  configConcurrency: number;
  /** Most config reads in one cycle after the first sync. */
  configBudget: number;
  /** Every guest's config is re-read at least this often by the sweep. */
  sweepPeriodMs: number;
  /** How often a sweep batch runs (0: never). */
  sweepEveryMs: number;
  /** Read /cluster/log for `update VM` lines (qemu config edits leave no task). */
  clusterLog: boolean;
}

export const DEFAULT_SYNC_SETTINGS: SyncSettings = {
  missingThreshold: 2,
  configConcurrency: 8,
  configBudget: 200,
  sweepPeriodMs: 3_600_000,
  sweepEveryMs: 60_000,
  clusterLog: true,
};

export interface CycleDeps {
  store: Store;
  /**
   * The cluster's state as the previous cycle left it. The daemon is the store's only writer, so
   * keeping it saves re-reading every row each cycle; undefined means "load it from the store".
   */
  state?: ClusterState;
  client: ProxmoxClient;
  /** The configured cluster name (the store's key). */
  cluster: string;
  settings: SyncSettings;
  log: Logger;
  /** Aborting skips the write: the cycle then leaves the store as it was. */
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
  now?: () => number;
}

export interface CycleSummary {
  cluster: string;
  ok: boolean;
  /** The cycle was aborted before writing. */
  aborted?: boolean;
  runId?: number;
  /** The state after this cycle (for the next one); undefined after a failure. */
  state?: ClusterState;
  durationMs: number;
  calls: Record<string, number>;
  callsTotal: number;
  guests: number;
  nodes: number;
  configsFetched: number;
  changes: Record<string, number>;
  /** Wall time of each phase, in ms: bulk reads, config reads, diff, write. */
  phases: Record<string, number>;
  error?: string;
}

const LOG_LINES = 500;

async function forEachConcurrent<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export async function runSyncCycle(deps: CycleDeps): Promise<CycleSummary> {
  const { store, cluster, settings, log, signal } = deps;
  const now = deps.now ?? Date.now;
  const started = now();
  const counting = countCalls(deps.client);
  const client = counting.client;
  const state = deps.state ?? loadClusterState(store, cluster);
  const summary = (extra: Partial<CycleSummary>): CycleSummary => ({
    cluster, ok: false, durationMs: now() - started, calls: Object.fromEntries(counting.calls), callsTotal: counting.total(),
    guests: 0, nodes: 0, configsFetched: 0, changes: {}, phases, ...extra,
  });
  const phases: Record<string, number> = {};
  let mark = started;
  const phase = (name: string): void => {
    const t = now();
    phases[name] = t - mark;
    mark = t;
  };

  let read;
  const sweepDue = settings.sweepEveryMs > 0 && now() - (state.cluster?.lastSweepAt ?? 0) >= settings.sweepEveryMs;
  try {
    const [resources, status, tasks, clusterLog, version] = await Promise.all([
      client.clusterResources(),
      client.clusterStatus(),
      client.clusterTasks(),
      settings.clusterLog ? client.clusterLog(LOG_LINES) : Promise.resolve<ClusterLogEntry[]>([]),
      state.cluster?.pveVersion ? Promise.resolve<Version | undefined>(undefined) : client.version(),
    ]);
    read = { resources, status, tasks, clusterLog, version };
  } catch (err) {
    if (signal?.aborted) return summary({ aborted: true, error: 'aborted' });
    return recordFailure(deps, state.cluster?.stale ?? false, summary({ error: errorText(err) }), err, now);
  }
  const { resources, status, tasks, clusterLog, version } = read;
  phase('bulk');

  const onlineNodes = new Set(resources.nodes.filter((n) => n.status === 'online').map((n) => n.node));
  const firstSync = ![...state.guests.values()].some((g) => g.configFetchedAt != null);
  const guestsOnline = resources.guests.length;
  const plan = planConfigFetches({
    resources: resources.guests,
    prev: state.guests,
    onlineNodes,
    tasks,
    knownTasks: state.tasks,
    log: clusterLog,
    logCursor: state.cluster?.logCursor ?? undefined,
    sweepDue,
    sweepBatch: Math.ceil((guestsOnline * settings.sweepEveryMs) / settings.sweepPeriodMs),
    budget: firstSync ? Infinity : settings.configBudget,
  });

  const configs = new Map<number, FetchedConfig>();
  const failed = new Set<number>();
  let done = 0;
  await forEachConcurrent(plan.fetch, settings.configConcurrency, async ({ resource }) => {
    if (signal?.aborted) return;
    try {
      const { digest, values } = await client.guestConfig(resource);
      configs.set(resource.vmid, { digest, values, parsed: parseGuestConfig(resource.type, values) });
    } catch (err) {
      // The guest may have moved or gone since the bulk read; it stays marked for the next cycle.
      failed.add(resource.vmid);
      log.warn({ cluster, vmid: resource.vmid, node: resource.node, err: errorText(err) }, 'config read failed; will retry next cycle');
    }
    deps.onProgress?.(++done, plan.fetch.length);
  });
  if (signal?.aborted) return summary({ aborted: true, error: 'aborted' });
  phase('configs');

  const at = now();
  const events: NewEvent[] = [];
  const guestRows: GuestRow[] = [];
  const metrics: GuestMetricsRow[] = [];
  const previousReadAt = state.cluster?.lastSuccessAt ?? undefined;
  const seen = new Set<number>();
  for (const r of resources.guests) {
    if (seen.has(r.vmid)) {
      log.warn({ cluster, vmid: r.vmid }, 'vmid listed twice in /cluster/resources; keeping the first entry');
      continue;
    }
    seen.add(r.vmid);
    const prev = state.guests.get(r.vmid);
    const config = configs.get(r.vmid);
    const wanted = plan.deferred.has(r.vmid) || failed.has(r.vmid);
    const nodeOnline = onlineNodes.has(r.node);
    const live = nodeOnline ? liveMetrics(cluster, r, at) : undefined;
    if (live && metricsDiffer(state.metrics.get(r.vmid), live)) metrics.push(live);
    if (prev && !config && !wanted && nodeOnline && unchangedLive(prev, r, JSON.stringify(r.tags))) continue;
    const next = guestRow(prev, r, { cluster, at, previousReadAt, nodeOnline, config, configStillWanted: wanted });
    events.push(...guestEvents(cluster, prev, next));
    guestRows.push(next);
  }
  // Missing guests count only where the read covered their node: a partial read never deletes.
  const nodesInRead = new Set(resources.nodes.map((n) => n.node));
  for (const prev of state.guests.values()) {
    if (seen.has(prev.vmid) || prev.deletedAt || !nodesInRead.has(prev.node)) continue;
    const { row, event } = missingGuest(prev, at, settings.missingThreshold, previousReadAt);
    guestRows.push(row);
    if (event) events.push(event);
  }

  const membership = new Map(status.nodes.map((n) => [n.name, n]));
  const nodeRows: NodeRow[] = resources.nodes.map((r) => {
    const prev = state.nodes.get(r.node);
    const next = nodeRow(prev, r, { nodeid: membership.get(r.node)?.nodeid, ip: membership.get(r.node)?.ip }, cluster, at);
    if (prev && prev.status !== next.status) {
      events.push({ type: 'node.status_changed', cluster, subject: { kind: 'node', id: `${cluster}/${r.node}` }, data: { node: r.node, from: prev.status, to: next.status } });
    }
    return next;
  });
  const prevStorage = new Map(state.storage.map((s) => [`${s.node}/${s.storage}`, s]));
  const storageRows: StorageRow[] = resources.storage.map((r) => storageRow(prevStorage.get(`${r.node}/${r.storage}`), r, cluster, at, onlineNodes.has(r.node)));

  const prevCluster = state.cluster;
  const quorate = status.cluster?.quorate ?? status.nodes.length === 1;
  if (prevCluster?.quorate != null && prevCluster.quorate !== quorate) {
    events.push({ type: 'cluster.quorum_changed', cluster, subject: { kind: 'cluster', id: cluster }, data: { from: prevCluster.quorate, to: quorate } });
  }
  if (prevCluster?.stale) {
    events.push({ type: 'cluster.sync_recovered', cluster, subject: { kind: 'cluster', id: cluster }, data: { failures: prevCluster.consecutiveFailures, since: prevCluster.lastSuccessAt ? new Date(prevCluster.lastSuccessAt).toISOString() : null } });
  }
  const maxLogUid = clusterLog.reduce((m, e) => Math.max(m, e.uid), state.cluster?.logCursor ?? 0);

  const changes: Record<string, number> = {};
  for (const e of events) changes[e.type] = (changes[e.type] ?? 0) + 1;
  phase('diff');
  const finishedAt = now();
  const result = summary({ ok: true, guests: seen.size, nodes: nodeRows.length, configsFetched: configs.size, changes });
  const clusterFields = {
    clusterName: status.cluster?.name ?? null,
    quorate,
    stale: false,
    lastAttemptAt: started,
    lastSuccessAt: at,
    lastError: null,
    consecutiveFailures: 0,
    logCursor: settings.clusterLog ? maxLogUid : state.cluster?.logCursor ?? null,
    ...(sweepDue ? { lastSweepAt: at } : {}),
    ...(version ? { pveVersion: version.version } : {}),
  };
  const runId = applyCycle(store, {
    cluster,
    at,
    clusterFields,
    nodes: nodeRows,
    guests: guestRows,
    metrics,
    storage: storageRows,
    pools: resources.pools.map((p) => p.pool),
    tasks: tasks.map((t) => taskRow(t, cluster, at)),
    events,
    run: {
      cluster, startedAt: started, finishedAt, durationMs: finishedAt - started, ok: true, error: null,
      calls: JSON.stringify(result.calls), callsTotal: result.callsTotal, guests: seen.size, nodes: nodeRows.length,
      configsFetched: configs.size, changes: events.length, warnings: failed.size,
    },
  });
  phase('write');

  // The write committed: bring the kept state to what the store now holds, in place.
  state.cluster = { ...(state.cluster ?? emptyCluster(cluster)), ...clusterFields };
  for (const n of nodeRows) state.nodes.set(n.node, n);
  for (const m of metrics) state.metrics.set(m.vmid, m);
  for (const g of guestRows) state.guests.set(g.vmid, g);
  state.storage = storageRows;
  for (const t of tasks) state.tasks.set(t.upid, t.endtime === undefined ? 'running' : 'finished');
  return { ...result, runId, state, durationMs: now() - started };
}

function emptyCluster(name: string): ClusterState['cluster'] & object {
  return { name, clusterName: null, pveVersion: null, quorate: null, stale: false, lastAttemptAt: null, lastSuccessAt: null, lastError: null, consecutiveFailures: 0, logCursor: null, lastSweepAt: null };
}

function recordFailure(deps: CycleDeps, alreadyStale: boolean, result: CycleSummary, err: unknown, now: () => number): CycleSummary {
  const { store, cluster, log } = deps;
  const kind = err instanceof ProxmoxApiError ? err.kind : 'internal';
  log.warn({ cluster, kind, err: result.error }, 'sync failed; keeping the last-known inventory, marked stale');
  const at = now();
  const events: NewEvent[] = alreadyStale ? [] : [{ type: 'cluster.sync_failed', cluster, subject: { kind: 'cluster', id: cluster }, data: { error: result.error, kind } }];
  const runId = recordSyncFailure(store, {
    cluster,
    at,
    error: result.error ?? 'unknown error',
    events,
    run: { cluster, startedAt: at - result.durationMs, finishedAt: at, durationMs: result.durationMs, ok: false, error: result.error ?? null, calls: JSON.stringify(result.calls), callsTotal: result.callsTotal },
  });
  return { ...result, runId, changes: alreadyStale ? {} : { 'cluster.sync_failed': 1 } };
}

export interface ClusterSync {
  readonly cluster: string;
  runCycle(options?: { signal?: AbortSignal; onProgress?: (done: number, total: number) => void }): Promise<CycleSummary>;
}

/** A cluster's sync, keeping the state each cycle leaves for the next (reloaded after a failure). */
export function createClusterSync(deps: Omit<CycleDeps, 'state' | 'signal' | 'onProgress'>): ClusterSync {
  let state: ClusterState | undefined;
  return {
    cluster: deps.cluster,
    async runCycle(options = {}) {
      const summary = await runSyncCycle({ ...deps, ...options, state });
      state = summary.state;
      return summary;
    },
  };
}
