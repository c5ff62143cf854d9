/**
 * From one read of a cluster to the rows the store keeps and the events the change produced.
 * Staleness, not deletion: entries Proxmox reports without live data (an offline node) keep their
 * last-known values, marked stale; a guest is tombstoned only after it was missing from
 * `missingThreshold` consecutive complete reads.
 */
import type { GuestResource, NodeResource, StorageResource, Task } from '../proxmox/types.js';
import { taskOutcome } from '../proxmox/upid.js';
import type { NewEvent } from '../store/events.js';
import type { GuestMetricsRow, GuestRow, GuestSnapshotRow, NodeRow, StorageRow, TaskRow } from '../store/sync-state.js';
import type { ParsedConfig } from './parse-config.js';

export interface FetchedConfig {
  digest: string;
  values: Record<string, string>;
  parsed: ParsedConfig;
  /** The guest's snapshot list when this read took it (cycle.ts snapshotListWanted); absent: kept as stored. */
  snapshots?: GuestSnapshotRow[];
}

/** Fields whose change is reported as `guest.updated` (status and node have their own events). */
const CONFIG_TRACKED = [
  'cores',
  'sockets',
  'vcpus',
  'memoryMib',
  'balloonMib',
  'ostype',
  'onboot',
  'agent',
  'protection',
  'description',
  'disks',
  'nics',
  'digest',
] as const;
const TRACKED = [
  'name',
  'tags',
  'template',
  'lock',
  'pool',
  'hastate',
  'maxcpu',
  'maxmem',
  'maxdisk',
  ...CONFIG_TRACKED,
] as const;
const FROM_CONFIG = new Set<string>(CONFIG_TRACKED);
const JSON_FIELDS = new Set(['tags', 'disks', 'nics']);

const configFields = (c: FetchedConfig, at: number): Partial<GuestRow> => ({
  cores: c.parsed.cores ?? null,
  sockets: c.parsed.sockets ?? null,
  vcpus: c.parsed.vcpus ?? null,
  memoryMib: c.parsed.memoryMib ?? null,
  balloonMib: c.parsed.balloonMib ?? null,
  ostype: c.parsed.ostype ?? null,
  onboot: c.parsed.onboot,
  agent: c.parsed.agent,
  protection: c.parsed.protection,
  snapshotParent: c.parsed.snapshotParent ?? null,
  description: c.parsed.description ?? null,
  disks: JSON.stringify(c.parsed.disks),
  nics: JSON.stringify(c.parsed.nics),
  config: JSON.stringify(c.values),
  digest: c.digest,
  configFetchedAt: at,
  configDirty: false,
});

export interface GuestRowContext {
  cluster: string;
  at: number;
  /** When the previous successful read happened: the moment a row going stale was last seen live. */
  previousReadAt: number | undefined;
  nodeOnline: boolean;
  config: FetchedConfig | undefined;
  configStillWanted: boolean;
}

/**
 * True when a live read of a guest matches its row: the common case, which a cycle handles
 * without building a new row or diffing fields (live metrics are kept apart).
 */
export function unchangedLive(prev: GuestRow, r: GuestResource, tags: string): boolean {
  return (
    !prev.deletedAt &&
    !prev.stale &&
    !prev.configDirty &&
    prev.missingCount === 0 &&
    r.maxmem !== undefined &&
    prev.node === r.node &&
    prev.status === r.status &&
    prev.type === r.type &&
    prev.name === (r.name ?? null) &&
    prev.template === r.template &&
    prev.tags === tags &&
    prev.lock === (r.lock ?? null) &&
    prev.pool === (r.pool ?? null) &&
    prev.hastate === (r.hastate ?? null) &&
    prev.maxcpu === (r.maxcpu ?? null) &&
    prev.maxmem === r.maxmem &&
    prev.maxdisk === (r.maxdisk ?? null)
  );
}

const METRIC_FIELDS = ['cpu', 'mem', 'disk', 'uptime', 'netin', 'netout', 'diskread', 'diskwrite'] as const;

/** The guest's live metrics from a read, or undefined when the read carried none (offline node). */
export function liveMetrics(cluster: string, r: GuestResource, at: number): GuestMetricsRow | undefined {
  if (r.maxmem === undefined) return undefined;
  const m: GuestMetricsRow = { cluster, vmid: r.vmid, updatedAt: at };
  for (const key of METRIC_FIELDS) m[key] = r[key] ?? null;
  return m;
}

export function metricsDiffer(prev: GuestMetricsRow | undefined, next: GuestMetricsRow): boolean {
  if (!prev) return true;
  for (const key of METRIC_FIELDS) if ((prev[key] ?? null) !== next[key]) return true;
  return false;
}

export function guestRow(prev: GuestRow | undefined, r: GuestResource, ctx: GuestRowContext): GuestRow {
  const live = ctx.nodeOnline && r.maxmem !== undefined;
  const known = prev && !prev.deletedAt ? prev : undefined;
  // A revived guest starts over, but keeps the time it was first seen.
  const base: GuestRow = known
    ? { ...known }
    : {
        cluster: ctx.cluster,
        vmid: r.vmid,
        type: r.type,
        node: r.node,
        status: r.status,
        lastSeenAt: ctx.at,
        firstSeenAt: prev?.firstSeenAt ?? ctx.at,
        incarnation: prev?.incarnation ?? 1,
        incarnationSince: prev?.incarnationSince ?? null,
        updatedAt: ctx.at,
      };
  // Config-derived fields pmxcfs serves even when the node is down.
  Object.assign(base, {
    type: r.type,
    node: r.node,
    tags: JSON.stringify(r.tags),
    lock: r.lock ?? null,
    pool: r.pool ?? null,
    hastate: r.hastate ?? null,
  });
  if (live) {
    Object.assign(base, {
      name: r.name ?? null,
      status: r.status,
      template: r.template,
      maxcpu: r.maxcpu ?? null,
      maxmem: r.maxmem ?? null,
      maxdisk: r.maxdisk ?? null,
      lastSeenAt: ctx.at,
      stale: false,
    });
  } else {
    // Going stale now: it was last seen live at the previous read.
    if (known && !known.stale) base.lastSeenAt = ctx.previousReadAt ?? known.lastSeenAt;
    base.stale = true;
  }
  if (ctx.config) Object.assign(base, configFields(ctx.config, ctx.at));
  else base.configDirty = ctx.configStillWanted || Boolean(known?.configDirty);
  base.missingCount = 0;
  base.deletedAt = null;
  base.updatedAt = ctx.at;
  return base;
}

const readable = (field: string, value: unknown): unknown =>
  JSON_FIELDS.has(field) && typeof value === 'string' ? JSON.parse(value) : (value ?? null);

export function guestEvents(cluster: string, prev: GuestRow | undefined, next: GuestRow): NewEvent[] {
  const subject = { kind: 'guest' as const, id: `${cluster}/${next.vmid}` };
  const summary = {
    vmid: next.vmid,
    type: next.type,
    node: next.node,
    name: next.name ?? null,
    tags: JSON.parse(next.tags ?? '[]') as string[],
    incarnation: next.incarnation ?? 1,
  };
  if (!prev || prev.deletedAt) {
    return [
      {
        type: 'guest.created',
        cluster,
        subject,
        data: { ...summary, status: next.status, ...(prev?.deletedAt ? { revived: true } : {}) },
      },
    ];
  }
  const out: NewEvent[] = [];
  if (prev.node !== next.node)
    out.push({ type: 'guest.migrated', cluster, subject, data: { ...summary, from: prev.node, to: next.node } });
  if (!next.stale && prev.status !== next.status)
    out.push({
      type: 'guest.status_changed',
      cluster,
      subject,
      data: { ...summary, from: prev.status, to: next.status },
    });
  const changes: Record<string, unknown> = {};
  for (const field of TRACKED) {
    const before = prev[field] ?? null;
    const after = next[field] ?? null;
    // The first config read fills these in; that is not a change.
    if (before === after || (FROM_CONFIG.has(field) && prev.configFetchedAt == null)) continue;
    changes[field] = { from: readable(field, before), to: readable(field, after) };
  }
  const config = configChanges(prev.config, next.config);
  if (config) changes.config = config;
  if (Object.keys(changes).length) out.push({ type: 'guest.updated', cluster, subject, data: { ...summary, changes } });
  return out;
}

const MAX_VALUE = 200;
const clip = (v: string | undefined): string | null =>
  v === undefined ? null : v.length > MAX_VALUE ? `${v.slice(0, MAX_VALUE)}…` : v;

/**
 * The config keys an edit changed, each with its old and new text: an edit to a key the inventory
 * does not parse (cpu type, boot order, a hookscript…) would otherwise show only as a new digest.
 */
function configChanges(
  before: string | null | undefined,
  after: string | null | undefined,
): Record<string, { from: string | null; to: string | null }> | undefined {
  if (!before || !after || before === after) return undefined;
  const a = JSON.parse(before) as Record<string, string>;
  const b = JSON.parse(after) as Record<string, string>;
  const out: Record<string, { from: string | null; to: string | null }> = {};
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (a[key] !== b[key]) out[key] = { from: clip(a[key]), to: clip(b[key]) };
  }
  return Object.keys(out).length ? out : undefined;
}

/** `guest.deleted` for a guest last seen at `lastSeenAt`; `why` says how its end was known when not by absence. */
export function guestDeletedEvent(prev: GuestRow, lastSeenAt: number, why?: string): NewEvent {
  return {
    type: 'guest.deleted',
    cluster: prev.cluster,
    subject: { kind: 'guest', id: `${prev.cluster}/${prev.vmid}` },
    data: {
      vmid: prev.vmid,
      type: prev.type,
      node: prev.node,
      name: prev.name ?? null,
      tags: JSON.parse(prev.tags ?? '[]') as string[],
      incarnation: prev.incarnation ?? 1,
      lastSeenAt: new Date(lastSeenAt).toISOString(),
      ...(why ? { reason: why } : {}),
    },
  };
}

export function missingGuest(
  prev: GuestRow,
  at: number,
  threshold: number,
  previousReadAt: number | undefined,
  why?: string,
): { row: GuestRow; event?: NewEvent } {
  const missingCount = (prev.missingCount ?? 0) + 1;
  // Seen live at the previous read only if this is the first read that misses it.
  const lastSeenAt = prev.stale || (prev.missingCount ?? 0) > 0 ? prev.lastSeenAt : (previousReadAt ?? prev.lastSeenAt);
  // Not confirmed by this read: stale until it is listed again or tombstoned.
  if (missingCount < threshold) return { row: { ...prev, missingCount, lastSeenAt, stale: true, updatedAt: at } };
  return {
    row: { ...prev, missingCount, lastSeenAt, stale: true, deletedAt: at, updatedAt: at },
    event: guestDeletedEvent(prev, lastSeenAt, why),
  };
}

export function nodeRow(
  prev: NodeRow | undefined,
  r: NodeResource,
  extra: { nodeid?: number; ip?: string },
  cluster: string,
  at: number,
): NodeRow {
  const online = r.status === 'online';
  const base: NodeRow = prev ? { ...prev } : { cluster, node: r.node, status: r.status, online, updatedAt: at };
  Object.assign(base, {
    status: r.status,
    online,
    nodeid: extra.nodeid ?? base.nodeid ?? null,
    ip: extra.ip ?? base.ip ?? null,
    updatedAt: at,
  });
  if (online) {
    Object.assign(base, {
      stale: false,
      lastSeenAt: at,
      level: r.level ?? null,
      uptime: r.uptime ?? null,
      cpu: r.cpu ?? null,
      maxcpu: r.maxcpu ?? null,
      mem: r.mem ?? null,
      maxmem: r.maxmem ?? null,
      disk: r.disk ?? null,
      maxdisk: r.maxdisk ?? null,
    });
  } else {
    base.stale = true;
  }
  return base;
}

export function storageRow(
  prev: StorageRow | undefined,
  r: StorageResource,
  cluster: string,
  at: number,
  nodeOnline: boolean,
): StorageRow {
  const live = nodeOnline && r.maxdisk !== undefined;
  return {
    cluster,
    node: r.node,
    storage: r.storage,
    plugintype: r.plugintype ?? prev?.plugintype ?? null,
    shared: r.shared,
    content: JSON.stringify(r.content),
    status: r.status,
    disk: live ? (r.disk ?? null) : (prev?.disk ?? null),
    maxdisk: live ? (r.maxdisk ?? null) : (prev?.maxdisk ?? null),
    stale: !live,
    lastSeenAt: live ? at : (prev?.lastSeenAt ?? null),
    updatedAt: at,
  };
}

export function taskRow(t: Task, cluster: string, at: number): TaskRow {
  return {
    cluster,
    upid: t.upid,
    node: t.node,
    type: t.type,
    objectId: t.id,
    vmid: /^\d+$/.test(t.id) ? Number(t.id) : null,
    user: t.tokenid ? `${t.user}!${t.tokenid}` : t.user,
    starttime: t.starttime,
    endtime: t.endtime ?? null,
    exitstatus: t.endtime !== undefined ? (t.status ?? 'unexpected status') : null,
    outcome: t.endtime !== undefined ? taskOutcome(t.status ?? 'unexpected status') : 'running',
    seenAt: at,
  };
}
