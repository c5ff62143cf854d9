import { z } from 'zod';
import { syncStatus, type ClusterSyncStatus } from '../../store/queries.js';
import { nodeStatusReads, type NodeStatusReads } from '../../store/queries/node-status.js';
import { oneLine, table, untrusted } from '../render.js';
import { webhookProblemLine, webhookProblems } from '../../store/webhook-health.js';
import { defineTool, READ_ONLY, runningCycle, type LiveSyncStatus, type RunningCycle } from '../tool.js';
import { Rows } from './shared.js';

const HOUR = 3_600_000;

/** A cluster's status with what the running daemon knows beyond the store. */
type Row = ClusterSyncStatus & {
  /** The cycle running now (daemon only). */
  cycle?: RunningCycle | null;
  /** Failures since the last success the store could not record (daemon only); included in consecutiveFailures. */
  unrecordedFailures?: number;
  /** GET /nodes/{node}/status, read every few minutes apart from the cycle's bulk reads. */
  nodeStatus?: { callsLastHour: number; nodesRead: number; lastReadAt: string | null };
};

/** A cluster the store has no row for yet: its first cycle is running, or failed without being recorded. */
function notInStore(cluster: string): ClusterSyncStatus {
  return {
    cluster,
    clusterName: null,
    pveVersion: null,
    quorate: null,
    stale: true,
    overdue: false,
    lastSuccessAt: null,
    lastAttemptAt: null,
    ageMs: null,
    consecutiveFailures: 0,
    lastError: null,
    signalProblems: {},
    identityChanged: null,
    lastRun: null,
    lastSuccessfulRun: null,
  };
}

/**
 * The store's view of a cluster corrected by the daemon's: a failure the store could not record
 * counts, and the cluster is stale; a running cycle or an unrecorded failure is an attempt, so the
 * cluster is not `overdue` (nothing syncing) but, past the freshness window, stale by its data's age.
 */
function withLive(c: ClusterSyncStatus, live: LiveSyncStatus, now: number, staleAfterMs: number): Row {
  const unrecorded = live.lastFailure && !live.lastFailure.recorded ? live.lastFailure : null;
  const attemptedLately =
    live.cycle !== null || (live.lastFailure !== null && now - live.lastFailure.at <= staleAfterMs);
  const overdue = c.overdue && !attemptedLately;
  const aged = c.ageMs == null ? c.lastSuccessAt == null : c.ageMs > staleAfterMs;
  return {
    ...c,
    // The store's own flag is set exactly when its last recorded attempt failed (lastError).
    stale: c.lastError != null || aged || overdue || unrecorded !== null,
    overdue,
    lastAttemptAt: unrecorded ? new Date(unrecorded.at).toISOString() : c.lastAttemptAt,
    consecutiveFailures: c.consecutiveFailures + live.unrecordedFailures,
    lastError: unrecorded ? unrecorded.error : c.lastError,
    cycle: live.cycle ? runningCycle(live.cycle, now) : null,
    unrecordedFailures: live.unrecordedFailures,
  };
}

/** Each cluster's node status reads: calls in the last hour, nodes read, the latest read. */
function withNodeStatus(clusters: Row[], reads: NodeStatusReads[]): Row[] {
  const byCluster = new Map(reads.map((r) => [r.cluster, r]));
  return clusters.map((c) => {
    const r = byCluster.get(c.cluster);
    return r ? { ...c, nodeStatus: { callsLastHour: r.calls, nodesRead: r.nodesRead, lastReadAt: r.lastReadAt } } : c;
  });
}

/** "cycle running for 31 s, reading the cluster: waiting on GET /cluster/resources". */
function cycleLine(cycle: NonNullable<Row['cycle']>): string {
  const waiting = cycle.waitingOn
    .map((w) => (w.count > 1 ? `${w.count} × ${oneLine(w.request)}` : oneLine(w.request)))
    .join(', ');
  return `cycle running for ${Math.round(cycle.runningForMs / 1000)} s, ${oneLine(cycle.phase, 80)}${waiting ? `: waiting on ${waiting}` : ''}`;
}

export const syncStatusTool = defineTool({
  name: 'sync_status',
  title: 'Sync status',
  description:
    'Per cluster: last successful sync, age, failures, last error, API calls and duration per cycle, change signals the token cannot see; ' +
    "from the daemon's HTTP endpoint also the cycle running now (phase, requests it waits on) and failures the store could not record; " +
    'webhook subscriptions failing or disabled.',
  input: z.object({}).strict(),
  output: z.object({ clusters: Rows, webhooks: Rows }),
  annotations: READ_ONLY,
  handler(_args, { store, now, staleAfterMs, live }) {
    const at = now();
    const status = syncStatus(store, at, staleAfterMs);
    let clusters: Row[] = status.clusters;
    if (live) {
      const known = new Map(live().map((l) => [l.cluster, l]));
      const stored = new Set(status.clusters.map((c) => c.cluster));
      const extra = [...known.values()]
        .filter((l) => !stored.has(l.cluster) && (l.cycle || l.lastFailure))
        .map((l) => notInStore(l.cluster));
      clusters = [...status.clusters, ...extra]
        .map((c) => {
          const l = known.get(c.cluster);
          return l ? withLive(c, l, at, staleAfterMs) : c;
        })
        .sort((a, b) => a.cluster.localeCompare(b.cluster));
    }
    clusters = withNodeStatus(clusters, nodeStatusReads(store, at - HOUR));
    const rows = clusters.map((c) => [
      c.cluster,
      c.identityChanged ? 'OTHER CLUSTER' : c.overdue ? 'OVERDUE' : c.stale ? 'STALE' : 'ok',
      c.lastSuccessAt ?? 'never',
      c.ageMs == null ? '-' : `${Math.round(c.ageMs / 1000)}s`,
      String(c.lastSuccessfulRun?.callsTotal ?? '-'),
      String(c.nodeStatus?.callsLastHour ?? '-'),
      c.lastSuccessfulRun ? `${c.lastSuccessfulRun.durationMs}ms` : '-',
      String(c.consecutiveFailures),
      untrusted(c.lastError, 120),
    ]);
    const notes = clusters.flatMap((c) => [
      ...(c.identityChanged
        ? [
            `- ${c.cluster}: ANOTHER CLUSTER answers at its URL since ${oneLine(c.identityChanged.since, 40)}: ${oneLine(c.identityChanged.seen)}, not ${oneLine(c.identityChanged.expected)}; nothing is applied until the old one answers again or \`proxmox-inventory cluster reset ${c.cluster}\` accepts the new one`,
          ]
        : []),
      ...(c.cycle ? [`- ${c.cluster}: ${cycleLine(c.cycle)}`] : []),
      ...(c.unrecordedFailures
        ? [
            `- ${c.cluster}: ${c.unrecordedFailures} failed sync${c.unrecordedFailures === 1 ? '' : 's'} since the last success could not be recorded in the store (the inventory file does not show ${c.unrecordedFailures === 1 ? 'it' : 'them'})`,
          ]
        : []),
    ]);
    const webhooks = webhookProblems(store);
    const signals = clusters.flatMap((c) =>
      Object.entries(c.signalProblems).map(
        ([signal, problem]) => `- ${c.cluster} (${oneLine(signal, 30)} signal): ${oneLine(problem, 400)}`,
      ),
    );
    const text = [
      clusters.length
        ? table(
            [
              'cluster',
              'state',
              'last_success',
              'age',
              'calls',
              'node_status_calls_1h',
              'duration',
              'failures',
              'last_error',
            ],
            rows,
          )
        : 'no cluster has been synced yet',
      ...(notes.length ? ['now:', ...notes] : []),
      ...(signals.length ? ['change signals missing:', ...signals] : []),
      ...(webhooks.length ? ['webhooks:', ...webhooks.map((w) => `- ${webhookProblemLine(w, untrusted)}`)] : []),
    ].join('\n');
    return {
      structured: {
        clusters: clusters as unknown as Array<Record<string, unknown>>,
        webhooks: webhooks as unknown as Array<Record<string, unknown>>,
      },
      text,
    };
  },
});
