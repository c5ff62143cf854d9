/**
 * One sync cycle for one cluster (DESIGN.md "Sync: a few bulk calls, never N+1"):
 * 1. the bulk reads in parallel: /cluster/resources, /cluster/status, /cluster/tasks, /cluster/log;
 * 2. config reads only for guests a change signal points at (plan.ts), bounded in concurrency and count;
 * 3. diff against the store (diff.ts) and write rows, events and the sync_runs row in one transaction.
 * A failed phase changes no values: it marks the cluster's rows stale and records the failure.
 */
import type { Logger } from '../log.js';
import type { ProxmoxClient } from '../proxmox/client.js';
import { ProxmoxApiError } from '../proxmox/errors.js';
import type { ClusterLogEntry, ClusterResources, ClusterStatus, Task, Version } from '../proxmox/types.js';
import type { Store } from '../store/db.js';
import type { NewEvent } from '../store/events.js';
import { parseJson } from '../store/queries/shared.js';
import { summarizeGuests, type GuestStatsRow } from '../store/guest-stats.js';
import {
  applyCycle,
  ConcurrentWriteError,
  currentLastRunId,
  loadClusterState,
  recordSyncFailure,
  refreshStatisticsAfter,
  type ClusterRow,
  type ClusterState,
} from '../store/sync-state.js';
import { countCalls } from './counting-client.js';
import { diffCycle, type CycleDiff } from './diff.js';
import { describeIdentity, parseIdentity, type ClusterIdentity } from '../store/cluster-identity.js';
import { destroyedSince, identityOf, sameCluster } from './identity.js';
import { dueNodes, readNodeStatus, type NodeStatusRead } from './node-status.js';
import { parseGuestConfig } from './parse-config.js';
import { logSignals, planConfigFetches, type FetchReason, type LogCursors, type Plan } from './plan.js';
import { taskRow, type FetchedConfig } from './rows.js';
import { signalProblems } from './signals.js';
import { applyReadBack, holdConfirmedStatus, readGuestBack, snapshotRows, type RefreshResult } from './refresh.js';

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
  /**
   * A cycle still running after this long fails as such: a cluster that answers, but too slowly
   * (each request also has its own deadline), must not hold the cluster's schedule forever.
   */
  cycleTimeoutMs: number;
  /**
   * How often each online node's GET /nodes/{node}/status (load, kernel, version, KSM, swap) is
   * read: one call per node, so not every cycle (0: never; default 5 minutes).
   */
  nodeStatusPeriodMs?: number;
}

export const DEFAULT_NODE_STATUS_PERIOD_MS = 300_000;

export const DEFAULT_SYNC_SETTINGS: SyncSettings = {
  missingThreshold: 2,
  configConcurrency: 8,
  configBudget: 200,
  sweepPeriodMs: 21_600_000,
  sweepEveryMs: 60_000,
  clusterLog: true,
  cycleTimeoutMs: 300_000,
  nodeStatusPeriodMs: DEFAULT_NODE_STATUS_PERIOD_MS,
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
  /** Told when each phase starts, in the words a failure would use (`reading the cluster`, …). */
  onPhase?: (phase: string) => void;
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
  /** Another process wrote the cluster meanwhile: nothing was written, and a new cycle starts from the store. */
  concurrentWrite?: boolean;
  /** Signal reads that failed in a cycle that still applied (endpoint → what happened). */
  missingSignals?: Record<string, string>;
  /** Wall time of each phase, in ms: bulk reads, config reads, diff, write. */
  phases: Record<string, number>;
  error?: string;
  /**
   * false: the cycle failed and the store could not record the failure either (a full disk), so
   * the inventory file does not show it; only the daemon's memory does. Unset otherwise.
   */
  recorded?: boolean;
  /** A failed cycle of a cluster that has never synced: there is no last-known inventory to keep. */
  neverSynced?: boolean;
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
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
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

/** The phases of a cycle, as a failure names them. */
const PHASES = {
  bulk: 'reading the cluster',
  plan: 'planning config reads',
  configs: 'reading guest configs',
  diff: 'comparing the read with the store',
  write: 'writing the cycle to the store',
} as const;
type Phase = keyof typeof PHASES;

/** The cycle ran past `cycleTimeoutMs`: a cluster that answers, but too slowly to finish. */
class CycleDeadlineError extends Error {
  constructor(readonly ms: number) {
    super(`the cycle passed its deadline of ${Math.round(ms / 1000)} s`);
    this.name = 'CycleDeadlineError';
  }
}

/** A phase's failure, carrying the phase it happened in. */
class PhaseError extends Error {
  constructor(
    readonly phase: Phase,
    override readonly cause: unknown,
  ) {
    super(errorText(cause));
    this.name = 'PhaseError';
  }
}

async function inPhase<T>(phase: Phase, fn: () => T | Promise<T>, onPhase?: (phase: string) => void): Promise<T> {
  try {
    onPhase?.(PHASES[phase]);
    return await fn();
  } catch (err) {
    throw new PhaseError(phase, err);
  }
}

/** What a failed cycle records: the phase and the cause, in words an operator can act on. */
function failureText(phase: Phase, cause: unknown): string {
  if (cause instanceof CycleDeadlineError) {
    return `${cause.message} while ${PHASES[phase]}: the cluster answers too slowly to finish a cycle (raise sync.cycleTimeoutSeconds for a very large first sync)`;
  }
  if (cause instanceof ProxmoxApiError) return cause.message; // names the request and the reason
  return `${PHASES[phase]} failed: ${errorText(cause)}`;
}

/** The JSON log cursors a cycle left, or undefined (with a gap to compensate) when they do not parse. */
function parseLogCursors(
  text: string | null | undefined,
  log: Logger,
  cluster: string,
): { cursors: LogCursors | undefined; damaged: boolean } {
  if (!text) return { cursors: undefined, damaged: false };
  try {
    const value = JSON.parse(text) as unknown;
    if (value && typeof value === 'object' && !Array.isArray(value))
      return { cursors: value as LogCursors, damaged: false };
  } catch {
    // fall through
  }
  log.warn(
    { cluster },
    'the stored cluster-log cursors do not parse; reading the log afresh and running a sweep batch',
  );
  return { cursors: undefined, damaged: true };
}

interface BulkRead {
  resources: ClusterResources;
  status: ClusterStatus;
  /** Undefined when the read failed (a signal: the cycle goes on without it). */
  tasks: Task[] | undefined;
  clusterLog: ClusterLogEntry[] | undefined;
  version: Version | undefined;
  /** The change signals the token's privileges hide, when they were checked this cycle. */
  privilegeProblems: Record<string, string> | undefined;
  /** Signal reads that failed this cycle: endpoint → what happened and what makes up for it. */
  missing: Record<string, string>;
}

/**
 * What the token's privileges hide (Sys.Syslog on / for the log), by signal; empty when nothing.
 * A failed check is reported as a problem of the signal, never as a failed cycle.
 */
async function checkPrivileges(client: ProxmoxClient, settings: SyncSettings): Promise<Record<string, string>> {
  if (!settings.clusterLog) return {};
  try {
    return (
      signalProblems(await client.permissions('/'), settings.sweepEveryMs > 0 ? settings.sweepPeriodMs / 60_000 : 0) ??
      {}
    );
  } catch (err) {
    return {
      log: `could not check the token's privileges for the cluster log (GET /access/permissions): ${errorText(err)}`,
    };
  }
}

/**
 * Step 1: the bulk reads, in parallel. /cluster/resources and /cluster/status are the inventory:
 * without either the cycle fails. Tasks, the log and the version are signals: a failed one is
 * noted in `missing` and the cycle goes on (a sweep batch makes up for the edits it would have
 * pointed at).
 */
async function readBulk(
  client: ProxmoxClient,
  settings: SyncSettings,
  state: ClusterState,
  sweepDue: boolean,
): Promise<BulkRead> {
  // The release and the token's privileges change rarely: read them first time and with each sweep batch.
  const occasional = !state.cluster?.pveVersion || sweepDue;
  const missing: Record<string, string> = {};
  const signal = <T>(endpoint: string, read: Promise<T>, makeUp: string): Promise<T | undefined> =>
    read.catch((err: unknown) => {
      missing[endpoint] = `${errorText(err)}; ${makeUp}`;
      return undefined;
    });
  const [resources, status, tasks, clusterLog, version, privilegeProblems] = await Promise.all([
    client.clusterResources(),
    client.clusterStatus(),
    signal(
      'GET /cluster/tasks',
      client.clusterTasks(),
      'the cycle went on without it, and a sweep batch re-read configs tasks may have changed',
    ),
    settings.clusterLog
      ? signal(
          'GET /cluster/log',
          client.clusterLog(LOG_LINES),
          'the cycle went on without it, and a sweep batch re-read configs edits may have changed',
        )
      : Promise.resolve<ClusterLogEntry[]>([]),
    occasional
      ? signal('GET /version', client.version(), 'the last known version is kept')
      : Promise.resolve<Version | undefined>(undefined),
    occasional ? checkPrivileges(client, settings) : Promise.resolve(undefined),
  ]);
  return { resources, status, tasks, clusterLog, version, privilegeProblems, missing };
}

/**
 * clusters.signal_problems after this cycle: the privilege check's findings (kept from the last
 * check when none ran) and the signal reads that failed this cycle.
 */
function mergeSignalProblems(stored: string | null | undefined, read: BulkRead): string | null {
  // A damaged value is replaced.
  const previous = parseJson<Record<string, string> | null>(stored, null) ?? {};
  // Privileges are checked now and then; between checks their findings stay. Failed reads are this cycle's.
  const privileges =
    read.privilegeProblems ?? Object.fromEntries(Object.entries(previous).filter(([key]) => !key.startsWith('GET ')));
  const merged = { ...privileges, ...read.missing };
  return Object.keys(merged).length ? JSON.stringify(merged) : null;
}

interface CyclePlan {
  plan: Plan;
  cursors: LogCursors;
  /** A sweep batch runs this cycle (due, or to make up for lost log lines). */
  sweeping: boolean;
}

/** Step 2a: which configs to read. */
function planCycle(
  deps: CycleDeps,
  state: ClusterState,
  read: BulkRead,
  sweepDue: boolean,
  onlineNodes: Set<string>,
): CyclePlan {
  const { cluster, settings, log } = deps;
  const firstSync = state.cluster?.lastSuccessAt == null;
  const previousReadAt = state.cluster?.lastSuccessAt ?? undefined;
  const stored = parseLogCursors(state.cluster?.logCursors, log, cluster);
  const logged =
    settings.clusterLog && read.clusterLog
      ? logSignals(read.clusterLog, stored.cursors, previousReadAt)
      : { vmids: new Set<number>(), cursors: stored.cursors ?? {}, gap: false };
  if (logged.gap)
    log.warn({ cluster }, 'cluster log lines were lost between two reads; running a sweep batch to catch missed edits');
  const signalsMissing = Object.keys(read.missing).some((e) => e !== 'GET /version');
  if (signalsMissing)
    log.warn(
      { cluster, missing: read.missing },
      'a change signal could not be read; applying the cycle without it, with a sweep batch',
    );
  const sweeping = sweepDue || logged.gap || stored.damaged || signalsMissing;
  const plan = planConfigFetches({
    resources: read.resources.guests,
    prev: state.guests,
    onlineNodes,
    tasks: read.tasks ?? [],
    knownTasks: state.tasks,
    logVmids: logged.vmids,
    sweepDue: sweeping,
    sweepBatch: Math.ceil((read.resources.guests.length * settings.sweepEveryMs) / settings.sweepPeriodMs),
    budget: firstSync ? Infinity : settings.configBudget,
  });
  return { plan, cursors: logged.cursors, sweeping };
}

/** Step 2b: the planned config reads; a read that fails leaves its guest marked for the next cycle. */
async function readConfigs(
  deps: CycleDeps,
  client: ProxmoxClient,
  plan: Plan,
  signal: AbortSignal,
  prev: ClusterState['guests'],
): Promise<{ configs: Map<number, FetchedConfig>; failed: Set<number> }> {
  const { cluster, settings, log } = deps;
  const configs = new Map<number, FetchedConfig>();
  const failed = new Set<number>();
  let done = 0;
  await untilAborted(
    forEachConcurrent(plan.fetch, settings.configConcurrency, async ({ resource, reason }) => {
      if (signal.aborted) return;
      try {
        const { digest, values } = await client.guestConfig(resource);
        const parsed = parseGuestConfig(resource.type, values);
        const fetched: FetchedConfig = { digest, values, parsed };
        const wanted = snapshotListWanted(reason, parsed.snapshotParent, prev.get(resource.vmid)?.snapshotParent);
        if (wanted === 'none') fetched.snapshots = [];
        else if (wanted === 'read') fetched.snapshots = snapshotRows(await client.snapshots(resource));
        configs.set(resource.vmid, fetched);
      } catch (err) {
        // The guest may have moved or gone since the bulk read; it stays marked for the next cycle.
        failed.add(resource.vmid);
        log.warn(
          { cluster, vmid: resource.vmid, node: resource.node, err: errorText(err) },
          'config read failed; will retry next cycle',
        );
      }
      deps.onProgress?.(++done, plan.fetch.length);
    }),
    signal,
  );
  if (signal.aborted) throw signal.reason;
  return { configs, failed };
}

/**
 * Whether a config read also reads the guest's snapshot list (one more call): when its config's
 * `parent` changed since the last read (a snapshot taken, rolled back or deleted) or a task on it
 * signalled the read. A config without `parent` has none: the list is empty without a call. The
 * first read of a guest and the sweep take no list (the per-cycle and per-period costs stay as
 * they were): a guest imported with snapshots has its list read at its next snapshot change, or
 * after an action on it, and get_guest says so until then.
 */
function snapshotListWanted(
  reason: FetchReason,
  parent: string | undefined,
  prevParent: string | null | undefined,
): 'read' | 'none' | 'keep' {
  if (!parent) return (prevParent ?? null) === null ? 'keep' : 'none';
  if (reason === 'new') return 'keep';
  return parent !== prevParent || reason === 'task' ? 'read' : 'keep';
}

/** The cluster's guests and their live memory as the store holds them after this write, for guest_stats. */
function statsAfter(cluster: string, state: ClusterState, diff: CycleDiff): GuestStatsRow[] {
  // The kept state is not copied (two 10,000-entry maps cost 2 ms a cycle).
  const written = new Map(diff.guests.map((g) => [g.vmid, g]));
  const moved = new Map(diff.metrics.map((m) => [m.vmid, m]));
  const guestsAfter = [...state.guests.values()].map((g) => written.get(g.vmid) ?? g);
  for (const g of diff.guests) if (!state.guests.has(g.vmid)) guestsAfter.push(g);
  return summarizeGuests(cluster, guestsAfter, (vmid) => (moved.get(vmid) ?? state.metrics.get(vmid))?.mem);
}

/** The node rows of this write carry the status fields read this cycle, stamped with the read's time. */
function applyNodeStatus(diff: CycleDiff, status: NodeStatusRead, at: number): void {
  for (const row of diff.nodes) {
    const fields = status.read.get(row.node);
    if (fields) Object.assign(row, fields, { statusReadAt: at });
  }
}

/** Nodes whose status did not answer keep their last values and are tried again a period later. */
function noteNodeStatusFailures(deps: CycleDeps, kept: ClusterState, status: NodeStatusRead, at: number): void {
  for (const node of status.read.keys()) kept.nodeStatusTriedAt.delete(node);
  if (status.failed.size === 0) return;
  for (const node of status.failed.keys()) kept.nodeStatusTriedAt.set(node, at);
  deps.log.warn(
    { cluster: deps.cluster, failed: Object.fromEntries(status.failed) },
    'node status (GET /nodes/{node}/status) could not be read; those nodes keep their last load, kernel and version, and are read again next period',
  );
}

/** The write committed: bring the kept state to what the store now holds, in place. */
function keepState(
  state: ClusterState,
  cluster: string,
  clusterFields: Partial<ClusterRow>,
  runId: number,
  diff: CycleDiff,
  tasks: Task[] | undefined,
): void {
  state.cluster = { ...(state.cluster ?? emptyCluster(cluster)), ...clusterFields, lastRunId: runId };
  for (const n of diff.nodes) state.nodes.set(n.node, n);
  for (const m of diff.metrics) state.metrics.set(m.vmid, m);
  for (const vmid of diff.dropMetrics) state.metrics.delete(vmid);
  for (const g of diff.guests) state.guests.set(g.vmid, g);
  state.storage = diff.storage;
  // Without this cycle's task list, the known tasks stay as they were (a task finishing meanwhile still signals later).
  if (tasks) state.tasks = new Map(tasks.map((t) => [t.upid, t.endtime === undefined ? 'running' : 'finished']));
}

/**
 * Who answered: the cluster the store holds (its members follow along), or another one (`other`).
 * Before calling it another, the kept identity is checked to still be the store's: a reset clears
 * it, and the cycle then starts over from the store (ConcurrentWriteError).
 */
function checkIdentity(
  store: Store,
  cluster: string,
  kept: ClusterState,
  read: BulkRead,
): { seen: ClusterIdentity; other?: { known: ClusterIdentity } } {
  const seen = identityOf(read.status, read.resources.nodes);
  const known = parseIdentity(kept.cluster?.identity);
  if (!known || sameCluster(known, seen)) return { seen };
  if (currentLastRunId(store, cluster) !== (kept.cluster?.lastRunId ?? null))
    throw new PhaseError('write', new ConcurrentWriteError(cluster));
  return { seen, other: { known } };
}

/** The cluster row after a successful cycle. */
function clusterFieldsAfter(
  kept: ClusterState,
  read: BulkRead,
  diff: CycleDiff,
  planned: CyclePlan,
  identity: ClusterIdentity,
  times: { started: number; at: number },
): Partial<ClusterRow> {
  return {
    clusterName: read.status.cluster?.name ?? kept.cluster?.clusterName ?? null,
    // Unknown quorum keeps the last known value, so a later real change is still reported.
    quorate: diff.quorate ?? kept.cluster?.quorate ?? null,
    stale: false,
    lastAttemptAt: times.started,
    lastSuccessAt: times.at,
    lastError: null,
    consecutiveFailures: 0,
    logCursors: JSON.stringify(planned.cursors),
    ...(planned.sweeping ? { lastSweepAt: times.at } : {}),
    ...(read.version ? { pveVersion: read.version.version } : {}),
    signalProblems: mergeSignalProblems(kept.cluster?.signalProblems, read),
    // The identity follows the members as they come and go.
    identity: JSON.stringify(identity),
    identityChanged: null,
  };
}

/**
 * One cycle: bulk reads → plan → config reads → diff → one write. A failure in any phase is
 * recorded with that phase and its cause and leaves the store's values as they were (marked
 * stale); shutdown (deps.signal) skips the write and records nothing; a cycle past
 * `cycleTimeoutMs` fails as such. Nothing after the commit can turn a written cycle into a failed one.
 */
export async function runSyncCycle(deps: CycleDeps): Promise<CycleSummary> {
  const { store, cluster, settings, log } = deps;
  const now = deps.now ?? Date.now;
  const started = now();
  const counting = countCalls(deps.client);
  const client = counting.client;
  const phases: Record<string, number> = {};
  let mark = started;
  const phaseDone = (name: string): void => {
    const t = now();
    phases[name] = t - mark;
    mark = t;
  };
  const summary = (extra: Partial<CycleSummary>): CycleSummary => ({
    cluster,
    ok: false,
    durationMs: now() - started,
    calls: Object.fromEntries(counting.calls),
    callsTotal: counting.total(),
    guests: 0,
    nodes: 0,
    configsFetched: 0,
    changes: {},
    phases,
    ...extra,
  });
  const deadlineMs = settings.cycleTimeoutMs;
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(new CycleDeadlineError(deadlineMs)), deadlineMs);
  const signal = deps.signal ? AbortSignal.any([deps.signal, deadline.signal]) : deadline.signal;

  let state: ClusterState | undefined = deps.state;
  try {
    state = state ?? (await inPhase('bulk', () => loadClusterState(store, cluster)));
    const kept = state;
    const sweepDue = settings.sweepEveryMs > 0 && now() - (kept.cluster?.lastSweepAt ?? 0) >= settings.sweepEveryMs;
    const read = await inPhase(
      'bulk',
      () => untilAborted(readBulk(client, settings, kept, sweepDue), signal),
      deps.onPhase,
    );
    phaseDone('bulk');
    const identity = checkIdentity(store, cluster, kept, read);
    if (identity.other) return refuseOtherCluster(deps, kept, summary({}), identity.other.known, identity.seen, now);

    const onlineNodes = new Set(read.resources.nodes.filter((n) => n.status === 'online').map((n) => n.node));
    const planned = await inPhase('plan', () => planCycle(deps, kept, read, sweepDue, onlineNodes), deps.onPhase);
    phaseDone('plan');
    const statusDue = dueNodes(
      onlineNodes,
      (node) => kept.nodes.get(node)?.statusReadAt,
      kept.nodeStatusTriedAt,
      now(),
      settings.nodeStatusPeriodMs ?? DEFAULT_NODE_STATUS_PERIOD_MS,
    );
    const [{ configs, failed }, nodeStatus] = await inPhase(
      'configs',
      () =>
        Promise.all([
          readConfigs(deps, client, planned.plan, signal, kept.guests),
          untilAborted(readNodeStatus(client, statusDue, settings.configConcurrency), signal),
        ]),
      deps.onPhase,
    );
    phaseDone('configs');

    const at = now();
    const stillWanted = new Set([...planned.plan.deferred, ...failed]);
    const destroyed = destroyedSince(read.tasks ?? [], kept.tasks);
    const diff = await inPhase(
      'diff',
      () =>
        diffCycle({
          cluster,
          at,
          state: kept,
          resources: { ...read.resources, guests: holdConfirmedStatus(kept, read.resources.guests, now()) },
          status: read.status,
          configs,
          stillWanted,
          missingThreshold: settings.missingThreshold,
          destroyed,
          initial: kept.cluster?.lastSuccessAt == null,
          log,
        }),
      deps.onPhase,
    );
    applyNodeStatus(diff, nodeStatus, at);
    const changes: Record<string, number> = {};
    for (const e of diff.events) changes[e.type] = (changes[e.type] ?? 0) + 1;
    phaseDone('diff');

    if (signal.aborted) throw new PhaseError('write', signal.reason);
    const finishedAt = now();
    const result = summary({
      ok: true,
      guests: diff.listed,
      nodes: read.resources.nodes.length,
      configsFetched: configs.size,
      changes,
    });
    const clusterFields = clusterFieldsAfter(kept, read, diff, planned, identity.seen, { started, at });
    const runId = await inPhase(
      'write',
      () =>
        applyCycle(store, {
          cluster,
          at,
          expectedLastRunId: kept.cluster?.lastRunId ?? null,
          clusterFields,
          nodes: diff.nodes,
          guests: diff.guests,
          metrics: diff.metrics,
          dropMetrics: diff.dropMetrics,
          guestStats: statsAfter(cluster, kept, diff),
          storage: diff.storage,
          pools: read.resources.pools.map((p) => p.pool),
          tasks: (read.tasks ?? []).map((t) => taskRow(t, cluster, at)),
          snapshots: [...configs].flatMap(([vmid, c]) => (c.snapshots ? [{ vmid, list: c.snapshots }] : [])),
          events: diff.events,
          run: {
            cluster,
            startedAt: started,
            finishedAt,
            durationMs: finishedAt - started,
            ok: true,
            error: null,
            calls: JSON.stringify(result.calls),
            callsTotal: result.callsTotal,
            guests: diff.listed,
            nodes: read.resources.nodes.length,
            configsFetched: configs.size,
            changes: JSON.stringify(changes),
            warnings: failed.size + read.resources.skipped.length + Object.keys(read.missing).length,
          },
        }),
      deps.onPhase,
    );
    phaseDone('write');

    // Committed. Nothing below may fail the cycle.
    keepState(kept, cluster, clusterFields, runId, diff, read.tasks);
    noteNodeStatusFailures(deps, kept, nodeStatus, at);
    if (Object.keys(read.missing).length) result.missingSignals = read.missing;
    try {
      refreshStatisticsAfter(store, diff.guests.length);
    } catch (err) {
      log.warn(
        { cluster, err: errorText(err) },
        'refreshing the query planner statistics failed; the cycle was written',
      );
    }
    return { ...result, runId, state: kept, durationMs: now() - started };
  } catch (err) {
    const phase = err instanceof PhaseError ? err.phase : 'bulk';
    const cause = err instanceof PhaseError ? err.cause : err;
    if (deps.signal?.aborted) return summary({ aborted: true, error: 'aborted' });
    if (cause instanceof ConcurrentWriteError) {
      // Another process synced this cluster meanwhile: drop the kept state and read it afresh next time.
      log.warn({ cluster }, cause.message);
      return summary({ error: cause.message, concurrentWrite: true });
    }
    // The configs it asked Proxmox for, read or not (a deadline may cut the reads short): a first
    // sync that fails after them is retried later, not at the next tick (scheduler.ts).
    const asked = [...counting.calls].filter(([endpoint]) => endpoint.endsWith('/config'));
    const configsFetched = asked.reduce((n, [, count]) => n + count, 0);
    const failed = summary({ error: failureText(phase, cause), configsFetched });
    return recordFailure(deps, state, failed, cause, now);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The URL now answers as another cluster: nothing of the read is applied (diffing two clusters
 * would report every guest as migrated, renamed or deleted). The cluster is flagged, once with an
 * event, until the old cluster answers again or an operator resets it.
 */
function refuseOtherCluster(
  deps: CycleDeps,
  state: ClusterState,
  result: CycleSummary,
  known: ClusterIdentity,
  seen: ClusterIdentity,
  now: () => number,
): CycleSummary {
  const { cluster } = deps;
  const error =
    `the API at this URL now answers as ${describeIdentity(seen)}, not ${describeIdentity(known)} that this inventory holds; ` +
    `nothing was applied. If the cluster was replaced on purpose, run \`proxmox-inventory cluster reset ${cluster}\`; ` +
    'if it is another cluster, give it its own name in the configuration';
  const flagged = state.cluster?.identityChanged != null;
  const since = now();
  const identityChanged = flagged
    ? state.cluster!.identityChanged!
    : JSON.stringify({ expected: known, seen, since: new Date(since).toISOString() });
  const event: NewEvent = {
    type: 'cluster.identity_changed',
    cluster,
    subject: { kind: 'cluster', id: cluster },
    data: { expected: known, seen },
  };
  return recordFailure(deps, state, { ...result, error }, new ClusterIdentityError(error), now, {
    events: flagged ? [] : [event],
    identityChanged,
  });
}

class ClusterIdentityError extends Error {
  override readonly name = 'ClusterIdentityError';
}

function recordFailure(
  deps: CycleDeps,
  state: ClusterState | undefined,
  result: CycleSummary,
  err: unknown,
  now: () => number,
  identity?: { events: NewEvent[]; identityChanged: string },
): CycleSummary {
  const { store, cluster, log } = deps;
  const kind = failureKind(err);
  const alreadyStale = state?.cluster?.stale ?? false;
  // The caller logs the failed cycle (serve: `sync failed`, sync --once: its summary line).
  const at = now();
  const failed: NewEvent = {
    type: 'cluster.sync_failed',
    cluster,
    subject: { kind: 'cluster', id: cluster },
    data: { error: result.error, kind },
  };
  const events: NewEvent[] = identity?.events ?? (alreadyStale ? [] : [failed]);
  const first = state?.cluster?.lastSuccessAt ? {} : { neverSynced: true };
  const changes: Record<string, number> = {};
  for (const e of events) changes[e.type] = (changes[e.type] ?? 0) + 1;
  try {
    const runId = recordSyncFailure(store, {
      cluster,
      at,
      error: result.error ?? 'unknown error',
      events,
      run: {
        cluster,
        startedAt: at - result.durationMs,
        finishedAt: at,
        durationMs: result.durationMs,
        ok: false,
        error: result.error ?? null,
        calls: JSON.stringify(result.calls),
        callsTotal: result.callsTotal,
        changes: JSON.stringify(changes),
      },
      ...(identity ? { identityChanged: identity.identityChanged } : {}),
    });
    return { ...result, ...first, runId, changes };
  } catch (writeErr) {
    // warn, not error: `serve` logs an error once per streak of unrecorded failures, not every cycle.
    log.warn({ cluster, err: errorText(writeErr) }, 'could not record the failed sync in the store');
    return { ...result, ...first, recorded: false };
  }
}

function failureKind(err: unknown): string {
  if (err instanceof ProxmoxApiError) return err.kind;
  if (err instanceof CycleDeadlineError) return 'deadline';
  if (err instanceof ClusterIdentityError) return 'identity';
  return 'internal';
}

function emptyCluster(name: string): ClusterState['cluster'] & object {
  return {
    name,
    clusterName: null,
    pveVersion: null,
    quorate: null,
    stale: false,
    lastAttemptAt: null,
    lastSuccessAt: null,
    lastError: null,
    consecutiveFailures: 0,
    logCursors: null,
    lastSweepAt: null,
    lastRunId: null,
    signalProblems: null,
    identity: null,
    identityChanged: null,
  };
}

/** Where a guest is, from the store, before a cycle has loaded the kept state. */
function storedGuestRef(
  store: Store,
  cluster: string,
  vmid: number,
): { node: string; type: 'qemu' | 'lxc' } | undefined {
  return store.sqlite
    .prepare('SELECT node, type FROM guests WHERE cluster = ? AND vmid = ? AND deleted_at IS NULL')
    .get(cluster, vmid) as { node: string; type: 'qemu' | 'lxc' } | undefined;
}

export interface ClusterSync {
  readonly cluster: string;
  runCycle(options?: {
    signal?: AbortSignal;
    onProgress?: (done: number, total: number) => void;
    onPhase?: (phase: string) => void;
  }): Promise<CycleSummary>;
  /**
   * Reads one guest back after an action (refresh.ts), in turn with the cycles: it never runs
   * beside one, so the change is reported once.
   */
  refreshGuest(vmid: number, options: { snapshots: boolean }): Promise<RefreshResult>;
}

/**
 * A cluster's sync, keeping the state each cycle leaves for the next (reloaded after a failure).
 * Cycles and read-backs take turns: each starts when the one before it has finished.
 */
export function createClusterSync(deps: Omit<CycleDeps, 'state' | 'signal' | 'onProgress' | 'onPhase'>): ClusterSync {
  let state: ClusterState | undefined;
  let turn: Promise<unknown> = Promise.resolve();
  const inTurn = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = turn.then(fn, fn);
    turn = next.catch(() => undefined);
    return next;
  };
  return {
    cluster: deps.cluster,
    runCycle: (options = {}) =>
      inTurn(async () => {
        const summary = await runSyncCycle({ ...deps, ...options, state });
        state = summary.state;
        return summary;
      }),
    async refreshGuest(vmid, options) {
      const ref = state?.guests.get(vmid) ?? storedGuestRef(deps.store, deps.cluster, vmid);
      if (!ref || ('deletedAt' in ref && ref.deletedAt)) return { refreshed: false, events: 0 };
      const read = await readGuestBack(deps.client, { node: ref.node, type: ref.type, vmid }, options);
      return inTurn(async () => {
        state ??= loadClusterState(deps.store, deps.cluster);
        try {
          return applyReadBack({ ...deps, now: deps.now ?? Date.now }, state, read);
        } catch (err) {
          // Another writer moved the cluster on: start the next turn from the store.
          if (err instanceof ConcurrentWriteError) state = undefined;
          throw err;
        }
      });
    },
  };
}
