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
import { summarizeGuests } from '../store/guest-stats.js';
import { applyCycle, ConcurrentWriteError, loadClusterState, recordSyncFailure, type ClusterState, type GuestMetricsRow, type GuestRow, type NodeRow, type StorageRow } from '../store/sync-state.js';
import { countCalls } from './counting-client.js';
import { parseGuestConfig } from './parse-config.js';
import { logSignals, planConfigFetches, type LogCursors } from './plan.js';
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
   * The cluster's state as the previous cycle left it, which saves re-reading every row each cycle;
   * undefined means "load it from the store". The write is fenced (`last_run_id`): if another
   * process wrote the cluster meanwhile, the cycle writes nothing and the next one reloads.
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

/** Settles with `p`, or rejects as soon as `signal` aborts (shutdown must not wait on a hung cluster). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => (signal.removeEventListener('abort', onAbort), resolve(v)),
      (e: unknown) => (signal.removeEventListener('abort', onAbort), reject(e)),
    );
  });
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Every field but the bookkeeping ones: a row that compares equal needs no write. */
function sameRow(a: GuestRow, b: GuestRow): boolean {
  for (const key of Object.keys(b) as Array<keyof GuestRow>) {
    if (key !== 'updatedAt' && key !== 'syncRun' && (a[key] ?? null) !== (b[key] ?? null)) return false;
  }
  return true;
}

export async function runSyncCycle(deps: CycleDeps): Promise<CycleSummary> {
  const { store, cluster, settings, log, signal } = deps;
  const now = deps.now ?? Date.now;
  const started = now();
  const counting = countCalls(deps.client);
  const client = counting.client;
  const state = deps.state ?? loadClusterState(store, cluster);
  const phases: Record<string, number> = {};
  let mark = started;
  const phase = (name: string): void => {
    const t = now();
    phases[name] = t - mark;
    mark = t;
  };
  const summary = (extra: Partial<CycleSummary>): CycleSummary => ({
    cluster, ok: false, durationMs: now() - started, calls: Object.fromEntries(counting.calls), callsTotal: counting.total(),
    guests: 0, nodes: 0, configsFetched: 0, changes: {}, phases, ...extra,
  });
  const aborted = (): CycleSummary => summary({ aborted: true, error: 'aborted' });

  // 1. The bulk reads.
  const sweepDue = settings.sweepEveryMs > 0 && now() - (state.cluster?.lastSweepAt ?? 0) >= settings.sweepEveryMs;
  let read;
  try {
    read = await untilAborted(Promise.all([
      client.clusterResources(),
      client.clusterStatus(),
      client.clusterTasks(),
      settings.clusterLog ? client.clusterLog(LOG_LINES) : Promise.resolve<ClusterLogEntry[]>([]),
      // The release changes only with an upgrade: read it first time and with each sweep batch.
      state.cluster?.pveVersion && !sweepDue ? Promise.resolve<Version | undefined>(undefined) : client.version(),
    ]), signal);
  } catch (err) {
    if (signal?.aborted) return aborted();
    return recordFailure(deps, state, summary({ error: errorText(err) }), err, now);
  }
  const [resources, status, tasks, clusterLog, version] = read;
  phase('bulk');

  // 2. Which configs to read, then read them.
  const onlineNodes = new Set(resources.nodes.filter((n) => n.status === 'online').map((n) => n.node));
  const firstSync = state.cluster?.lastSuccessAt == null;
  const previousReadAt = state.cluster?.lastSuccessAt ?? undefined;
  const previousCursors = state.cluster?.logCursors ? (JSON.parse(state.cluster.logCursors) as LogCursors) : undefined;
  const logged = settings.clusterLog ? logSignals(clusterLog, previousCursors, previousReadAt) : { vmids: new Set<number>(), cursors: previousCursors ?? {}, gap: false };
  if (logged.gap) log.warn({ cluster }, 'cluster log lines were lost between two reads; running a sweep batch to catch missed edits');
  const plan = planConfigFetches({
    resources: resources.guests,
    prev: state.guests,
    onlineNodes,
    tasks,
    knownTasks: state.tasks,
    logVmids: logged.vmids,
    sweepDue: sweepDue || logged.gap,
    sweepBatch: Math.ceil((resources.guests.length * settings.sweepEveryMs) / settings.sweepPeriodMs),
    budget: firstSync ? Infinity : settings.configBudget,
  });
  phase('plan');

  const configs = new Map<number, FetchedConfig>();
  const failed = new Set<number>();
  let done = 0;
  try {
    await untilAborted(forEachConcurrent(plan.fetch, settings.configConcurrency, async ({ resource }) => {
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
    }), signal);
  } catch {
    return aborted();
  }
  if (signal?.aborted) return aborted();
  phase('configs');

  // 3. Diff against the kept state and write it all in one transaction.
  try {
    const at = now();
    const events: NewEvent[] = [];
    const guestRows: GuestRow[] = [];
    const metrics: GuestMetricsRow[] = [];
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
      if (prev && sameRow(prev, next)) continue; // e.g. a guest on an offline node, still stale
      events.push(...guestEvents(cluster, prev, next));
      guestRows.push(next);
    }

    // Missing guests count only where this read could have listed them: never from a partial read.
    const nodesInRead = new Set(resources.nodes.map((n) => n.node));
    const unreadable = new Set(resources.skipped.flatMap((e) => (e.vmid === undefined ? [] : [e.vmid])));
    const quorate = status.cluster?.quorate ?? status.nodes.length <= 1;
    const partial = resources.skipped.some((e) => (e.type === 'qemu' || e.type === 'lxc') && e.vmid === undefined) || !quorate
      || (resources.guests.length === 0 && [...state.guests.values()].some((g) => !g.deletedAt));
    if (partial) log.warn({ cluster, quorate, listed: resources.guests.length }, 'not counting missing guests this cycle: the read may be partial');
    const tombstoned: number[] = [];
    for (const prev of state.guests.values()) {
      if (partial || seen.has(prev.vmid) || unreadable.has(prev.vmid) || prev.deletedAt || !nodesInRead.has(prev.node)) continue;
      const { row, event } = missingGuest(prev, at, settings.missingThreshold, previousReadAt);
      guestRows.push(row);
      if (event) {
        events.push(event);
        tombstoned.push(prev.vmid);
      }
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
    // A node /cluster/resources no longer lists (removed from the cluster) keeps its row, marked missing.
    for (const prev of state.nodes.values()) {
      if (nodesInRead.has(prev.node) || prev.status === 'missing') continue;
      nodeRows.push({ ...prev, status: 'missing', online: false, stale: true, updatedAt: at });
      events.push({ type: 'node.status_changed', cluster, subject: { kind: 'node', id: `${cluster}/${prev.node}` }, data: { node: prev.node, from: prev.status, to: 'missing' } });
    }
    const prevStorage = new Map(state.storage.map((s) => [`${s.node}/${s.storage}`, s]));
    const storageRows: StorageRow[] = resources.storage.map((r) => storageRow(prevStorage.get(`${r.node}/${r.storage}`), r, cluster, at, onlineNodes.has(r.node)));

    const prevCluster = state.cluster;
    if (prevCluster?.quorate != null && prevCluster.quorate !== quorate) {
      events.push({ type: 'cluster.quorum_changed', cluster, subject: { kind: 'cluster', id: cluster }, data: { from: prevCluster.quorate, to: quorate } });
    }
    if (prevCluster?.stale) {
      events.push({ type: 'cluster.sync_recovered', cluster, subject: { kind: 'cluster', id: cluster }, data: { failures: prevCluster.consecutiveFailures, since: prevCluster.lastSuccessAt ? new Date(prevCluster.lastSuccessAt).toISOString() : null } });
    }

    const changes: Record<string, number> = {};
    for (const e of events) changes[e.type] = (changes[e.type] ?? 0) + 1;
    phase('diff');
    const finishedAt = now();
    const result = summary({ ok: true, guests: seen.size, nodes: resources.nodes.length, configsFetched: configs.size, changes });
    const clusterFields = {
      clusterName: status.cluster?.name ?? null,
      quorate,
      stale: false,
      lastAttemptAt: started,
      lastSuccessAt: at,
      lastError: null,
      consecutiveFailures: 0,
      logCursors: JSON.stringify(logged.cursors),
      ...(sweepDue || logged.gap ? { lastSweepAt: at } : {}),
      ...(version ? { pveVersion: version.version } : {}),
    };
    // The guests and their live memory as the store will hold them after this write, for
    // guest_stats; the kept state is not copied (two 10,000-entry maps cost 2 ms a cycle).
    const written = new Map(guestRows.map((g) => [g.vmid, g]));
    const moved = new Map(metrics.map((m) => [m.vmid, m]));
    const guestsAfter = [...state.guests.values()].map((g) => written.get(g.vmid) ?? g);
    for (const g of guestRows) if (!state.guests.has(g.vmid)) guestsAfter.push(g);
    const runId = applyCycle(store, {
      cluster,
      at,
      expectedLastRunId: state.cluster?.lastRunId ?? null,
      clusterFields,
      nodes: nodeRows,
      guests: guestRows,
      metrics,
      dropMetrics: tombstoned,
      guestStats: summarizeGuests(cluster, guestsAfter, (vmid) => (moved.get(vmid) ?? state.metrics.get(vmid))?.mem),
      storage: storageRows,
      pools: resources.pools.map((p) => p.pool),
      tasks: tasks.map((t) => taskRow(t, cluster, at)),
      events,
      run: {
        cluster, startedAt: started, finishedAt, durationMs: finishedAt - started, ok: true, error: null,
        calls: JSON.stringify(result.calls), callsTotal: result.callsTotal, guests: seen.size, nodes: resources.nodes.length,
        configsFetched: configs.size, changes: JSON.stringify(changes), warnings: failed.size + resources.skipped.length,
      },
    });
    phase('write');

    // The write committed: bring the kept state to what the store now holds, in place.
    state.cluster = { ...(state.cluster ?? emptyCluster(cluster)), ...clusterFields, lastRunId: runId };
    for (const n of nodeRows) state.nodes.set(n.node, n);
    for (const m of metrics) state.metrics.set(m.vmid, m);
    for (const vmid of tombstoned) state.metrics.delete(vmid);
    for (const g of guestRows) state.guests.set(g.vmid, g);
    state.storage = storageRows;
    state.tasks = new Map(tasks.map((t) => [t.upid, t.endtime === undefined ? 'running' : 'finished']));
    return { ...result, runId, state, durationMs: now() - started };
  } catch (err) {
    if (err instanceof ConcurrentWriteError) {
      // Another process synced this cluster meanwhile: drop the kept state and read it afresh next time.
      log.warn({ cluster }, err.message);
      return summary({ error: err.message });
    }
    return recordFailure(deps, state, summary({ error: errorText(err) }), err, now);
  }
}

function recordFailure(deps: CycleDeps, state: ClusterState, result: CycleSummary, err: unknown, now: () => number): CycleSummary {
  const { store, cluster, log } = deps;
  const kind = err instanceof ProxmoxApiError ? err.kind : 'internal';
  const alreadyStale = state.cluster?.stale ?? false;
  log.warn({ cluster, kind, err: result.error }, 'sync failed; keeping the last-known inventory, marked stale');
  const at = now();
  const events: NewEvent[] = alreadyStale ? [] : [{ type: 'cluster.sync_failed', cluster, subject: { kind: 'cluster', id: cluster }, data: { error: result.error, kind } }];
  const changes: Record<string, number> = alreadyStale ? {} : { 'cluster.sync_failed': 1 };
  try {
    const runId = recordSyncFailure(store, {
      cluster,
      at,
      error: result.error ?? 'unknown error',
      events,
      run: { cluster, startedAt: at - result.durationMs, finishedAt: at, durationMs: result.durationMs, ok: false, error: result.error ?? null, calls: JSON.stringify(result.calls), callsTotal: result.callsTotal, changes: JSON.stringify(changes) },
    });
    return { ...result, runId, changes };
  } catch (writeErr) {
    log.error({ cluster, err: errorText(writeErr) }, 'could not record the failed sync in the store');
    return result;
  }
}

function emptyCluster(name: string): ClusterState['cluster'] & object {
  return { name, clusterName: null, pveVersion: null, quorate: null, stale: false, lastAttemptAt: null, lastSuccessAt: null, lastError: null, consecutiveFailures: 0, logCursors: null, lastSweepAt: null, lastRunId: null, signalProblems: null };
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
