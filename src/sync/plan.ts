/**
 * Which guest configs a cycle fetches. There is no bulk config endpoint, so a config is read only
 * when a change signal points at it: a new guest, a changed resources field, a finished task that
 * changes configs, an `update VM` line in the cluster log, an earlier fetch that did not happen;
 * plus a slow round-robin sweep that catches what leaves no signal (LXC config edits).
 */
import type { ClusterLogEntry, GuestResource, Task } from '../proxmox/types.js';
import type { GuestRow } from '../store/sync-state.js';

export type FetchReason = 'new' | 'changed' | 'task' | 'log' | 'retry' | 'sweep';

/** Task types whose completion changes a guest's config (API-NOTES §2.18). */
export const CONFIG_TASK_TYPES = new Set([
  'qmconfig', 'qmclone', 'qmigrate', 'qmsnapshot', 'qmdelsnapshot', 'qmrollback', 'qmtemplate', 'qmmove', 'qmresize', 'resize',
  'qmcreate', 'qmrestore', 'qmsuspend', 'move_volume', 'vzcreate', 'vzrestore', 'vzclone', 'vzmigrate', 'vzsnapshot',
  'vzdelsnapshot', 'vzrollback', 'vztemplate', 'vzresize', 'hamigrate',
]);

const UPDATE_VM = /^update VM (\d+):/;

/** Fields of /cluster/resources that come from the config: a change means the config changed. */
export function resourceSignalsChange(prev: GuestRow, r: GuestResource): boolean {
  if (prev.node !== r.node) return true;
  if (JSON.stringify(r.tags) !== prev.tags) return true;
  if ((r.lock ?? null) !== (prev.lock ?? null)) return true;
  // Offline-node entries carry no stats: only lock and tags can be compared.
  if (r.maxmem === undefined) return false;
  return r.name !== prev.name || r.maxmem !== prev.maxmem || r.maxcpu !== prev.maxcpu || r.maxdisk !== prev.maxdisk || r.template !== prev.template;
}

export interface PlanInput {
  resources: GuestResource[];
  prev: Map<number, GuestRow>;
  onlineNodes: Set<string>;
  tasks: Task[];
  knownTasks: Map<string, string>;
  log: ClusterLogEntry[];
  /** Highest log uid read before; undefined on the first cycle (every config is fetched then). */
  logCursor: number | undefined;
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
  if (input.logCursor !== undefined) {
    for (const e of input.log) {
      const m = e.uid > input.logCursor ? UPDATE_VM.exec(e.msg) : null;
      if (m) want(Number(m[1]), 'log');
    }
  }
  if (input.sweepDue && input.sweepBatch > 0) {
    const oldest = input.resources
      .filter((r) => !reasons.has(r.vmid))
      .map((r) => ({ r, at: input.prev.get(r.vmid)?.configFetchedAt ?? 0 }))
      .sort((a, b) => a.at - b.at)
      .slice(0, input.sweepBatch);
    for (const { r } of oldest) want(r.vmid, 'sweep');
  }

  const fetch: Plan['fetch'] = [];
  const deferred = new Set<number>();
  for (const [vmid, reason] of reasons) {
    const resource = byVmid.get(vmid)!;
    if (!input.onlineNodes.has(resource.node) || fetch.length >= input.budget) {
      if (reason !== 'sweep') deferred.add(vmid);
    } else fetch.push({ resource, reason });
  }
  return { fetch, deferred };
}
