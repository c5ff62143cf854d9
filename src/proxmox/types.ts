/**
 * The shapes the client returns, parsed from the wire with the coercions API-NOTES.md lists:
 * booleans arrive as 0/1 (sometimes "0"/"1"), some integers as strings (`/cluster/nextid`,
 * legacy `vmid`, `saved`), tags as one `;`-separated string. Callers see proper types.
 */
import { z } from 'zod';

const numeric = z.union([z.number(), z.string().trim().regex(/^-?\d+(\.\d+)?(e[+-]?\d+)?$/i)]).transform(Number);
const bool = z.union([z.boolean(), z.number(), z.string()]).transform((v) => v === true || v === 1 || v === '1' || v === 'true');
const text = z.union([z.string(), z.number()]).transform(String);

/** PVE writes tags `;`-separated; older releases and hand edits also use `,` or spaces. */
export function parseTags(raw: string | undefined): string[] {
  if (!raw) return [];
  return raw.split(/[;, ]+/).filter(Boolean);
}
const tags = z.string().optional().transform(parseTags);

export const GuestResourceSchema = z.object({
  id: z.string(),
  type: z.enum(['qemu', 'lxc']),
  vmid: numeric,
  node: z.string(),
  status: z.string().default('unknown'),
  name: text.optional(),
  uptime: numeric.optional(),
  template: bool.default(false),
  maxcpu: numeric.optional(),
  cpu: numeric.optional(),
  maxmem: numeric.optional(),
  mem: numeric.optional(),
  maxdisk: numeric.optional(),
  disk: numeric.optional(),
  netin: numeric.optional(),
  netout: numeric.optional(),
  diskread: numeric.optional(),
  diskwrite: numeric.optional(),
  tags,
  lock: z.string().optional(),
  pool: z.string().optional(),
  hastate: z.string().optional(),
});
export type GuestResource = z.infer<typeof GuestResourceSchema>;

export const NodeResourceSchema = z.object({
  id: z.string(),
  type: z.literal('node'),
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
});
export type NodeResource = z.infer<typeof NodeResourceSchema>;

export const StorageResourceSchema = z.object({
  id: z.string(),
  type: z.literal('storage'),
  storage: z.string(),
  node: z.string(),
  status: z.string().default('unknown'),
  plugintype: z.string().optional(),
  shared: bool.default(false),
  content: z.string().optional().transform((c) => (c ? c.split(',').filter(Boolean) : [])),
  disk: numeric.optional(),
  maxdisk: numeric.optional(),
});
export type StorageResource = z.infer<typeof StorageResourceSchema>;

export const PoolResourceSchema = z.object({
  id: z.string(),
  type: z.literal('pool'),
  pool: z.string(),
});
export type PoolResource = z.infer<typeof PoolResourceSchema>;

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
}

export const ClusterStatusEntrySchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('cluster'), id: z.string(), name: z.string(), nodes: numeric.optional(), version: numeric.optional(), quorate: bool.default(false) }),
  z.object({ type: z.literal('node'), id: z.string(), name: z.string(), nodeid: numeric.optional(), online: bool.default(false), local: bool.default(false), ip: z.string().optional(), level: z.string().optional() }),
]);
export type ClusterStatusEntry = z.infer<typeof ClusterStatusEntrySchema>;

export interface ClusterStatus {
  /** Absent on a standalone node (no corosync cluster). */
  cluster?: { name: string; nodes?: number; version?: number; quorate: boolean };
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

export const NodeListEntrySchema = NodeResourceSchema.extend({ ssl_fingerprint: z.string().optional() });
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
