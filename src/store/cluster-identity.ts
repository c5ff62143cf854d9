/** How the store records who a cluster is (clusters.identity), and how it is said in words. */

export interface ClusterIdentity {
  /** The corosync cluster name; null for a standalone node. */
  clusterName: string | null;
  /** Member name → corosync nodeid (null when Proxmox does not give one, e.g. standalone). */
  nodes: Record<string, number | null>;
}

/** `cluster "prod" (pve1, pve2)` or `standalone node pve1`. */
export function describeIdentity(id: ClusterIdentity): string {
  const members = Object.keys(id.nodes).sort().join(', ') || 'no nodes';
  return id.clusterName === null ? `standalone node ${members}` : `cluster "${id.clusterName}" (${members})`;
}

/** An identity from its JSON, or undefined when the text is not one. */
export function parseIdentity(text: string | null | undefined): ClusterIdentity | undefined {
  if (!text) return undefined;
  try {
    return asIdentity(JSON.parse(text));
  } catch {
    return undefined;
  }
}

export function asIdentity(value: unknown): ClusterIdentity | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const v = value as { clusterName?: unknown; nodes?: unknown };
  if (typeof v.nodes !== 'object' || v.nodes === null || Array.isArray(v.nodes)) return undefined;
  return {
    clusterName: typeof v.clusterName === 'string' ? v.clusterName : null,
    nodes: v.nodes as Record<string, number | null>,
  };
}
