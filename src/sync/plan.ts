/**
 * Which guest configs a cycle fetches. There is no bulk config endpoint, so a config is read only
 * when a change signal points at it: a new guest, a changed resources field, a finished task that
 * changes configs, an `update VM` line in the cluster log, an earlier fetch that did not happen;
 * plus a slow round-robin sweep that catches what leaves no signal (LXC config edits).
 */
import type { ClusterLogEntry, GuestResource, Task } from '../proxmox/types.js';
import type { GuestRow } from '../store/sync-state.js';

export type FetchReason = 'new' | 'changed' | 'task' | 'log' | 'retry' | 'sweep';

/** The order in which a cycle's budget is spent (a stable sort keeps resource order within each). */
const PRIORITY: Record<FetchReason, number> = { new: 0, changed: 1, task: 2, log: 3, retry: 4, sweep: 5 };

/** Task types whose completion changes a guest's config (API-NOTES §2.18). */
export const CONFIG_TASK_TYPES = new Set([
  'qmconfig',
  'qmclone',
  'qmigrate',
  'qmsnapshot',
  'qmdelsnapshot',
  'qmrollback',
  'qmtemplate',
  'qmmove',
  'qmresize',
  'resize',
  'qmcreate',
  'qmrestore',
  'qmsuspend',
  'move_volume',
  'vzcreate',
  'vzrestore',
  'vzclone',
  'vzmigrate',
  'vzsnapshot',
  'vzdelsnapshot',
  'vzrollback',
  'vztemplate',
  'vzresize',
  'hamigrate',
  // A destroyed vmid listed again belongs to a new guest, whose config is needed.
  'qmdestroy',
  'vzdestroy',
]);

const UPDATE_VM = /^update VM (\d+):/;

/**
 * Fields of /cluster/resources that come from the config: a change means the config changed.
 * A lock alone does not: vzdump locks every guest nightly, and reading every config for it would
 * spend the budget that real edits need.
 */
export function resourceSignalsChange(prev: GuestRow, r: GuestResource): boolean {
  if (prev.node !== r.node) return true;
  if (JSON.stringify(r.tags) !== prev.tags) return true;
  // Offline-node entries carry no stats: only the config-derived tags and node can be compared.
  if (r.maxmem === undefined) return false;
  return (
    (r.name ?? null) !== (prev.name ?? null) ||
    r.maxmem !== prev.maxmem ||
    (r.maxcpu ?? null) !== (prev.maxcpu ?? null) ||
    (r.maxdisk ?? null) !== (prev.maxdisk ?? null) ||
    r.template !== Boolean(prev.template)
  );
}

/** Highest /cluster/log uid read per node. */
export type LogCursors = Record<string, number>;

export interface LogSignals {
  /** vmids named by `update VM` lines not seen before. */
  vmids: Set<number>;
  /** The cursors after this read. */
  cursors: LogCursors;
  /** Lines were lost between two reads (the ring buffer wrapped): some edit may have been missed. */
  gap: boolean;
}

/**
 * New `update VM` lines in the cluster log. Each node numbers its lines itself and starts over when
 * pmxcfs restarts: a node whose highest uid went down has restarted, and its lines since the last
 * read count as new; a node whose oldest returned uid is past its cursor + 1 has lost lines.
 */
export function logSignals(
  log: ClusterLogEntry[],
  cursors: LogCursors | undefined,
  lastReadAt: number | undefined,
): LogSignals {
  const byNode = new Map<string, ClusterLogEntry[]>();
  for (const e of log) byNode.set(e.node, [...(byNode.get(e.node) ?? []), e]);
  const next: LogCursors = { ...cursors };
  const vmids = new Set<number>();
  let gap = false;
  for (const [node, entries] of byNode) {
    const uids = entries.map((e) => e.uid);
    const max = Math.max(...uids);
    const min = Math.min(...uids);
    next[node] = max;
    if (cursors === undefined) continue; // first read: every config is read anyway
    const cursor = cursors[node];
    const restarted = cursor !== undefined && max < cursor;
    if (cursor !== undefined && !restarted && min > cursor + 1) gap = true;
    const since = Math.floor((lastReadAt ?? 0) / 1000);
    for (const e of entries) {
      const fresh = cursor === undefined || restarted ? e.time >= since : e.uid > cursor;
      const m = fresh ? UPDATE_VM.exec(e.msg) : null;
      if (m) vmids.add(Number(m[1]));
    }
  }
  return { vmids, cursors: next, gap };
}

export interface PlanInput {
  resources: GuestResource[];
  prev: Map<number, GuestRow>;
  onlineNodes: Set<string>;
  tasks: Task[];
  knownTasks: Map<string, string>;
  /** vmids named by new `update VM` lines (logSignals). */
  logVmids: Set<number>;
  sweepDue: boolean;
  /** Guests swept per sweep batch. */
  sweepBatch: number;
  /** Most configs fetched in one cycle; the rest stay dirty for the next. Infinity on the first sync. */
  budget: number;
}

export interface Plan {
  fetch: Array<{ resource: GuestResource; reason: FetchReason }>;
  /** Guests that need a fetch but did not get one this cycle (offline node, over budget). */
  deferred: Set<number>;
}

export function planConfigFetches(input: PlanInput): Plan {
  const reasons = new Map<number, FetchReason>();
  const byVmid = new Map(input.resources.map((r) => [r.vmid, r]));
  const want = (vmid: number, reason: FetchReason): void => {
    if (byVmid.has(vmid) && !reasons.has(vmid)) reasons.set(vmid, reason);
  };

  for (const r of input.resources) {
    const prev = input.prev.get(r.vmid);
    if (!prev || prev.deletedAt || prev.configFetchedAt == null) want(r.vmid, 'new');
    else if (resourceSignalsChange(prev, r)) want(r.vmid, 'changed');
    else if (prev.configDirty) want(r.vmid, 'retry');
  }
  for (const t of input.tasks) {
    // Finished since the last read: unknown before, or known while still running.
    const known = input.knownTasks.get(t.upid);
    const finishedNow = t.endtime !== undefined && (known === undefined || known === 'running');
    if (finishedNow && CONFIG_TASK_TYPES.has(t.type) && /^\d+$/.test(t.id)) want(Number(t.id), 'task');
  }
  for (const vmid of input.logVmids) want(vmid, 'log');
  if (input.sweepDue && input.sweepBatch > 0) {
    // Only guests whose config can be read now: an offline node's guests would fill every batch.
    const oldest = input.resources
      .filter((r) => !reasons.has(r.vmid) && input.onlineNodes.has(r.node))
      .map((r) => ({ r, at: input.prev.get(r.vmid)?.configFetchedAt ?? 0 }))
      .sort((a, b) => a.at - b.at)
      .slice(0, input.sweepBatch);
    for (const { r } of oldest) want(r.vmid, 'sweep');
  }

  // Signalled reads first: guests whose reads keep failing (retries) must not take the whole
  // budget from edits that just happened; the sweep takes what is left.
  const ordered = [...reasons].sort((a, b) => PRIORITY[a[1]] - PRIORITY[b[1]]);
  const fetch: Plan['fetch'] = [];
  const deferred = new Set<number>();
  for (const [vmid, reason] of ordered) {
    const resource = byVmid.get(vmid)!;
    if (!input.onlineNodes.has(resource.node) || fetch.length >= input.budget) {
      if (reason !== 'sweep') deferred.add(vmid);
    } else fetch.push({ resource, reason });
  }
  return { fetch, deferred };
}
