/**
 * Where a new guest fits. Allocation is what the node has promised: the maxcpu / maxmem of every
 * non-template guest on it, running or stopped (a stopped guest can be started, and HA starts
 * them on their own), including guests whose status is unknown (stale). Running-only sums count
 * guests running now. A stale node's memory in use is its last read's: the candidate says `stale`
 * and the text says "at the last read", never as current. A node takes the guest when
 * - it is online, and not stale unless includeStale is set;
 * - memory: allocated + asked ≤ physical, and in use now + asked ≤ physical;
 * - cpu: asked cores ≤ physical cpus (vCPUs are overcommitted freely; the ratio after is shown);
 * - disk, when asked: the named storage (or, without one, the node's guest-disk storage with the
 *   most room) is on the node, available, not stale, holds guest disks and has the room. A shared
 *   storage is one volume: its free bytes are the same for every node, never added up.
 * Ranked by memory left after placement (physical − allocated − asked), most first.
 */
import { z } from 'zod';
import { listNodes, listStorage, type NodeSummary, type StorageEntry } from '../../store/queries.js';
import { bytes, untrusted } from '../render.js';
import { amount, count, flag, text } from '../schemas.js';
import type { Store } from '../../store/db.js';
import { defineTool, READ_ONLY, ToolMiss } from '../tool.js';
import { checkCluster, GiB, nameList, Rows, signedBytes } from './shared.js';

/** Content types of a storage that can hold a guest disk. */
const GUEST_DISKS = ['images', 'rootdir'];

/** One node's verdict and arithmetic (bytes; null where the node's size is unknown). */
export type CandidateOut = {
  cluster: string;
  node: string;
  fits: boolean;
  /** The node's values (memory in use) are its last read's: offline, or its cluster unreachable. */
  stale: boolean;
  reasons: string[];
  cpus: {
    physical: number | null;
    allocated: number;
    allocatedRunning: number;
    after: number;
    ratioAfter: number | null;
  };
  /** free = physical − allocated; unused = physical − in use now; freeAfter = free − asked. */
  memory: {
    physical: number | null;
    allocated: number;
    allocatedRunning: number;
    used: number | null;
    free: number | null;
    unused: number | null;
    freeAfter: number | null;
  };
  storage: { storage: string; shared: boolean; free: number | null; freeAfter: number | null } | null;
};

interface Ask {
  cores: number;
  memory: number;
  disk: number | undefined;
  storage: string | undefined;
  includeStale: boolean;
}

const free = (s: StorageEntry): number | null => (s.maxdisk == null || s.disk == null ? null : s.maxdisk - s.disk);
const holdsDisks = (s: StorageEntry): boolean => s.content.some((c) => GUEST_DISKS.includes(c));

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

function assess(ask: Ask, node: NodeSummary, onNode: StorageEntry[]): CandidateOut {
  const reasons: string[] = [];
  if (!node.online) reasons.push(`node ${untrusted(node.status, 20)}`);
  else if (node.stale && !ask.includeStale) reasons.push('node stale (includeStale to consider it)');
  const physMem = node.maxmem;
  const memFree = physMem == null ? null : physMem - node.allocatedMemoryBytes;
  const unused = physMem == null || node.mem == null ? null : physMem - node.mem;
  if (physMem == null || node.maxcpu == null) reasons.push('physical size unknown');
  if (memFree != null && memFree < ask.memory)
    reasons.push(`memory: ${signedBytes(memFree)} unallocated < ${bytes(ask.memory)}`);
  if (unused != null && unused < ask.memory)
    reasons.push(
      `memory: ${signedBytes(unused)} unused ${node.stale ? 'at the last read' : 'now'} < ${bytes(ask.memory)}`,
    );
  if (node.maxcpu != null && ask.cores > node.maxcpu) reasons.push(`cpu: ${ask.cores} cores > ${node.maxcpu} physical`);
  const s = pickStorage(ask, onNode, reasons);
  const sFree = s ? free(s) : null;
  if (s && ask.disk !== undefined && !reasons.some((r) => r.startsWith('storage'))) {
    const name = untrusted(s.storage, 64);
    if (sFree == null) reasons.push(`storage ${name} size unknown`);
    else if (sFree < ask.disk) reasons.push(`storage ${name}: ${signedBytes(sFree)} free < ${bytes(ask.disk)}`);
  }
  const cpuAfter = node.allocatedVcpus + ask.cores;
  return {
    cluster: node.cluster,
    node: node.node,
    fits: reasons.length === 0,
    stale: node.stale,
    reasons,
    cpus: {
      physical: node.maxcpu,
      allocated: node.allocatedVcpus,
      allocatedRunning: node.runningVcpus,
      after: cpuAfter,
      ratioAfter: node.maxcpu ? Math.round((cpuAfter / node.maxcpu) * 100) / 100 : null,
    },
    memory: {
      physical: physMem,
      allocated: node.allocatedMemoryBytes,
      allocatedRunning: node.runningMemoryBytes,
      used: node.mem,
      free: memFree,
      unused,
      freeAfter: memFree == null ? null : memFree - ask.memory,
    },
    storage: s
      ? { storage: s.storage, shared: s.shared, free: sFree, freeAfter: sFree == null ? null : sFree - (ask.disk ?? 0) }
      : null,
  };
}

/** The arithmetic of one node, on one line. */
function line(c: CandidateOut, ask: Ask, multi: boolean): string {
  const m = c.memory;
  const st = c.storage;
  return [
    `${untrusted(multi ? `${c.cluster}/${c.node}` : c.node, 130)} ${c.fits ? 'FITS' : 'no'}: `,
    `mem ${bytes(m.physical)} - ${bytes(m.allocated)} alloc = ${signedBytes(m.free)} free - ${bytes(ask.memory)} = ${signedBytes(m.freeAfter)} left`,
    ` (in use ${bytes(m.used)}${c.stale ? ' at the last read' : ''}, ${signedBytes(m.unused)} unused; running alloc ${bytes(m.allocatedRunning)}); `,
    `cpu ${Math.round(c.cpus.allocated)} + ${ask.cores} = ${Math.round(c.cpus.after)} vcpu / ${c.cpus.physical ?? '-'} = ${c.cpus.ratioAfter ?? '-'}x (running ${Math.round(c.cpus.allocatedRunning)})`,
    st
      ? `; ${untrusted(st.storage, 40)}${st.shared ? ' (shared)' : ''} ${signedBytes(st.free)} free - ${bytes(ask.disk ?? 0)} = ${signedBytes(st.freeAfter)}`
      : '',
    c.fits ? '' : `; because ${c.reasons.join('; ')}`,
  ].join('');
}

function checkStorage(store: Store, cluster: string | undefined, name: string | undefined): void {
  if (name === undefined) return;
  const all = listStorage(store, { cluster }).items;
  if (all.some((s) => s.storage === name)) return;
  const disks = [...new Set(all.filter(holdsDisks).map((s) => s.storage))];
  throw new ToolMiss(
    `No storage ${JSON.stringify(name)}${cluster ? ` in cluster ${cluster}` : ''}.`,
    `Storage for guest disks: ${nameList(disks) || 'none'}.`,
  );
}

export const findCapacityTool = defineTool({
  name: 'find_capacity',
  title: 'Find capacity',
  description:
    'Nodes that can take a guest of this size, most memory left first, with the arithmetic. Allocation counts non-template guests, running or stopped; memory must fit it and current use; cores ≤ node cpus.',
  input: z
    .object({
      cores: count(1, 4096),
      memoryGiB: amount(65_536),
      diskGiB: amount(1_048_576).optional(),
      storage: text(64).optional().describe("default: the node's roomiest disk storage"),
      cluster: text(63).optional(),
      includeStale: flag().optional(),
    })
    .strict(),
  output: z.object({ rule: z.string(), fits: Rows, cannot: Rows }),
  annotations: READ_ONLY,
  handler(args, { store }) {
    checkCluster(store, args.cluster);
    checkStorage(store, args.cluster, args.storage);
    const ask: Ask = {
      cores: args.cores,
      memory: Math.round(args.memoryGiB * GiB),
      disk: args.diskGiB === undefined ? undefined : Math.round(args.diskGiB * GiB),
      storage: args.storage,
      includeStale: args.includeStale ?? false,
    };
    const storage = listStorage(store, { cluster: args.cluster }).items;
    const all = listNodes(store, args.cluster).items.map((node) =>
      assess(
        ask,
        node,
        storage.filter((s) => s.cluster === node.cluster && s.nodes.includes(node.node)),
      ),
    );
    const fits = all
      .filter((c) => c.fits)
      .sort((a, b) => (b.memory.freeAfter ?? 0) - (a.memory.freeAfter ?? 0) || a.node.localeCompare(b.node));
    const cannot = all.filter((c) => !c.fits);
    const rule = 'allocated = sum of maxcpu/maxmem of non-template guests on the node, running or stopped';
    const multi = new Set(all.map((c) => c.cluster)).size > 1;
    const wanted = `${ask.cores} cores, ${bytes(ask.memory)} memory${ask.disk === undefined ? '' : `, ${bytes(ask.disk)} disk`}${ask.storage ? ` on ${untrusted(ask.storage, 64)}` : ''}`;
    const lines = [
      `${fits.length} of ${all.length} nodes can take ${wanted}; ${rule}.`,
      ...fits.map((c) => line(c, ask, multi)),
      ...cannot.map((c) => line(c, ask, multi)),
    ];
    return { structured: { rule, fits, cannot }, text: lines.join('\n') };
  },
});
