/**
 * One read of a cluster against the state the store holds: the rows to write and the events the
 * change produced. Pure: nothing here reads or writes the store or the network.
 *
 * What counts as a complete read decides deletion, so it is spelled out here: guests absent from
 * a complete read count as missing (tombstoned after `missingThreshold` reads in a row); absent
 * from a partial read, they only go stale.
 */
import type { Logger } from '../log.js';
import type { ClusterResources, ClusterStatus, GuestResource } from '../proxmox/types.js';
import type { NewEvent } from '../store/events.js';
import type { ClusterState, GuestMetricsRow, GuestRow, NodeRow, StorageRow } from '../store/sync-state.js';
import { continuity, destroyedAfter } from './identity.js';
import {
  guestDeletedEvent,
  guestEvents,
  guestRow,
  liveMetrics,
  metricsDiffer,
  missingGuest,
  nodeRow,
  storageRow,
  unchangedLive,
  type FetchedConfig,
  type GuestRowContext,
} from './rows.js';

export interface DiffInput {
  cluster: string;
  at: number;
  state: ClusterState;
  resources: ClusterResources;
  status: ClusterStatus;
  configs: Map<number, FetchedConfig>;
  /** Guests whose config is still wanted after this cycle (deferred by the plan, or a failed read). */
  stillWanted: Set<number>;
  missingThreshold: number;
  /** vmids whose destroy task finished since the last read, with its end (identity.ts destroyedSince). */
  destroyed: Map<number, number>;
  /** The cluster's first successful read (or the first after a reset): an import, not news. */
  initial?: boolean;
  log: Logger;
}

export interface CycleDiff {
  /** Guests that are new or changed, and absent ones whose missing count, staleness or tombstone changed. */
  guests: GuestRow[];
  metrics: GuestMetricsRow[];
  /** Guests tombstoned by this cycle. */
  tombstoned: number[];
  /** Guests whose live metrics go: the tombstoned, and replaced guests this read has no metrics for. */
  dropMetrics: number[];
  nodes: NodeRow[];
  storage: StorageRow[];
  events: NewEvent[];
  /** Guests listed by this read. */
  listed: number;
  /** Quorum as this read showed it; null when it cannot tell. */
  quorate: boolean | null;
}

/**
 * Quorum from /cluster/status: the corosync entry's flag; a standalone node (no cluster entry, one
 * node) is quorate by itself; anything else (an unreadable entry, a flag that is absent) is unknown.
 */
export function quorum(status: ClusterStatus): boolean | null {
  if (status.cluster) return status.cluster.quorate ?? null;
  if (status.clusterEntryUnreadable) return null;
  return status.nodes.length <= 1 ? true : null;
}

/**
 * Why this read cannot tell that an absent guest is gone, or undefined when it can: the cluster
 * has lost quorum, a guest entry could not be read at all, or no guest is listed while some node
 * is not online (an empty list from a whole, quorate cluster is believed: its guests were deleted).
 */
export function partialReadReason(
  resources: ClusterResources,
  quorate: boolean | null,
  hasLiveGuests: boolean,
): string | undefined {
  if (quorate === false) return 'the cluster is not quorate';
  if (resources.skipped.some((e) => (e.type === 'qemu' || e.type === 'lxc') && e.vmid === undefined))
    return 'a guest entry could not be read';
  const allNodesOnline = resources.nodes.length > 0 && resources.nodes.every((n) => n.status === 'online');
  if (resources.guests.length === 0 && hasLiveGuests && !allNodesOnline)
    return 'no guest is listed while a node is not online';
  return undefined;
}

/** Every field but the bookkeeping ones: a row that compares equal needs no write. */
function sameRow(a: GuestRow, b: GuestRow): boolean {
  for (const key of Object.keys(b) as Array<keyof GuestRow>) {
    if (key !== 'updatedAt' && key !== 'syncRun' && (a[key] ?? null) !== (b[key] ?? null)) return false;
  }
  return true;
}

/**
 * Another guest now holds this vmid: the old one is gone (if it was not already), this one is new,
 * with its own first-seen time and history (`incarnation` n + 1).
 */
function replaceGuest(
  input: DiffInput,
  prev: GuestRow,
  r: GuestResource,
  context: GuestRowContext,
  change: { reason: string; since?: number },
  out: CycleDiff,
): void {
  const { cluster, at } = input;
  const previousReadAt = input.state.cluster?.lastSuccessAt ?? undefined;
  const lastRead = previousReadAt ?? prev.lastSeenAt;
  // The new guest began at `since` when Proxmox says so (a destroy task, its creation time): the old one was not seen after.
  if (!prev.deletedAt)
    out.events.push(
      guestDeletedEvent(prev, change.since === undefined ? lastRead : Math.min(lastRead, change.since), change.reason),
    );
  const next: GuestRow = {
    ...guestRow(undefined, r, context),
    incarnation: (prev.incarnation ?? 1) + 1,
    incarnationSince: change.since ?? prev.deletedAt ?? previousReadAt ?? at,
  };
  out.events.push(
    ...guestEvents(cluster, undefined, next).map((e) => ({ ...e, data: { ...e.data, replaced: change.reason } })),
  );
  out.guests.push(next);
}

function diffListedGuests(input: DiffInput, onlineNodes: Set<string>, out: CycleDiff): Set<number> {
  const { cluster, at, state, configs, log } = input;
  const previousReadAt = state.cluster?.lastSuccessAt ?? undefined;
  const seen = new Set<number>();
  for (const r of input.resources.guests) {
    if (seen.has(r.vmid)) {
      log.warn({ cluster, vmid: r.vmid }, 'vmid listed twice in /cluster/resources; keeping the first entry');
      continue;
    }
    seen.add(r.vmid);
    const prev = state.guests.get(r.vmid);
    const config = configs.get(r.vmid);
    const wanted = input.stillWanted.has(r.vmid);
    const nodeOnline = onlineNodes.has(r.node);
    const same = prev ? continuity(prev, r, config, input.destroyed) : undefined;
    if (same?.kind === 'undecided') continue; // a tombstone waits for its config before it is revived or replaced
    const live = nodeOnline ? liveMetrics(cluster, r, at) : undefined;
    if (live && metricsDiffer(state.metrics.get(r.vmid), live)) out.metrics.push(live);
    const context: GuestRowContext = { cluster, at, previousReadAt, nodeOnline, config, configStillWanted: wanted };
    if (prev && same?.kind === 'replaced') {
      replaceGuest(input, prev, r, context, same, out);
      if (!live) out.dropMetrics.push(r.vmid);
      continue;
    }
    if (prev && !config && !wanted && nodeOnline && unchangedLive(prev, r, JSON.stringify(r.tags))) continue;
    const next = guestRow(prev, r, context);
    if (prev && sameRow(prev, next)) continue; // e.g. a guest on an offline node, still stale
    out.events.push(...guestEvents(cluster, prev, next));
    out.guests.push(next);
  }
  return seen;
}

/** Guests the read did not list: missing from a complete read, only stale after a partial one. */
function diffAbsentGuests(input: DiffInput, seen: Set<number>, partial: string | undefined, out: CycleDiff): void {
  const { cluster, at, state, resources, log } = input;
  const previousReadAt = state.cluster?.lastSuccessAt ?? undefined;
  if (partial)
    log.warn(
      { cluster, reason: partial, listed: resources.guests.length },
      'not counting missing guests this cycle: the read may be partial',
    );
  // Listed but unreadable: the guest exists, so it is not missing.
  const unreadable = new Set(resources.skipped.flatMap((e) => (e.vmid === undefined ? [] : [e.vmid])));
  for (const prev of state.guests.values()) {
    if (seen.has(prev.vmid) || unreadable.has(prev.vmid) || prev.deletedAt) continue;
    if (partial) {
      if (!prev.stale)
        out.guests.push({ ...prev, stale: true, lastSeenAt: previousReadAt ?? prev.lastSeenAt, updatedAt: at });
      continue;
    }
    // A destroy task is Proxmox saying it is gone: no need to wait for more reads.
    const destroyed = destroyedAfter(prev, input.destroyed) !== undefined;
    const threshold = destroyed ? 1 : input.missingThreshold;
    const { row, event } = missingGuest(
      prev,
      at,
      threshold,
      previousReadAt,
      destroyed ? 'a destroy task for this vmid finished' : undefined,
    );
    out.guests.push(row);
    if (event) {
      out.events.push(event);
      out.tombstoned.push(prev.vmid);
      out.dropMetrics.push(prev.vmid);
    }
  }
}

function diffNodes(input: DiffInput, out: CycleDiff): void {
  const { cluster, at, state, resources, status } = input;
  const membership = new Map(status.nodes.map((n) => [n.name, n]));
  const nodeEvent = (node: string, from: string, to: string): NewEvent => ({
    type: 'node.status_changed',
    cluster,
    subject: { kind: 'node', id: `${cluster}/${node}` },
    data: { node, from, to },
  });
  for (const r of resources.nodes) {
    const prev = state.nodes.get(r.node);
    const member = membership.get(r.node);
    const next = nodeRow(prev, r, { nodeid: member?.nodeid, ip: member?.ip }, cluster, at);
    if (prev && prev.status !== next.status) out.events.push(nodeEvent(r.node, prev.status, next.status));
    out.nodes.push(next);
  }
  // A node no longer listed (removed from the cluster) keeps its row, marked missing, once; an
  // entry that was listed but could not be read is not missing.
  const listed = new Set([
    ...resources.nodes.map((n) => n.node),
    ...resources.skipped.flatMap((e) => (e.type === 'node' ? [e.id.replace(/^node\//, '')] : [])),
  ]);
  for (const prev of state.nodes.values()) {
    if (listed.has(prev.node) || prev.status === 'missing') continue;
    out.nodes.push({ ...prev, status: 'missing', online: false, stale: true, updatedAt: at });
    out.events.push(nodeEvent(prev.node, prev.status, 'missing'));
  }
}

function clusterEvents(input: DiffInput, quorate: boolean | null, out: CycleDiff): void {
  const { cluster } = input;
  const prev = input.state.cluster;
  const subject = { kind: 'cluster' as const, id: cluster };
  if (prev?.quorate != null && quorate !== null && prev.quorate !== quorate) {
    out.events.push({ type: 'cluster.quorum_changed', cluster, subject, data: { from: prev.quorate, to: quorate } });
  }
  if (prev?.stale) {
    const since = prev.lastSuccessAt ? new Date(prev.lastSuccessAt).toISOString() : null;
    out.events.push({
      type: 'cluster.sync_recovered',
      cluster,
      subject,
      data: { failures: prev.consecutiveFailures, since },
    });
  }
}

export function diffCycle(input: DiffInput): CycleDiff {
  const { resources, state } = input;
  const quorate = quorum(input.status);
  const out: CycleDiff = {
    guests: [],
    metrics: [],
    tombstoned: [],
    dropMetrics: [],
    nodes: [],
    storage: [],
    events: [],
    listed: 0,
    quorate,
  };
  const onlineNodes = new Set(resources.nodes.filter((n) => n.status === 'online').map((n) => n.node));
  const seen = diffListedGuests(input, onlineNodes, out);
  out.listed = seen.size;
  // Only an empty listing asks whether the store has live guests: no pass over every guest otherwise.
  const hasLiveGuests = resources.guests.length === 0 && [...state.guests.values()].some((g) => !g.deletedAt);
  diffAbsentGuests(input, seen, partialReadReason(resources, quorate, hasLiveGuests), out);
  diffNodes(input, out);
  const prevStorage = new Map(state.storage.map((s) => [`${s.node}/${s.storage}`, s]));
  out.storage = resources.storage.map((r) =>
    storageRow(prevStorage.get(`${r.node}/${r.storage}`), r, input.cluster, input.at, onlineNodes.has(r.node)),
  );
  clusterEvents(input, quorate, out);
  if (input.initial) markImport(input, out);
  return out;
}

/**
 * A first read is an import: every guest is "created" by it. Its guest and node events say so
 * (`data.initial: true`) and one `cluster.imported` event, first, sums it up, so a reader of the
 * history or a webhook subscriber can take the summary and skip the rest.
 */
function markImport(input: DiffInput, out: CycleDiff): void {
  let marked = 0;
  for (const e of out.events) {
    if (e.subject.kind !== 'guest' && e.subject.kind !== 'node') continue;
    e.data = { ...e.data, initial: true };
    marked++;
  }
  const live = out.guests.filter((g) => g.deletedAt == null);
  out.events.unshift({
    type: 'cluster.imported',
    cluster: input.cluster,
    subject: { kind: 'cluster', id: input.cluster },
    data: {
      guests: out.listed,
      templates: live.filter((g) => g.template).length,
      nodes: input.resources.nodes.length,
      storage: new Set(input.resources.storage.map((s) => s.storage)).size,
      pools: input.resources.pools.length,
      initialEvents: marked,
    },
  });
}
