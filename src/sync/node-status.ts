/**
 * Node facts /cluster/resources does not give: load average, kernel, pve-manager version, KSM
 * sharing, swap and the CPU model, from GET /nodes/{node}/status. One call per online node, so it
 * is read on a slow schedule (every `periodMs`, 5 minutes by default), not every cycle; a node
 * that does not answer keeps its last values and is tried again a period later. The calls go
 * through the cycle's counting client, so sync_runs counts them (`GET /nodes/{node}/status`).
 */
import type { ProxmoxClient } from '../proxmox/client.js';
import type { NodeRow } from '../store/sync-state.js';

/** The nodes columns this read fills in. */
export type NodeStatusFields = Pick<
  NodeRow,
  | 'loadavg1'
  | 'loadavg5'
  | 'loadavg15'
  | 'kernel'
  | 'pveVersion'
  | 'ksmSharedBytes'
  | 'swapTotalBytes'
  | 'swapUsedBytes'
  | 'cpuModel'
  | 'cpuSockets'
  | 'cpuCores'
>;

const record = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

/** A number, or a numeric string (Proxmox sends the load average as strings); null otherwise. */
function number(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v.trim())) return Number(v);
  return null;
}

const integer = (v: unknown): number | null => {
  const n = number(v);
  return n === null ? null : Math.round(n);
};
const text = (v: unknown): string | null => (typeof v === 'string' && v.trim() !== '' ? v.trim() : null);

/**
 * The fields from a /nodes/{node}/status answer; a field missing or of the wrong type is null.
 * The kernel is `current-kernel.release` (PVE 8.2+) or the release in `kversion`; the version
 * the part of `pveversion` after `pve-manager/`.
 */
export function parseNodeStatus(data: unknown): NodeStatusFields {
  const d = record(data);
  const load = Array.isArray(d.loadavg) ? d.loadavg.map(number) : [];
  const kernel = text(record(d['current-kernel']).release) ?? text(/^\S+\s+(\S+)/.exec(text(d.kversion) ?? '')?.[1]);
  const manager = text(d.pveversion);
  const cpu = record(d.cpuinfo);
  const swap = record(d.swap);
  return {
    loadavg1: load[0] ?? null,
    loadavg5: load[1] ?? null,
    loadavg15: load[2] ?? null,
    kernel,
    pveVersion: manager === null ? null : (/^pve-manager\/([^/\s]+)/.exec(manager)?.[1] ?? manager),
    ksmSharedBytes: integer(record(d.ksm).shared),
    swapTotalBytes: integer(swap.total),
    swapUsedBytes: integer(swap.used),
    cpuModel: text(cpu.model),
    cpuSockets: integer(cpu.sockets),
    cpuCores: integer(cpu.cores),
  };
}

/**
 * Which online nodes to read now: never read, or read (or tried) a period ago or more. `readAt` is when each node's status was last stored,
 * `triedAt` when a read last failed (kept in memory: after a restart a failed node is tried once more).
 */
export function dueNodes(
  online: Iterable<string>,
  readAt: (node: string) => number | null | undefined,
  triedAt: ReadonlyMap<string, number>,
  now: number,
  periodMs: number,
): string[] {
  if (periodMs <= 0) return [];
  const due: string[] = [];
  for (const node of online) {
    const last = Math.max(readAt(node) ?? -Infinity, triedAt.get(node) ?? -Infinity);
    if (now - last >= periodMs) due.push(node);
  }
  return due.sort();
}

export interface NodeStatusRead {
  /** Fields per node that answered. */
  read: Map<string, NodeStatusFields>;
  /** Node → why its read failed. */
  failed: Map<string, string>;
}

/** Reads the due nodes' status, `concurrency` at a time; a failed read is reported, never thrown. */
export async function readNodeStatus(
  client: ProxmoxClient,
  nodes: string[],
  concurrency: number,
): Promise<NodeStatusRead> {
  const out: NodeStatusRead = { read: new Map(), failed: new Map() };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < nodes.length) {
      const node = nodes[next++]!;
      try {
        out.read.set(node, parseNodeStatus(await client.get(`/nodes/${encodeURIComponent(node)}/status`)));
      } catch (err) {
        out.failed.set(node, err instanceof Error ? err.message : String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, nodes.length) }, worker));
  return out;
}
