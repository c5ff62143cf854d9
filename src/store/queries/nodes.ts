/** Nodes with their guests' allocation against physical size, and storage (a shared one once, with all its nodes). */
import { and, asc, eq } from 'drizzle-orm';
import type { Store } from '../db.js';
import { prepared } from '../prepared.js';
import { nodes, storage } from '../schema.js';
import { statsBy, toStats } from './aggregates.js';
import { nameSimilarity, SUGGESTIONS } from './guest.js';
import { iso, oneRead, P, ratio, stringArray, type Runnable } from './shared.js';

// ---- nodes ---------------------------------------------------------------------------------------

export interface NodeSummary {
  cluster: string;
  node: string;
  /** `online`, `offline`, `unknown`. */
  status: string;
  online: boolean;
  /** Values are the last known (node offline or cluster unreachable). */
  stale: boolean;
  lastSeenAt: string | null;
  ip: string | null;
  uptime: number | null;
  cpu: number | null;
  maxcpu: number | null;
  mem: number | null;
  maxmem: number | null;
  disk: number | null;
  maxdisk: number | null;
  /** `running`: running now; `unknown`: stale guests (the node or cluster unreachable, or missing from the read), whose status now is unknown. */
  guests: { total: number; running: number; unknown: number; templates: number };
  /** Non-template guests' maxcpu / maxmem, running or not, stale or not (the node has promised them). */
  allocatedVcpus: number;
  allocatedMemoryBytes: number;
  /** The same over guests running now. */
  runningVcpus: number;
  runningMemoryBytes: number;
  /** allocated / physical, 3 decimals; null when the physical size is unknown. */
  cpuOvercommit: number | null;
  memoryOvercommit: number | null;
  /** The same over guests running now: what the node carries, not what it has promised. */
  runningCpuOvercommit: number | null;
  runningMemoryOvercommit: number | null;
}

export interface StorageEntry {
  cluster: string;
  storage: string;
  shared: boolean;
  /** The node of a local storage; null for a shared one (see `nodes`). */
  node: string | null;
  /** Nodes where the storage is enabled: one for a local storage, all that list it for a shared one. */
  nodes: string[];
  plugintype: string | null;
  content: string[];
  status: string;
  disk: number | null;
  maxdisk: number | null;
  /** disk / maxdisk, 4 decimals; null when unknown. */
  usedFraction: number | null;
  stale: boolean;
  lastSeenAt: string | null;
}

export interface NodeDetail extends NodeSummary {
  /** Storage enabled on this node (shared ones included, with all their nodes). */
  storage: StorageEntry[];
}

export type NodeLookup =
  | { kind: 'found'; node: NodeDetail }
  | { kind: 'ambiguous'; candidates: Array<{ cluster: string; node: string }> }
  | { kind: 'not_found'; suggestions: Array<{ cluster: string; node: string }> };

function nodeSummaries(store: Store, f: { cluster?: string; node?: string }): NodeSummary[] {
  const keys = (['cluster', 'node'] as const).filter((k) => f[k] !== undefined);
  const query: Runnable<typeof nodes.$inferSelect> = prepared(store, `nodes:${keys.join(',')}`, () =>
    store.db
      .select()
      .from(nodes)
      .where(and(...keys.map((k) => eq(nodes[k], P(k)))))
      .orderBy(asc(nodes.cluster), asc(nodes.node))
      .prepare(),
  );
  const rows = query.all(Object.fromEntries(keys.map((k) => [k, f[k]])));
  const stats = new Map(statsBy(store, 'node', {}).map((r) => [`${r.cluster}\u0000${r.key}`, r]));
  return rows.map((n) => {
    const s = toStats(stats.get(`${n.cluster}\u0000${n.node}`));
    return {
      cluster: n.cluster,
      node: n.node,
      status: n.status,
      online: n.online,
      stale: n.stale,
      lastSeenAt: iso(n.lastSeenAt),
      ip: n.ip,
      uptime: n.uptime,
      cpu: n.cpu,
      maxcpu: n.maxcpu,
      mem: n.mem,
      maxmem: n.maxmem,
      disk: n.disk,
      maxdisk: n.maxdisk,
      guests: { total: s.guests, running: s.running, unknown: s.unknown, templates: s.templates },
      allocatedVcpus: s.allocatedVcpus,
      allocatedMemoryBytes: s.allocatedMemoryBytes,
      runningVcpus: s.runningVcpus,
      runningMemoryBytes: s.runningMemoryBytes,
      cpuOvercommit: ratio(s.allocatedVcpus, n.maxcpu),
      memoryOvercommit: ratio(s.allocatedMemoryBytes, n.maxmem),
      runningCpuOvercommit: ratio(s.runningVcpus, n.maxcpu),
      runningMemoryOvercommit: ratio(s.runningMemoryBytes, n.maxmem),
    };
  });
}

/** Every node (of one cluster, or all), with guest counts and allocation. */
export function listNodes(store: Store, cluster?: string): { items: NodeSummary[] } {
  return oneRead(store, () => ({ items: nodeSummaries(store, { cluster }) }));
}

/** One node; `cluster` may be left out when the node name is unique across clusters. */
export function getNode(store: Store, cluster: string | undefined, node: string): NodeLookup {
  return oneRead(store, () => {
    const found = nodeSummaries(store, { cluster, node });
    if (found.length > 1)
      return { kind: 'ambiguous', candidates: found.map((n) => ({ cluster: n.cluster, node: n.node })) };
    const only = found[0];
    if (only)
      return {
        kind: 'found',
        node: { ...only, storage: storageEntries(store, { cluster: only.cluster, node: only.node }) },
      };
    const all = store.db
      .select({ cluster: nodes.cluster, node: nodes.node })
      .from(nodes)
      .orderBy(asc(nodes.cluster), asc(nodes.node))
      .all();
    const suggestions = all
      .map((n) => ({ n, score: nameSimilarity(node, n.node) + (n.cluster === cluster ? 0.01 : 0) }))
      .sort((a, b) => b.score - a.score)
      .slice(0, SUGGESTIONS)
      .map((s) => s.n);
    return { kind: 'not_found', suggestions };
  });
}

// ---- storage ---------------------------------------------------------------------------------------

export interface StorageFilter {
  cluster?: string;
  /** Storage enabled on this node (a shared one is still reported once, with all its nodes). */
  node?: string;
  shared?: boolean;
}

function storageEntries(store: Store, f: StorageFilter): StorageEntry[] {
  const keys = (['cluster', 'shared'] as const).filter((k) => f[k] !== undefined);
  const query: Runnable<typeof storage.$inferSelect> = prepared(store, `storage:${keys.join(',')}`, () =>
    store.db
      .select()
      .from(storage)
      .where(and(...keys.map((k) => eq(storage[k], P(k)))))
      .orderBy(asc(storage.cluster), asc(storage.storage), asc(storage.node))
      .prepare(),
  );
  const rows = query.all({
    ...(f.cluster !== undefined ? { cluster: f.cluster } : {}),
    ...(f.shared !== undefined ? { shared: Number(f.shared) } : {}),
  });
  const groups = new Map<string, typeof rows>();
  for (const r of rows) {
    const key = r.shared ? `${r.cluster}\u0000${r.storage}` : `${r.cluster}\u0000${r.storage}\u0000${r.node}`;
    const list = groups.get(key);
    if (list) list.push(r);
    else groups.set(key, [r]);
  }
  const out: StorageEntry[] = [];
  for (const list of groups.values()) {
    if (f.node !== undefined && !list.some((r) => r.node === f.node)) continue;
    // A shared storage is the same volume on every node: take the freshest live view of it.
    const live = list.filter((r) => !r.stale);
    const best = [...(live.length ? live : list)].sort((a, b) => (b.lastSeenAt ?? 0) - (a.lastSeenAt ?? 0))[0]!;
    out.push({
      cluster: best.cluster,
      storage: best.storage,
      shared: best.shared,
      node: best.shared ? null : best.node,
      nodes: list.map((r) => r.node),
      plugintype: best.plugintype,
      content: stringArray(best.content),
      status: list.some((r) => r.status === 'available') ? 'available' : best.status,
      disk: best.disk,
      maxdisk: best.maxdisk,
      usedFraction: best.disk != null && best.maxdisk ? Math.round((best.disk / best.maxdisk) * 10_000) / 10_000 : null,
      stale: live.length === 0,
      lastSeenAt: iso(best.lastSeenAt),
    });
  }
  return out;
}

/**
 * Storage: a shared storage once per (cluster, storage) with the nodes that list it, stale only
 * when no node sees it live; a local storage once per node.
 */
export function listStorage(store: Store, filter: StorageFilter = {}): { items: StorageEntry[] } {
  return oneRead(store, () => ({ items: storageEntries(store, filter) }));
}
