/**
 * Reading one guest back after an action: its status/current and config (and snapshot list after
 * a snapshot task), diffed against the kept state and written through the same row builders and
 * events as a cycle (rows.ts), so the change is reported once whether this read or the next cycle
 * sees it first. The reads are made outside the cluster's turn (cycle.ts createClusterSync), so
 * cycles and other read-backs do not wait on them; the diff and the write run in it, never beside
 * a cycle.
 */
import type { Logger } from '../log.js';
import type { ProxmoxClient } from '../proxmox/client.js';
import type { GuestRef, GuestResource, GuestStatus, SnapshotList } from '../proxmox/types.js';
import { summarizeGuests } from '../store/guest-stats.js';
import type { Store } from '../store/db.js';
import { applyGuestRefresh, type ClusterState, type GuestRow } from '../store/sync-state.js';
import { parseGuestConfig } from './parse-config.js';
import { guestEvents, guestRow, liveMetrics, type FetchedConfig } from './rows.js';

/** How long a read-back status outranks a bulk read that disagrees (pvestatd refreshes every ~10 s). */
export const STATUS_LAG_MS = 20_000;

export interface RefreshDeps {
  store: Store;
  cluster: string;
  client: ProxmoxClient;
  log: Logger;
  now: () => number;
}

export interface RefreshResult {
  /** False when the guest is not in the inventory (or gone): the next cycle settles it. */
  refreshed: boolean;
  events: number;
}

/** What a read-back read: taken outside the cluster's turn, so cycles and other read-backs do not wait on it. */
export interface ReadBack {
  ref: GuestRef;
  status: GuestStatus;
  config: { digest: string; values: Record<string, string> };
  snapshots: SnapshotList | undefined;
}

export async function readGuestBack(
  client: ProxmoxClient,
  ref: GuestRef,
  options: { snapshots: boolean },
): Promise<ReadBack> {
  const [status, config, snapshots] = await Promise.all([
    client.guestStatus(ref),
    client.guestConfig(ref),
    options.snapshots ? client.snapshots(ref) : undefined,
  ]);
  return { ref, status, config, snapshots };
}

/** Diffs a read-back against the kept state and writes it; runs in the cluster's turn. */
export function applyReadBack(deps: RefreshDeps, state: ClusterState, read: ReadBack): RefreshResult {
  const { vmid } = read.ref;
  const prev = state.guests.get(vmid);
  // Gone or moved since the read was sent: the next cycle settles it.
  if (!prev || prev.deletedAt || prev.node !== read.ref.node) return { refreshed: false, events: 0 };
  const { status, config, snapshots } = read;
  const at = deps.now();
  const fetched: FetchedConfig = {
    digest: config.digest,
    values: config.values,
    parsed: parseGuestConfig(prev.type, config.values),
  };
  const resource = resourceFrom(prev, status, config.values);
  const next = guestRow(prev, resource, {
    cluster: deps.cluster,
    at,
    previousReadAt: state.cluster?.lastSuccessAt ?? undefined,
    nodeOnline: true,
    config: fetched,
    configStillWanted: false,
  });
  const events = guestEvents(deps.cluster, prev, next);
  const metrics = liveMetrics(deps.cluster, resource, at);
  const guestsAfter = [...state.guests.values()].map((g) => (g.vmid === vmid ? next : g));
  applyGuestRefresh(deps.store, {
    cluster: deps.cluster,
    at,
    expectedLastRunId: state.cluster?.lastRunId ?? null,
    guest: next,
    metrics,
    guestStats: summarizeGuests(
      deps.cluster,
      guestsAfter,
      (id) => (id === vmid ? metrics?.mem : state.metrics.get(id)?.mem) ?? undefined,
    ),
    snapshots: snapshots ? snapshotRows(snapshots) : undefined,
    events,
  });
  state.guests.set(vmid, next);
  if (metrics) state.metrics.set(vmid, metrics);
  (state.confirmedStatus ??= new Map()).set(vmid, { status: next.status, at });
  return { refreshed: true, events: events.length };
}

/**
 * A running VM's status as /cluster/resources gives it: QEMU's own state (`paused` after a
 * suspend, `prelaunch`, …), as pvestatd reports it; status/current says `running` and keeps that
 * state in `qmpstatus`. Without this a suspended VM read back as running, and the next sync
 * reported running → paused long after the action.
 */
function statusOf(type: GuestRow['type'], s: GuestStatus): string {
  return type === 'qemu' && s.status === 'running' && s.qmpstatus ? s.qmpstatus : s.status;
}

/** The guest as /cluster/resources would list it, from its status/current and config. */
function resourceFrom(prev: GuestRow, s: GuestStatus, values: Record<string, string>): GuestResource {
  return {
    id: `${prev.type}/${prev.vmid}`,
    type: prev.type,
    vmid: prev.vmid,
    node: prev.node,
    status: statusOf(prev.type, s),
    name: s.name ?? prev.name ?? undefined,
    template: values.template === '1',
    uptime: s.uptime,
    maxcpu: s.cpus ?? prev.maxcpu ?? undefined,
    cpu: s.cpu,
    maxmem: s.maxmem ?? prev.maxmem ?? 0,
    mem: s.mem,
    maxdisk: s.maxdisk ?? prev.maxdisk ?? undefined,
    tags: values.tags ? values.tags.split(/[;, ]+/).filter(Boolean) : [],
    lock: values.lock,
    pool: prev.pool ?? undefined,
    hastate: prev.hastate ?? undefined,
  };
}

export function snapshotRows(list: SnapshotList): NonNullable<Parameters<typeof applyGuestRefresh>[1]['snapshots']> {
  return list.snapshots.map((s) => ({
    name: s.name,
    parent: s.parent ?? null,
    description: s.description || null,
    snaptime: s.snaptime ?? null,
    vmstate: s.vmstate ?? false,
  }));
}

/**
 * A bulk read taken within STATUS_LAG_MS of a read-back that saw another status is behind, not
 * news: those guests keep the read-back's status (a copy of the entry; the read is not changed).
 * Once the bulk read agrees, or the window has passed, the guest is bulk-read as any other.
 */
export function holdConfirmedStatus(state: ClusterState, guests: GuestResource[], at: number): GuestResource[] {
  const confirmed = state.confirmedStatus;
  if (!confirmed?.size) return guests;
  for (const [vmid, c] of confirmed) if (at - c.at > STATUS_LAG_MS) confirmed.delete(vmid);
  return guests.map((r) => {
    const c = confirmed.get(r.vmid);
    if (!c) return r;
    if (r.status === c.status) {
      confirmed.delete(r.vmid);
      return r;
    }
    return { ...r, status: c.status };
  });
}
