/**
 * Where a new guest fits. Allocation is what the node has promised: the maxcpu / maxmem of every
 * non-template guest on it, running or stopped (a stopped guest can be started, and HA starts
 * them on their own), including guests whose status is unknown (stale). Running-only sums count
 * guests running now. A stale node's memory in use is its last read's: the candidate says `stale`
 * and the text says "at the last read", never as current. A node takes the guest when
 * - it is online, and not stale unless includeStale is set;
 * - memory, by allocation (the default): allocated + asked ≤ physical × memoryRatio (1 unless
 *   given), and in use now + asked ≤ physical; by use (`memoryBy: used`): in use now + asked ≤
 *   physical only, allocation shown but not checked;
 * - cpu: asked cores ≤ physical cpus, and with vcpuRatio allocated vCPUs + asked ≤ cpus × vcpuRatio
 *   (without it vCPUs are overcommitted freely; the ratio after is shown);
 * - disk, when asked: the named storage (or, without one, the node's guest-disk storage with the
 *   most room) is on the node, available, not stale, holds guest disks and has the room. A shared
 *   storage is one volume: its free bytes are the same for every node, never added up.
 * Ranked by memory left after placement, most first; the nodes that cannot, by how far they fall
 * short (the least short first), with the amounts.
 */
import { z } from 'zod';
import { listNodes, listStorage, type NodeSummary, type StorageEntry } from '../../store/queries.js';
import { bytes, quoted, untrusted } from '../render.js';
import { amount, count, flag, text } from '../schemas.js';
import type { Store } from '../../store/db.js';
import { defineTool, READ_ONLY, ToolMiss } from '../tool.js';
import { checkCluster, GiB, nameList, Rows, signedBytes } from './shared.js';

/** Content types of a storage that can hold a guest disk. */
const GUEST_DISKS = ['images', 'rootdir'];

/** How far a node falls short of taking the guest, per rule it fails (bytes or vCPUs). */
export interface Shortfall {
  /** Allocated + asked over physical × memoryRatio. */
  memoryBytes?: number;
  /** In use now + asked over physical. */
  memoryInUseBytes?: number;
  /** Allocated vCPUs + asked over cpus × vcpuRatio. */
  vcpus?: number;
  /** Asked cores over the node's cpus. */
  cores?: number;
  diskBytes?: number;
}

/** One node's verdict and arithmetic (bytes; null where the node's size is unknown). */
export type CandidateOut = {
  cluster: string;
  node: string;
  fits: boolean;
  /** The node's values (memory in use) are its last read's: offline, or its cluster unreachable. */
  stale: boolean;
  reasons: string[];
  /** For a node that cannot take the guest only for want of room: by how much. */
  short?: Shortfall;
  cpus: {
    physical: number | null;
    allocated: number;
    allocatedRunning: number;
    after: number;
    ratioAfter: number | null;
    /** cpus × vcpuRatio, when a ratio is given. */
    allowed?: number | null;
  };
  /** free = allowed − allocated (allowed = physical × memoryRatio); unused = physical − in use now; freeAfter = free − asked. */
  memory: {
    physical: number | null;
    allocated: number;
    allocatedRunning: number;
    used: number | null;
    free: number | null;
    unused: number | null;
    freeAfter: number | null;
    /** physical × memoryRatio, when a ratio is given. */
    allowed?: number | null;
    unusedAfter?: number | null;
  };
  storage: { storage: string; shared: boolean; free: number | null; freeAfter: number | null } | null;
};

interface Ask {
  cores: number;
  memory: number;
  disk: number | undefined;
  storage: string | undefined;
  includeStale: boolean;
  memoryBy: 'allocated' | 'used';
  memoryRatio: number | undefined;
  vcpuRatio: number | undefined;
}

const free = (s: StorageEntry): number | null => (s.maxdisk == null || s.disk == null ? null : s.maxdisk - s.disk);
const holdsDisks = (s: StorageEntry): boolean => s.content.some((c) => GUEST_DISKS.includes(c));
const times = (n: number | null, ratio: number | undefined): number | null =>
  n == null ? null : ratio === undefined ? n : Math.floor(n * ratio);

function pickStorage(ask: Ask, onNode: StorageEntry[], reasons: string[]): StorageEntry | undefined {
  if (ask.storage !== undefined) {
    const s = onNode.find((x) => x.storage === ask.storage);
    const name = untrusted(ask.storage, 64);
    if (!s) reasons.push(`storage ${name} not on this node`);
    else if (!holdsDisks(s))
      reasons.push(`storage ${name} holds no guest disks (content ${untrusted(s.content.join(','))})`);
    else if (s.stale || s.status !== 'available')
      reasons.push(`storage ${name} ${s.stale ? 'stale' : untrusted(s.status, 20)}`);
    return s;
  }
  if (ask.disk === undefined) return undefined;
  const usable = onNode.filter((s) => holdsDisks(s) && !s.stale && s.status === 'available');
  if (!usable.length) reasons.push('no available storage for guest disks');
  return usable.sort((a, b) => (free(b) ?? -1) - (free(a) ?? -1))[0];
}

/** The rules on memory and cpu: each failure a reason and, as an amount, a shortfall. */
function checkRoom(ask: Ask, node: NodeSummary, reasons: string[], short: Shortfall): void {
  const physMem = node.maxmem;
  const allowedMem = times(physMem, ask.memoryRatio);
  const memFree = allowedMem == null ? null : allowedMem - node.allocatedMemoryBytes;
  const unused = physMem == null || node.mem == null ? null : physMem - node.mem;
  if (ask.memoryBy === 'allocated' && memFree != null && memFree < ask.memory) {
    reasons.push(
      `memory: ${signedBytes(memFree)} unallocated${ask.memoryRatio === undefined ? '' : ` at ${ask.memoryRatio}x`} < ${bytes(ask.memory)}`,
    );
    short.memoryBytes = ask.memory - memFree;
  }
  if (unused != null && unused < ask.memory) {
    reasons.push(
      `memory: ${signedBytes(unused)} unused ${node.stale ? 'at the last read' : 'now'} < ${bytes(ask.memory)}`,
    );
    short.memoryInUseBytes = ask.memory - unused;
  }
  if (node.maxcpu != null && ask.cores > node.maxcpu) {
    reasons.push(`cpu: ${ask.cores} cores > ${node.maxcpu} physical`);
    short.cores = ask.cores - node.maxcpu;
  }
  const allowedVcpus = times(node.maxcpu, ask.vcpuRatio);
  if (ask.vcpuRatio !== undefined && allowedVcpus != null && node.allocatedVcpus + ask.cores > allowedVcpus) {
    reasons.push(`cpu: ${Math.round(node.allocatedVcpus + ask.cores)} vcpus > ${allowedVcpus} (${ask.vcpuRatio}x)`);
    short.vcpus = Math.round(node.allocatedVcpus + ask.cores - allowedVcpus);
  }
}

function assess(ask: Ask, node: NodeSummary, onNode: StorageEntry[]): CandidateOut {
  const reasons: string[] = [];
  const short: Shortfall = {};
  if (!node.online) reasons.push(`node ${untrusted(node.status, 20)}`);
  else if (node.stale && !ask.includeStale) reasons.push('node stale (includeStale to consider it)');
  if (node.maxmem == null || node.maxcpu == null) reasons.push('physical size unknown');
  checkRoom(ask, node, reasons, short);
  const s = pickStorage(ask, onNode, reasons);
  const sFree = s ? free(s) : null;
  if (s && ask.disk !== undefined && !reasons.some((r) => r.startsWith('storage'))) {
    const name = untrusted(s.storage, 64);
    if (sFree == null) reasons.push(`storage ${name} size unknown`);
    else if (sFree < ask.disk) {
      reasons.push(`storage ${name}: ${signedBytes(sFree)} free < ${bytes(ask.disk)}`);
      short.diskBytes = ask.disk - sFree;
    }
  }
  const cpuAfter = node.allocatedVcpus + ask.cores;
  const allowedMem = times(node.maxmem, ask.memoryRatio);
  const memFree = allowedMem == null ? null : allowedMem - node.allocatedMemoryBytes;
  const unused = node.maxmem == null || node.mem == null ? null : node.maxmem - node.mem;
  // A shortfall ranks a node only when room is all it lacks (not offline, stale or of unknown size).
  const onlyRoom = reasons.length > 0 && reasons.length === Object.keys(short).length;
  return {
    cluster: node.cluster,
    node: node.node,
    fits: reasons.length === 0,
    stale: node.stale,
    reasons,
    ...(onlyRoom ? { short } : {}),
    cpus: {
      physical: node.maxcpu,
      allocated: node.allocatedVcpus,
      allocatedRunning: node.runningVcpus,
      after: cpuAfter,
      ratioAfter: node.maxcpu ? Math.round((cpuAfter / node.maxcpu) * 100) / 100 : null,
      ...(ask.vcpuRatio === undefined ? {} : { allowed: times(node.maxcpu, ask.vcpuRatio) }),
    },
    memory: {
      physical: node.maxmem,
      allocated: node.allocatedMemoryBytes,
      allocatedRunning: node.runningMemoryBytes,
      used: node.mem,
      free: memFree,
      unused,
      freeAfter: memFree == null ? null : memFree - ask.memory,
      ...(ask.memoryRatio === undefined ? {} : { allowed: allowedMem }),
      ...(ask.memoryBy === 'used' ? { unusedAfter: unused == null ? null : unused - ask.memory } : {}),
    },
    storage: s
      ? { storage: s.storage, shared: s.shared, free: sFree, freeAfter: sFree == null ? null : sFree - (ask.disk ?? 0) }
      : null,
  };
}

/**
 * How far a node is from fitting, for ranking: its worst shortfall against what was asked (a
 * memory shortfall of 8G on a 16G ask is 0.5), so one short by a little of everything ranks
 * above one short by a lot of one thing only when that lot is bigger.
 */
function distance(c: CandidateOut, ask: Ask): number {
  const s = c.short;
  if (!s) return Infinity;
  const parts = [
    (s.memoryBytes ?? 0) / Math.max(ask.memory, GiB),
    (s.memoryInUseBytes ?? 0) / Math.max(ask.memory, GiB),
    (s.vcpus ?? 0) / ask.cores,
    (s.cores ?? 0) / ask.cores,
    (s.diskBytes ?? 0) / Math.max(ask.disk ?? 0, GiB),
  ];
  return Math.max(...parts);
}

/** `12G memory (allocated), 2 vcpus`: a shortfall in words. */
function shortText(s: Shortfall): string {
  return [
    s.memoryBytes !== undefined ? `${bytes(s.memoryBytes)} memory (allocation)` : '',
    s.memoryInUseBytes !== undefined ? `${bytes(s.memoryInUseBytes)} memory (in use)` : '',
    s.cores !== undefined ? `${s.cores} cores` : '',
    s.vcpus !== undefined ? `${s.vcpus} vcpus` : '',
    s.diskBytes !== undefined ? `${bytes(s.diskBytes)} disk` : '',
  ]
    .filter(Boolean)
    .join(', ');
}

const nodeName = (c: CandidateOut, multi: boolean): string => untrusted(multi ? `${c.cluster}/${c.node}` : c.node, 130);

/** The arithmetic of a node that takes the guest, on one line. */
function fitLine(c: CandidateOut, ask: Ask, multi: boolean): string {
  const m = c.memory;
  const st = c.storage;
  const capacity =
    ask.memoryRatio === undefined ? bytes(m.physical) : `${bytes(m.physical)}x${ask.memoryRatio}=${bytes(m.allowed)}`;
  const memory =
    ask.memoryBy === 'used'
      ? `mem ${bytes(m.physical)} - ${bytes(m.used)} in use${c.stale ? ' at the last read' : ''} = ${signedBytes(m.unused)} unused - ${bytes(ask.memory)} = ${signedBytes(m.unusedAfter)} left (alloc ${bytes(m.allocated)}, running ${bytes(m.allocatedRunning)}); `
      : `mem ${capacity} - ${bytes(m.allocated)} alloc = ${signedBytes(m.free)} free - ${bytes(ask.memory)} = ${signedBytes(m.freeAfter)} left (in use ${bytes(m.used)}${c.stale ? ' at the last read' : ''}, ${signedBytes(m.unused)} unused; running alloc ${bytes(m.allocatedRunning)}); `;
  return [
    `${nodeName(c, multi)} FITS: `,
    memory,
    `cpu ${Math.round(c.cpus.allocated)} + ${ask.cores} = ${Math.round(c.cpus.after)} vcpu / ${c.cpus.physical ?? '-'} = ${c.cpus.ratioAfter ?? '-'}x${ask.vcpuRatio === undefined ? '' : ` (up to ${ask.vcpuRatio}x)`} (running ${Math.round(c.cpus.allocatedRunning)})`,
    st
      ? `; ${untrusted(st.storage, 40)}${st.shared ? ' (shared)' : ''} ${signedBytes(st.free)} free - ${bytes(ask.disk ?? 0)} = ${signedBytes(st.freeAfter)}`
      : '',
  ].join('');
}

/** A node that cannot: by how much it falls short, or why it was not considered. */
function cannotLine(c: CandidateOut, multi: boolean): string {
  return c.short
    ? `${nodeName(c, multi)} short by ${shortText(c.short)}${c.stale ? '; memory in use at the last read, not now' : ''}`
    : `${nodeName(c, multi)} no: ${c.reasons.join('; ')}`;
}

function checkStorage(store: Store, cluster: string | undefined, name: string | undefined): void {
  if (name === undefined) return;
  const all = listStorage(store, { cluster }).items;
  if (all.some((s) => s.storage === name)) return;
  const disks = [...new Set(all.filter(holdsDisks).map((s) => s.storage))];
  throw new ToolMiss(
    `No storage ${quoted(name)}${cluster ? ` in cluster ${cluster}` : ''}.`,
    `Storage for guest disks: ${nameList(disks) || 'none'}.`,
  );
}

/** The rule the answer applied, said once. */
function ruleText(ask: Ask): string {
  const memory =
    ask.memoryBy === 'used'
      ? 'memory: in use now + asked ≤ physical (allocation not checked)'
      : `memory: allocated + asked ≤ physical${ask.memoryRatio === undefined ? '' : ` x ${ask.memoryRatio}`}, and in use + asked ≤ physical`;
  const cpu = `cores ≤ cpus${ask.vcpuRatio === undefined ? '' : `, allocated vcpus + cores ≤ cpus x ${ask.vcpuRatio}`}`;
  return `allocated = sum of maxcpu/maxmem of non-template guests on the node, running or stopped; ${memory}; ${cpu}`;
}

export const findCapacityTool = defineTool({
  name: 'find_capacity',
  title: 'Find capacity',
  description:
    'Nodes that can take a guest of this size (most memory left first, with the arithmetic), then the rest, least short first. Memory fits allocation (non-template guests, running or not; x memoryRatio) and use, or use only (memoryBy=used); cores ≤ cpus; vcpuRatio caps vCPUs.',
  input: z
    .object({
      cores: count(1, 4096),
      memoryGiB: amount(65_536),
      diskGiB: amount(1_048_576).optional(),
      storage: text(64).optional().describe("default: the node's roomiest disk storage"),
      cluster: text(63).optional(),
      includeStale: flag().optional(),
      memoryBy: z.enum(['allocated', 'used']).optional(),
      memoryRatio: amount().optional(),
      vcpuRatio: amount().optional(),
    })
    .strict(),
  output: z.object({ rule: z.string(), fits: Rows, cannot: Rows }),
  annotations: READ_ONLY,
  handler(args, { store }) {
    if (args.memoryBy === 'used' && args.memoryRatio !== undefined)
      throw new ToolMiss(
        'memoryRatio bounds allocated memory, which memoryBy=used does not check.',
        'Leave out memoryRatio, or memoryBy.',
      );
    checkCluster(store, args.cluster);
    checkStorage(store, args.cluster, args.storage);
    const ask: Ask = {
      cores: args.cores,
      memory: Math.round(args.memoryGiB * GiB),
      disk: args.diskGiB === undefined ? undefined : Math.round(args.diskGiB * GiB),
      storage: args.storage,
      includeStale: args.includeStale ?? false,
      memoryBy: args.memoryBy ?? 'allocated',
      memoryRatio: args.memoryRatio,
      vcpuRatio: args.vcpuRatio,
    };
    const storage = listStorage(store, { cluster: args.cluster }).items;
    const all = listNodes(store, args.cluster).items.map((node) =>
      assess(
        ask,
        node,
        storage.filter((s) => s.cluster === node.cluster && s.nodes.includes(node.node)),
      ),
    );
    const left = (c: CandidateOut): number =>
      (ask.memoryBy === 'used' ? c.memory.unusedAfter : c.memory.freeAfter) ?? 0;
    const fits = all.filter((c) => c.fits).sort((a, b) => left(b) - left(a) || a.node.localeCompare(b.node));
    // The least short first; nodes that were not considered (offline, stale, unknown size) last.
    const cannot = all
      .filter((c) => !c.fits)
      .map((c) => ({ c, d: distance(c, ask) }))
      .sort((a, b) => a.d - b.d || a.c.node.localeCompare(b.c.node))
      .map(({ c }) => c);
    const rule = ruleText(ask);
    const multi = new Set(all.map((c) => c.cluster)).size > 1;
    const wanted = `${ask.cores} cores, ${bytes(ask.memory)} memory${ask.disk === undefined ? '' : `, ${bytes(ask.disk)} disk`}${ask.storage ? ` on ${untrusted(ask.storage, 64)}` : ''}`;
    const head = fits.length
      ? `${fits.length} of ${all.length} nodes can take ${wanted}; ${rule}.`
      : `No node of ${all.length} can take ${wanted}${cannot.some((c) => c.short) ? '; the closest first' : ''}; ${rule}.`;
    const lines = [head, ...fits.map((c) => fitLine(c, ask, multi)), ...cannot.map((c) => cannotLine(c, multi))];
    return { structured: { rule, fits, cannot }, text: lines.join('\n') };
  },
});
