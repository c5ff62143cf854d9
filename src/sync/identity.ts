/**
 * Who a cluster and a guest are, beyond the names the store keys them by (DESIGN.md "Identity").
 *
 * A cluster is its corosync name and its members (node name → nodeid) from /cluster/status; a
 * standalone node is its name. A different cluster behind the same URL shares none of that and is
 * refused instead of being diffed against the one the store holds. Members join and leave, so one
 * member in common (same name, same nodeid where both have one) is the same cluster; a cluster
 * that shares a corosync name and a member with the old one cannot be told apart.
 *
 * A guest is a vmid only until Proxmox hands that vmid to a new guest (it reuses the lowest free
 * one). The old guest is gone and a new one exists when: the type changed (qemu ↔ lxc); a destroy
 * task for the vmid finished since the last read; or the config says it was created anew (qemu
 * `meta: …ctime=…` changed; without a ctime on both sides, the `smbios1` uuid). `vmgenid` is not
 * used: a snapshot rollback gives a VM a new one. A vmid that was tombstoned and is listed again is
 * the same guest only when its config, once read, proves it (same ctime, uuid or digest); until
 * then the tombstone stays as it is.
 */
import type { ClusterStatus, GuestResource, NodeResource, Task } from '../proxmox/types.js';
import type { ClusterIdentity } from '../store/cluster-identity.js';
import { parseJson } from '../store/queries/shared.js';
import type { GuestRow } from '../store/sync-state.js';
import type { FetchedConfig } from './rows.js';

export function identityOf(status: ClusterStatus, resourceNodes: NodeResource[]): ClusterIdentity {
  const nodes: Record<string, number | null> = {};
  // A standalone node reports nodeid 0; the id it gets when it forms a cluster is not a new identity.
  for (const n of status.nodes)
    nodes[n.name] = status.cluster && n.nodeid !== undefined && n.nodeid > 0 ? n.nodeid : null;
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

const storedValues = (prev: GuestRow): Record<string, string> | undefined =>
  parseJson<Record<string, string> | undefined>(prev.config, undefined);

/** What a listing says of the guest a row describes. */
export type Continuity =
  | { kind: 'same' }
  /** Another guest holds the vmid; `since` is when it began, as far as Proxmox says (ms). */
  | { kind: 'replaced'; reason: string; since?: number }
  /** A tombstoned row whose config has not been read yet: decide once it has. */
  | { kind: 'undecided' };

/**
 * When a destroy task for the row's vmid ended, if it ended after the row's guest began (an older
 * one destroyed its predecessor, and may show up a cycle late). Task times are whole seconds: a
 * first guest began in the second it was first seen; a later one at its `incarnationSince`.
 */
export function destroyedAfter(prev: GuestRow, destroyed: Map<number, number>): number | undefined {
  const at = destroyed.get(prev.vmid);
  if (at === undefined) return undefined;
  const after =
    prev.incarnationSince != null ? at > prev.incarnationSince : at >= Math.floor(prev.firstSeenAt / 1000) * 1000;
  return after ? at : undefined;
}

/**
 * Whether the guest listed now is the guest the row describes. Cheap when nothing says otherwise:
 * the stored config is parsed only when a config was read this cycle or the row is a tombstone.
 */
export function continuity(
  prev: GuestRow,
  r: GuestResource,
  config: FetchedConfig | undefined,
  destroyed: Map<number, number>,
): Continuity {
  if (prev.type !== r.type) return { kind: 'replaced', reason: `the type changed from ${prev.type} to ${r.type}` };
  const destroyedAt = destroyedAfter(prev, destroyed);
  if (destroyedAt !== undefined)
    return {
      kind: 'replaced',
      reason: 'a destroy task for this vmid finished since the last read',
      since: destroyedAt,
    };
  if (!config) return prev.deletedAt ? { kind: 'undecided' } : { kind: 'same' };
  const before = configIdentity(storedValues(prev));
  const after = configIdentity(config.values);
  const since = after.ctime === undefined ? undefined : Number(after.ctime) * 1000;
  // The creation time decides where both configs have one: `qm set --smbios1` changes the uuid of the same VM.
  if (before.ctime && after.ctime) {
    if (before.ctime !== after.ctime)
      return {
        kind: 'replaced',
        reason: `its creation time changed (meta ctime ${before.ctime} → ${after.ctime})`,
        since,
      };
    return { kind: 'same' };
  }
  if (before.uuid && after.uuid && before.uuid !== after.uuid)
    return { kind: 'replaced', reason: 'its SMBIOS uuid changed', since };
  if (!prev.deletedAt) return { kind: 'same' };
  const proven =
    (before.uuid !== undefined && before.uuid === after.uuid) || (prev.digest != null && prev.digest === config.digest);
  return proven ? { kind: 'same' } : { kind: 'replaced', reason: 'the vmid was deleted and is in use again', since };
}
