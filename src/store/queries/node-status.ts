/**
 * What GET /nodes/{node}/status says of each node (load average, kernel, pve-manager version, KSM,
 * swap, CPU model), as the sync stores it on a slow schedule (src/sync/node-status.ts), with when
 * it was read; and how many of those reads each cluster's syncs made lately.
 */
import { asc, eq } from 'drizzle-orm';
import type { Store } from '../db.js';
import { prepared } from '../prepared.js';
import { nodes, syncRuns } from '../schema.js';
import { iso, oneRead, P, type Runnable } from './shared.js';

export interface NodeStatusFacts {
  /** Over 1, 5 and 15 minutes; null until the first read. */
  loadavg: [number | null, number | null, number | null] | null;
  kernel: string | null;
  pveVersion: string | null;
  ksmSharedBytes: number | null;
  swapTotalBytes: number | null;
  swapUsedBytes: number | null;
  cpuModel: string | null;
  cpuSockets: number | null;
  cpuCores: number | null;
  /** When these were read; null while never (the node offline since the daemon started, or just added). */
  statusReadAt: string | null;
}

/** Each node's status facts (of one cluster, or all), keyed `cluster/node`. */
export function nodeStatusFacts(store: Store, cluster?: string): Map<string, NodeStatusFacts> {
  const inCluster = cluster !== undefined;
  const columns = {
    cluster: nodes.cluster,
    node: nodes.node,
    loadavg1: nodes.loadavg1,
    loadavg5: nodes.loadavg5,
    loadavg15: nodes.loadavg15,
    kernel: nodes.kernel,
    pveVersion: nodes.pveVersion,
    ksmSharedBytes: nodes.ksmSharedBytes,
    swapTotalBytes: nodes.swapTotalBytes,
    swapUsedBytes: nodes.swapUsedBytes,
    cpuModel: nodes.cpuModel,
    cpuSockets: nodes.cpuSockets,
    cpuCores: nodes.cpuCores,
    statusReadAt: nodes.statusReadAt,
  };
  const query: Runnable<{ [K in keyof typeof columns]: (typeof nodes.$inferSelect)[K] }> = prepared(
    store,
    `node-status:${inCluster}`,
    () =>
      store.db
        .select(columns)
        .from(nodes)
        .where(inCluster ? eq(nodes.cluster, P('cluster')) : undefined)
        .orderBy(asc(nodes.cluster), asc(nodes.node))
        .prepare(),
  );
  const rows = oneRead(store, () => query.all(inCluster ? { cluster } : {}));
  return new Map(
    rows.map((n) => [
      `${n.cluster}/${n.node}`,
      {
        loadavg:
          n.loadavg1 === null && n.loadavg5 === null && n.loadavg15 === null
            ? null
            : [n.loadavg1, n.loadavg5, n.loadavg15],
        kernel: n.kernel,
        pveVersion: n.pveVersion,
        ksmSharedBytes: n.ksmSharedBytes,
        swapTotalBytes: n.swapTotalBytes,
        swapUsedBytes: n.swapUsedBytes,
        cpuModel: n.cpuModel,
        cpuSockets: n.cpuSockets,
        cpuCores: n.cpuCores,
        statusReadAt: iso(n.statusReadAt),
      },
    ]),
  );
}

/** The endpoint as the counting client names it in sync_runs.calls (src/sync/counting-client.ts). */
const NODE_STATUS_CALL = 'GET /nodes/{node}/status';
/** Runs looked at per cluster: an hour of cycles every 5 s; the reads before are not counted. */
const RUNS_LOOKED_AT = 720;

export interface NodeStatusReads {
  cluster: string;
  /** Status calls the syncs made since `since` (each one node's status). */
  calls: number;
  /** Nodes whose status is stored, and the latest time one was read. */
  nodesRead: number;
  lastReadAt: string | null;
}

/** Per cluster: the node status calls made since `since` (epoch ms) and the nodes read. */
export function nodeStatusReads(store: Store, since: number): NodeStatusReads[] {
  const readAt = nodes.statusReadAt.name;
  const query = prepared(store, 'node-status-reads', () =>
    store.sqlite.prepare(
      `SELECT n."${nodes.cluster.name}" AS cluster, count(n."${readAt}") AS nodesRead, max(n."${readAt}") AS lastReadAt,
        (SELECT coalesce(sum(json_extract(r.calls, '$."${NODE_STATUS_CALL}"')), 0) FROM
          (SELECT "${syncRuns.calls.name}" AS calls, "${syncRuns.startedAt.name}" AS startedAt FROM "sync_runs"
            WHERE "${syncRuns.cluster.name}" = n."${nodes.cluster.name}" ORDER BY "${syncRuns.id.name}" DESC LIMIT ${RUNS_LOOKED_AT}) r
          WHERE r.startedAt >= @since) AS calls
      FROM "nodes" n GROUP BY 1 ORDER BY 1`,
    ),
  );
  const rows = oneRead(store, () => query.all({ since })) as Array<{
    cluster: string;
    nodesRead: number;
    lastReadAt: number | null;
    calls: number;
  }>;
  return rows.map((r) => ({
    cluster: r.cluster,
    calls: r.calls,
    nodesRead: r.nodesRead,
    lastReadAt: iso(r.lastReadAt),
  }));
}
