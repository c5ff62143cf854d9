/**
 * The shapes the client returns, parsed from the wire with the coercions API-NOTES.md lists:
 * booleans arrive as 0/1 (sometimes "0"/"1"), some integers as strings (`/cluster/nextid`,
 * legacy `vmid`, `saved`), tags as one `;`-separated string. Callers see proper types.
 */
import { z } from 'zod';

const DECIMAL = /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i;
const numeric = z.union([z.number(), z.string().trim().regex(DECIMAL)]).transform(Number);
const bool = z
  .union([z.boolean(), z.number(), z.string()])
  .transform((v) => v === true || v === 1 || v === '1' || v === 'true');
const text = z.union([z.string(), z.number()]).transform(String);

/** PVE writes tags `;`-separated; older releases and hand edits also use `,` or spaces. */
export function parseTags(raw: string | undefined): string[] {
  if (!raw) return [];
  return raw.split(/[;, ]+/).filter(Boolean);
}
/*
 * /cluster/resources entries are coerced by hand rather than with zod: it is the one response
 * that carries every guest on every cycle (10,000+ entries), and a schema library's per-field
 * overhead there costs more than the HTTP round trip.
 */
type Raw = Record<string, unknown>;

/** A number from a JSON number or numeric string; undefined when absent or not numeric. */
export function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  // Decimal text only, like the zod `numeric` below: Number() would also take "0x10" or "".
  if (typeof v === 'string' && DECIMAL.test(v.trim())) return Number(v);
  return undefined;
}
export const toBool = (v: unknown): boolean => v === true || v === 1 || v === '1' || v === 'true';
const toText = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined;

export class ShapeError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}
function required<T>(value: T | undefined, field: string): T {
  if (value === undefined) throw new ShapeError(field, `${field} is missing or not the expected type`);
  return value;
}

export interface GuestResource {
  id: string;
  type: 'qemu' | 'lxc';
  vmid: number;
  node: string;
  status: string;
  name?: string;
  uptime?: number;
  template: boolean;
  maxcpu?: number;
  cpu?: number;
  maxmem?: number;
  mem?: number;
  maxdisk?: number;
  disk?: number;
  netin?: number;
  netout?: number;
  diskread?: number;
  diskwrite?: number;
  tags: string[];
  lock?: string;
  pool?: string;
  hastate?: string;
}

export function coerceGuestResource(r: Raw): GuestResource {
  const vmid = required(toNumber(r.vmid), 'vmid');
  if (!Number.isInteger(vmid) || vmid < 1) throw new ShapeError('vmid', `vmid ${String(r.vmid)} is not a valid VMID`);
  return {
    id: required(toText(r.id), 'id'),
    type: r.type as 'qemu' | 'lxc',
    vmid,
    node: required(toText(r.node), 'node'),
    status: toText(r.status) ?? 'unknown',
    name: toText(r.name),
    uptime: toNumber(r.uptime),
    template: toBool(r.template),
    maxcpu: toNumber(r.maxcpu),
    cpu: toNumber(r.cpu),
    maxmem: toNumber(r.maxmem),
    mem: toNumber(r.mem),
    maxdisk: toNumber(r.maxdisk),
    disk: toNumber(r.disk),
    netin: toNumber(r.netin),
    netout: toNumber(r.netout),
    diskread: toNumber(r.diskread),
    diskwrite: toNumber(r.diskwrite),
    tags: parseTags(toText(r.tags)),
    lock: toText(r.lock) || undefined,
    pool: toText(r.pool),
    hastate: toText(r.hastate),
  };
}

export interface NodeResource {
  id: string;
  type: 'node';
  node: string;
  status: string;
  level?: string;
  uptime?: number;
  cpu?: number;
  maxcpu?: number;
  mem?: number;
  maxmem?: number;
  disk?: number;
  maxdisk?: number;
}

export function coerceNodeResource(r: Raw): NodeResource {
  return {
    id: required(toText(r.id), 'id'),
    type: 'node',
    node: required(toText(r.node), 'node'),
    status: toText(r.status) ?? 'unknown',
    level: toText(r.level),
    uptime: toNumber(r.uptime),
    cpu: toNumber(r.cpu),
    maxcpu: toNumber(r.maxcpu),
    mem: toNumber(r.mem),
    maxmem: toNumber(r.maxmem),
    disk: toNumber(r.disk),
    maxdisk: toNumber(r.maxdisk),
  };
}

export interface StorageResource {
  id: string;
  type: 'storage';
  storage: string;
  node: string;
  status: string;
  plugintype?: string;
  shared: boolean;
  content: string[];
  disk?: number;
  maxdisk?: number;
}

export function coerceStorageResource(r: Raw): StorageResource {
  const content = toText(r.content);
  return {
    id: required(toText(r.id), 'id'),
    type: 'storage',
    storage: required(toText(r.storage), 'storage'),
    node: required(toText(r.node), 'node'),
    status: toText(r.status) ?? 'unknown',
    plugintype: toText(r.plugintype),
    shared: toBool(r.shared),
    content: content ? content.split(',').filter(Boolean) : [],
    disk: toNumber(r.disk),
    maxdisk: toNumber(r.maxdisk),
  };
}

export interface PoolResource {
  id: string;
  type: 'pool';
  pool: string;
}

export function coercePoolResource(r: Raw): PoolResource {
  return { id: required(toText(r.id), 'id'), type: 'pool', pool: required(toText(r.pool), 'pool') };
}

/** Entries of `/cluster/resources` we do not model (sdn, network, openvz, future types) keep id and type. */
export interface OtherResource {
  id: string;
  type: string;
}

export interface ClusterResources {
  guests: GuestResource[];
  nodes: NodeResource[];
  storage: StorageResource[];
  pools: PoolResource[];
  other: OtherResource[];
  /**
   * Entries that were skipped because they could not be read, with the vmid where the id still
   * names one (`qemu/100`): such a guest was listed, just not readable, and is not missing.
   */
  skipped: Array<{ id: string; type: string; vmid?: number }>;
}

export const ClusterStatusEntrySchema = z.discriminatedUnion('type', [
  // quorate stays undefined when absent: unknown is not "lost quorum" (that would stop tombstoning and raise a false event).
  z.object({
    type: z.literal('cluster'),
    id: z.string(),
    name: z.string(),
    nodes: numeric.optional(),
    version: numeric.optional(),
    quorate: bool.optional(),
  }),
  z.object({
    type: z.literal('node'),
    id: z.string(),
    name: z.string(),
    nodeid: numeric.optional(),
    online: bool.default(false),
    local: bool.default(false),
    ip: z.string().optional(),
    level: z.string().optional(),
  }),
]);

export interface ClusterStatus {
  /** Absent on a standalone node (no corosync cluster), and when the entry could not be read. */
  cluster?: { name: string; nodes?: number; version?: number; quorate?: boolean };
  /** A `cluster` entry was listed but could not be read: quorum is unknown, not lost. */
  clusterEntryUnreadable?: boolean;
  nodes: Array<{ name: string; nodeid?: number; online: boolean; local: boolean; ip?: string }>;
}

export const TaskSchema = z.object({
  upid: z.string(),
  node: z.string(),
  pid: numeric.optional(),
  pstart: numeric.optional(),
  starttime: numeric,
  endtime: numeric.optional(),
  type: z.string(),
  id: text.default(''),
  user: z.string(),
  tokenid: z.string().optional(),
  /** Absent while running; `OK`, `WARNINGS: n` or the error text once finished (node lists say `RUNNING`). */
  status: z.string().optional(),
  saved: bool.optional(),
});
export type Task = z.infer<typeof TaskSchema>;

export const ClusterLogEntrySchema = z.object({
  uid: numeric,
  time: numeric,
  pri: numeric.optional(),
  tag: z.string().optional(),
  pid: numeric.optional(),
  node: z.string(),
  user: z.string().optional(),
  msg: z.string(),
});
export type ClusterLogEntry = z.infer<typeof ClusterLogEntrySchema>;

/**
 * GET /access/permissions: path → privilege → propagate flag. A privilege listed on a path is held
 * there whatever its flag (RPCEnvironment.pm `permissions`: "to determine whether a privilege is
 * set, check for definedness"); the flag only says whether it was granted with propagation.
 * The flag is 1 or 0 on the wire (user.cfg is parsed to `$propagate ? 1 : 0`); true, 1 and "1" read as true.
 */
export const AccessPermissionsSchema = z.record(z.string(), z.record(z.string(), z.unknown().transform(toBool)));
export type AccessPermissions = z.infer<typeof AccessPermissionsSchema>;

export const VersionSchema = z.object({ version: z.string(), release: z.string(), repoid: z.string().optional() });
export type Version = z.infer<typeof VersionSchema>;

export const TaskStatusSchema = z.object({
  upid: z.string(),
  node: z.string(),
  pid: numeric.optional(),
  starttime: numeric,
  type: z.string(),
  id: text.default(''),
  user: z.string(),
  status: z.enum(['running', 'stopped']),
  exitstatus: z.string().optional(),
});
export type TaskStatus = z.infer<typeof TaskStatusSchema>;

export const TaskLogLineSchema = z.object({ n: numeric, t: z.string() });
export type TaskLogLine = z.infer<typeof TaskLogLineSchema>;

/**
 * A guest config as Proxmox returns it, with every value as the text it has in the config
 * file (numbers and 0/1 flags turned back into strings), so one parser handles PVE 7 `memory: 8192`
 * and PVE 8.1+ `memory: "2048"` alike. `digest` is the SHA-1 of the raw file.
 */
export interface GuestConfig {
  digest: string;
  values: Record<string, string>;
}

export const SnapshotEntrySchema = z.object({
  name: z.string(),
  snaptime: numeric.optional(),
  description: z.string().default(''),
  vmstate: bool.optional(),
  parent: z.string().optional(),
  digest: z.string().optional(),
  running: bool.optional(),
});

export interface SnapshotList {
  snapshots: Array<{ name: string; snaptime?: number; description: string; vmstate?: boolean; parent?: string }>;
  /** The pseudo-entry "current": the live config's digest and whether the guest runs. */
  current: { digest?: string; running: boolean; parent?: string };
}

export const NodeListEntrySchema = z.object({
  id: z.string(),
  type: z.literal('node').default('node'),
  node: z.string(),
  status: z.string().default('unknown'),
  level: z.string().optional(),
  uptime: numeric.optional(),
  cpu: numeric.optional(),
  maxcpu: numeric.optional(),
  mem: numeric.optional(),
  maxmem: numeric.optional(),
  disk: numeric.optional(),
  maxdisk: numeric.optional(),
  ssl_fingerprint: z.string().optional(),
});
export type NodeListEntry = z.infer<typeof NodeListEntrySchema>;

export const GuestStatusSchema = z.object({
  status: z.string(),
  qmpstatus: z.string().optional(),
  name: text.optional(),
  uptime: numeric.optional(),
  cpu: numeric.optional(),
  cpus: numeric.optional(),
  mem: numeric.optional(),
  maxmem: numeric.optional(),
  maxdisk: numeric.optional(),
  lock: z.string().optional(),
  tags: z.string().optional(),
  template: bool.optional(),
  agent: bool.optional(),
  ha: z.object({ managed: bool.default(false), state: z.string().optional() }).optional(),
});
export type GuestStatus = z.infer<typeof GuestStatusSchema>;

export type GuestType = 'qemu' | 'lxc';
export interface GuestRef {
  node: string;
  type: GuestType;
  vmid: number;
}
