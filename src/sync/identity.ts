/**
 * Who a cluster and a guest are, beyond the names the store keys them by (DESIGN.md "Identity").
 *
 * A cluster is its corosync name and its members (node name → nodeid) from /cluster/status; a
 * standalone node is its name. A different cluster behind the same URL shares none of that and is
 * refused instead of being diffed against the one the store holds. Members change one at a time
 * (a node joins, another leaves), so one member in common is the same cluster.
 *
 * A guest is a vmid only until Proxmox hands that vmid to a new guest (it reuses the lowest free
 * one). The old guest is gone and a new one exists when: the type changed (qemu ↔ lxc); a destroy
 * task for the vmid finished since the last read; or the config says it was created anew (qemu
 * `meta: …ctime=…` or the `smbios1` uuid changed). `vmgenid` is not used: a snapshot rollback
 * gives a VM a new one. A vmid that was tombstoned and is listed again is the same guest only
 * when its config proves it (same ctime, uuid or digest); otherwise it is a new one.
 */
import type { ClusterStatus, GuestResource, NodeResource, Task } from '../proxmox/types.js';
import type { ClusterIdentity } from '../store/cluster-identity.js';
import type { GuestRow } from '../store/sync-state.js';
import type { FetchedConfig } from './rows.js';

export function identityOf(status: ClusterStatus, resourceNodes: NodeResource[]): ClusterIdentity {
  const nodes: Record<string, number | null> = {};
  for (const n of status.nodes) nodes[n.name] = n.nodeid ?? null;
  if (status.nodes.length === 0) for (const n of resourceNodes) nodes[n.node] = null;
  return { clusterName: status.cluster?.name ?? null, nodes };
}

/**
 * The same cluster: the corosync names agree where both are known, and some member is in both
 * (by name, and by nodeid where both give one). A standalone node that became a cluster keeps its
 * name among the members, so it is the same.
 */
export function sameCluster(known: ClusterIdentity, seen: ClusterIdentity): boolean {
  if (known.clusterName !== null && seen.clusterName !== null && known.clusterName !== seen.clusterName) return false;
  const knownNodes = Object.entries(known.nodes);
  if (knownNodes.length === 0 || Object.keys(seen.nodes).length === 0) return true;
  return knownNodes.some(([name, id]) => {
    if (!Object.hasOwn(seen.nodes, name)) return false;
    const other = seen.nodes[name];
    return id === null || other === null || other === undefined || id === other;
  });
}

/** Task types that destroy a guest. */
const DESTROY_TASKS = new Set(['qmdestroy', 'vzdestroy']);

/**
 * vmids whose destroy task finished successfully since the last read (tasks not known before, or
 * known while still running), with the task's end time in ms.
 */
export function destroyedSince(tasks: Task[], known: Map<string, string>): Map<number, number> {
  const out = new Map<number, number>();
  for (const t of tasks) {
    if (!DESTROY_TASKS.has(t.type) || t.endtime === undefined || !/^\d+$/.test(t.id)) continue;
    const before = known.get(t.upid);
    if (before !== undefined && before !== 'running') continue;
    if (t.status !== 'OK' && !t.status?.startsWith('WARNINGS')) continue;
    out.set(Number(t.id), Math.max(out.get(Number(t.id)) ?? 0, t.endtime * 1000));
  }
  return out;
}

interface ConfigIdentity {
  ctime?: string;
  uuid?: string;
}

function configIdentity(values: Record<string, string> | undefined): ConfigIdentity {
  if (!values) return {};
  return {
    ctime: /(?:^|,)ctime=(\d+)/.exec(values.meta ?? '')?.[1],
    uuid: /(?:^|,)uuid=([0-9a-fA-F-]+)/.exec(values.smbios1 ?? '')?.[1]?.toLowerCase(),
  };
}

function storedValues(prev: GuestRow): Record<string, string> | undefined {
  if (!prev.config) return undefined;
  try {
    return JSON.parse(prev.config) as Record<string, string>;
  } catch {
    return undefined;
  }
}

/**
 * Why the guest listed now is not the guest the row describes, or undefined when it is the same
 * (for a tombstoned row: when the config proves it came back).
 */
export function replacementReason(prev: GuestRow, r: GuestResource, config: FetchedConfig | undefined, destroyed: Map<number, number>): string | undefined {
  if (prev.type !== r.type) return `the type changed from ${prev.type} to ${r.type}`;
  if (destroyed.has(r.vmid)) return 'a destroy task for this vmid finished since the last read';
  const before = configIdentity(storedValues(prev));
  const after = configIdentity(config?.values);
  if (config) {
    if (before.ctime && after.ctime && before.ctime !== after.ctime) return `its creation time changed (meta ctime ${before.ctime} → ${after.ctime})`;
    if (before.uuid && after.uuid && before.uuid !== after.uuid) return 'its SMBIOS uuid changed';
  }
  if (!prev.deletedAt) return undefined;
  const proven = config !== undefined && (
    (before.ctime !== undefined && before.ctime === after.ctime)
    || (before.uuid !== undefined && before.uuid === after.uuid)
    || (prev.digest != null && prev.digest === config.digest)
  );
  return proven ? undefined : 'the vmid was deleted and is in use again';
}
