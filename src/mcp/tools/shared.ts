/**
 * Pieces several tools share: checks that turn an unknown cluster or node into a `ToolMiss` that
 * names the known ones, short time and duration renderings, and the node and storage shapes.
 */
import { z } from 'zod';
import { listClusters, listNodes, nameSimilarity, type NodeSummary, type StorageEntry } from '../../store/queries.js';
import type { NodeStatusFacts } from '../../store/queries/node-status.js';
import type { Store } from '../../store/db.js';
import { bytes, percent, quoted, shortTime, untrusted } from '../render.js';
import { ToolMiss } from '../tool.js';

export const GiB = 2 ** 30;

/**
 * Output schema pieces. tools/list has to stay small (12 KB for all tools together), so answers
 * declare their top-level fields and leave rows open: a row's fields are those of the store's
 * result types (store/queries.ts), typed here through the views below.
 */
export const Obj = z.looseObject({});
export const Rows = z.array(Obj);

/** At most this many names in a hint. */
const HINT_NAMES = 20;

/** Names from the inventory (clusters, nodes, storage), each one cell as untrusted() shows it. */
export function nameList(names: string[]): string {
  const shown = names
    .slice(0, HINT_NAMES)
    .map((n) => untrusted(n, 130))
    .join(', ');
  return names.length > HINT_NAMES ? `${shown} (+${names.length - HINT_NAMES} more)` : shown;
}

export function knownClusters(store: Store): string[] {
  return listClusters(store).map((c) => c.cluster);
}

/** A cluster filter naming no synced cluster is a miss the model can fix. */
export function checkCluster(store: Store, cluster: string | undefined): void {
  if (cluster === undefined) return;
  const known = knownClusters(store);
  if (!known.includes(cluster))
    throw new ToolMiss(`No cluster ${quoted(cluster)}.`, `Known clusters: ${nameList(known) || 'none yet'}.`);
}

/** A node filter naming no known node (in the cluster, when one is given) is a miss too. */
export function checkNode(store: Store, cluster: string | undefined, node: string | undefined): void {
  checkCluster(store, cluster);
  if (node === undefined) return;
  const nodes = listNodes(store, cluster).items;
  if (nodes.some((n) => n.node === node)) return;
  const where = cluster === undefined ? '' : ` in cluster ${cluster}`;
  throw new ToolMiss(
    `No node ${quoted(node)}${where}.`,
    `Known nodes: ${nameList(nodes.map((n) => `${n.cluster}/${n.node}`)) || 'none'}.`,
  );
}

/** A known value a mistyped one was probably meant to be (`pve-1` for `pve1`, `prod` for `prd`). */
export function closest(value: string, known: string[]): string | undefined {
  let best: { name: string; score: number } | undefined;
  for (const name of known) {
    const score = nameSimilarity(value, name);
    if (score >= 0.5 && (!best || score > best.score)) best = { name, score };
  }
  return best?.name;
}

/**
 * A guest's status as Proxmox reports it: `stopped`, or a QEMU run state (the QMP status, which
 * /cluster/resources gives for a running VM), or `unknown` (its node unreachable).
 */
export const PROXMOX_STATUSES = [
  'running',
  'stopped',
  'paused',
  'unknown',
  'suspended',
  'prelaunch',
  'postmigrate',
  'inmigrate',
  'finish-migrate',
  'io-error',
  'internal-error',
  'guest-panicked',
  'shutdown',
  'watchdog',
  'debug',
  'restore-vm',
  'save-vm',
  'colo',
];

/** 850 → `850ms`, 12_300 → `12s`, 184_000 → `3m04s`, 3_720_000 → `1h02m`. */
export function duration(ms: number | null | undefined): string {
  if (ms == null) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const pad = (n: number): string => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${pad(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86_400)}d${pad(Math.floor(s / 3600) % 24)}h`;
}

// ---- what the inventory holds -------------------------------------------------------------------

/**
 * What the inventory holds and what it does not, for the server instructions (two lines): an agent
 * told up front does not go looking for metric history or backup contents.
 */
export const INVENTORY_SCOPE = [
  'Holds: clusters, nodes, storage, and guests with their parsed config (disks, NICs, IPs, tags, pools, HA); cpu and memory use at the last sync; change events; recent Proxmox tasks; inventory snapshots.',
  'Does not hold: metric history (only the last values), backup contents (only the vzdump tasks), processes, services or files inside guests, or changes made since the last sync.',
].join('\n');

/** Said beside metrics: a question about the past gets "not kept", never an answer from one value. */
export const NO_HISTORY = 'no history is kept';
/** Said by get_guest: what it cannot answer, so an absence is not taken for "none". */
export const GUEST_LIMITS =
  'not collected: metric history, processes, services or files inside the guest, backup contents (list_tasks shows its backup tasks)';
/** Said by get_node. */
export const NODE_LIMITS = `cpu and memory use are the last read's values; ${NO_HISTORY}`;

// ---- stale guests -------------------------------------------------------------------------------

/** Why a row is stale, said once in a header. */
export const STALE_WHY = 'node or cluster unreachable, or missing from the last read';

/** A guest's status in a text row: a stale one's is `unknown(running)`, the status last seen in parentheses. */
export const statusCell = (g: { status: string; lastKnownStatus?: string | null }): string =>
  g.status === 'unknown' && g.lastKnownStatus != null
    ? `unknown(${untrusted(g.lastKnownStatus, 20)})`
    : untrusted(g.status, 20);

/** When stale rows were last seen: one time, or the earliest and latest. */
export function seenRange(from: string, to: string): string {
  return shortTime(from) === shortTime(to) ? shortTime(from) : `${shortTime(from)} to ${shortTime(to)}`;
}

/** bytes() with a sign: what is left after placing a guest can be negative. */
export const signedBytes = (n: number | null | undefined): string => (n != null && n < 0 ? `-${bytes(-n)}` : bytes(n));

/** `allocated/physical=ratio`, the overcommit arithmetic in one cell. */
export function ratioCell(allocated: string, physical: string, ratio: number | null): string {
  return `${allocated}/${physical}${ratio == null ? '' : `=${ratio.toFixed(2)}x`}`;
}

// ---- nodes ----------------------------------------------------------------------------------------

export type NodeView = Omit<NodeSummary, 'ip' | 'uptime' | 'disk' | 'maxdisk'>;

export const nodeView = (n: NodeSummary): NodeView => ({
  cluster: n.cluster,
  node: n.node,
  status: n.status,
  online: n.online,
  stale: n.stale,
  lastSeenAt: n.lastSeenAt,
  cpu: n.cpu,
  maxcpu: n.maxcpu,
  mem: n.mem,
  maxmem: n.maxmem,
  guests: n.guests,
  allocatedVcpus: n.allocatedVcpus,
  allocatedMemoryBytes: n.allocatedMemoryBytes,
  runningVcpus: n.runningVcpus,
  runningMemoryBytes: n.runningMemoryBytes,
  cpuOvercommit: n.cpuOvercommit,
  memoryOvercommit: n.memoryOvercommit,
  runningCpuOvercommit: n.runningCpuOvercommit,
  runningMemoryOvercommit: n.runningMemoryOvercommit,
});

/**
 * `cpu` is the node's CPU use at the last read (a fraction of its cpus, as Proxmox reports it),
 * not the load average. `_alloc` counts every non-template guest (what the node has promised),
 * `_run` the guests running now (what it carries).
 */
export const NODE_COLUMNS = [
  'node',
  'status',
  'cpu',
  'vcpu_alloc/cpus',
  'vcpu_run/cpus',
  'mem_alloc/phys',
  'mem_run/phys',
  'mem_used',
  'guests',
  'running',
];

/** Running now; guests whose status is unknown (stale) beside: `unknown` when all are, `12,3unknown` when some. */
function runningCell(g: NodeView['guests']): string {
  if (!g.unknown) return String(g.running);
  return g.unknown === g.total ? 'unknown' : `${g.running},${g.unknown}unknown`;
}

/** One line per node: allocation against physical size, with the ratio. */
export function nodeRow(n: NodeView, withCluster: boolean): string[] {
  return [
    untrusted(withCluster ? `${n.cluster}/${n.node}` : n.node, 130),
    `${untrusted(n.status, 20)}${n.stale ? ',STALE' : ''}`,
    percent(n.cpu),
    ratioCell(String(Math.round(n.allocatedVcpus)), String(n.maxcpu ?? '-'), n.cpuOvercommit),
    ratioCell(String(Math.round(n.runningVcpus)), String(n.maxcpu ?? '-'), n.runningCpuOvercommit),
    ratioCell(bytes(n.allocatedMemoryBytes), bytes(n.maxmem), n.memoryOvercommit),
    ratioCell(bytes(n.runningMemoryBytes), bytes(n.maxmem), n.runningMemoryOvercommit),
    bytes(n.mem),
    String(n.guests.total),
    runningCell(n.guests),
  ];
}

/** A node whose status was never read (what nodeStatusFacts would say of it). */
export const NO_STATUS: NodeStatusFacts = {
  loadavg: null,
  kernel: null,
  pveVersion: null,
  ksmSharedBytes: null,
  swapTotalBytes: null,
  swapUsedBytes: null,
  cpuModel: null,
  cpuSockets: null,
  cpuCores: null,
  statusReadAt: null,
};

/** The status columns list_nodes adds: load average (1, 5, 15 min), swap used/total, KSM sharing, versions. */
export const NODE_STATUS_COLUMNS = ['load', 'swap', 'ksm', 'pve', 'kernel'];

const load = (l: NodeStatusFacts['loadavg']): string =>
  l ? l.map((v) => (v == null ? '-' : v.toFixed(2))).join(',') : '-';

export function nodeStatusRow(s: NodeStatusFacts): string[] {
  return [
    load(s.loadavg),
    s.swapTotalBytes == null ? '-' : `${bytes(s.swapUsedBytes)}/${bytes(s.swapTotalBytes)}`,
    bytes(s.ksmSharedBytes),
    untrusted(s.pveVersion, 20),
    untrusted(s.kernel, 40),
  ];
}

/** When the status fields were read: once, or the earliest and latest; nodes never read are counted. */
export function statusReadLine(statuses: NodeStatusFacts[]): string {
  const read = statuses
    .map((s) => s.statusReadAt)
    .filter((t): t is string => t !== null)
    .sort();
  const unread = statuses.length - read.length;
  const what = 'load (1,5,15 min), swap, ksm, pve, kernel: GET /nodes/{node}/status';
  if (!read.length) return `${what}, not read yet`;
  return `${what}, read ${seenRange(read[0]!, read.at(-1)!)}${unread ? `; ${unread} node${unread === 1 ? '' : 's'} not read yet (-)` : ''}`;
}

/** One line of get_node: the status fields and when they were read. */
export function nodeStatusLine(s: NodeStatusFacts): string {
  if (s.statusReadAt === null) return 'status (load, swap, KSM, versions): not read yet';
  const cpu =
    s.cpuModel === null
      ? ''
      : `; cpu ${untrusted(s.cpuModel, 60)}${s.cpuSockets === null ? '' : ` (${s.cpuSockets} sockets, ${s.cpuCores ?? '-'} cores)`}`;
  return `status read ${shortTime(s.statusReadAt)}: load ${load(s.loadavg)} (1,5,15 min); swap ${bytes(s.swapUsedBytes)}/${bytes(s.swapTotalBytes)}; ksm ${bytes(s.ksmSharedBytes)}; pve ${untrusted(s.pveVersion, 20)}; kernel ${untrusted(s.kernel, 40)}${cpu}`;
}

// ---- storage --------------------------------------------------------------------------------------

export type StorageView = Omit<StorageEntry, 'node' | 'lastSeenAt'>;

export const storageView = (s: StorageEntry): StorageView => ({
  cluster: s.cluster,
  storage: s.storage,
  shared: s.shared,
  nodes: s.nodes,
  plugintype: s.plugintype,
  content: s.content,
  status: s.status,
  disk: s.disk,
  maxdisk: s.maxdisk,
  usedFraction: s.usedFraction,
  stale: s.stale,
});

export const STORAGE_COLUMNS = ['storage', 'type', 'used/size', 'used%', 'content', 'nodes', 'state'];

export function storageRow(s: StorageView, withCluster: boolean): string[] {
  return [
    untrusted(withCluster ? `${s.cluster}/${s.storage}` : s.storage, 60),
    untrusted(s.plugintype, 20),
    `${bytes(s.disk)}/${bytes(s.maxdisk)}`,
    percent(s.usedFraction),
    untrusted(s.content.join(','), 60),
    `${s.shared ? 'shared:' : ''}${s.nodes.map((n) => untrusted(n, 63)).join(',')}`,
    `${untrusted(s.status, 20)}${s.stale ? ',STALE' : ''}`,
  ];
}
