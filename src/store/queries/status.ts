/** How current the copy is: clusters, their sync runs, and the freshness every MCP answer carries. */
import { and, asc, desc, eq } from 'drizzle-orm';
import { asIdentity, describeIdentity } from '../cluster-identity.js';
import type { Store } from '../db.js';
import { prepared } from '../prepared.js';
import { clusters, nodes, syncRuns } from '../schema.js';
import { iso, oneRead, P, parseJson } from './shared.js';

/** What the clusters table says of each cluster, without its sync runs. */
export type ClusterInfo = Omit<ClusterSyncStatus, 'lastRun' | 'lastSuccessfulRun'>;

/**
 * Every cluster's state, by name. `staleAfterMs` is the freshness window: a cluster not even
 * attempted within it is `overdue`, and stale.
 */
export function listClusters(store: Store, now: number = Date.now(), staleAfterMs = Infinity): ClusterInfo[] {
  return prepared(store, 'clusters', () => store.db.select().from(clusters).orderBy(asc(clusters.name)).prepare())
    .all()
    .map((c) => {
      const ageMs = c.lastSuccessAt == null ? null : now - c.lastSuccessAt;
      // Not even a failed attempt within the window: nothing is syncing (a failing sync is `stale` already).
      // A success records when its cycle started; one that ran long (a hang that ended) is a sign of life when it ended.
      const lastTry = Math.max(c.lastAttemptAt ?? -Infinity, c.lastSuccessAt ?? -Infinity);
      const overdue = Number.isFinite(lastTry) && now - lastTry > staleAfterMs;
      // Staleness follows the data's age: a cycle that hangs (or a failure the store could not record) leaves no trace here.
      const aged = ageMs != null && ageMs > staleAfterMs;
      return {
        cluster: c.name,
        clusterName: c.clusterName,
        pveVersion: c.pveVersion,
        quorate: c.quorate,
        stale: c.stale || overdue || aged,
        overdue,
        lastSuccessAt: iso(c.lastSuccessAt),
        lastAttemptAt: iso(c.lastAttemptAt),
        ageMs,
        consecutiveFailures: c.consecutiveFailures,
        lastError: c.lastError,
        signalProblems: signalProblems(c.signalProblems),
        identityChanged: identityChanged(c.identityChanged),
      };
    });
}

/** clusters.identity_changed, with each identity in words. */
function identityChanged(text: string | null): ClusterSyncStatus['identityChanged'] {
  const value = parseJson<{ expected?: unknown; seen?: unknown; since?: unknown } | null>(text, null);
  const expected = asIdentity(value?.expected);
  const seen = asIdentity(value?.seen);
  if (!expected || !seen) return null;
  return {
    expected: describeIdentity(expected),
    seen: describeIdentity(seen),
    since: typeof value?.since === 'string' ? value.since : '',
  };
}

/** clusters.signal_problems, read defensively: only string problems of a JSON object count. */
function signalProblems(text: string | null): Record<string, string> {
  const value = parseJson<unknown>(text, null);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return {};
  return Object.fromEntries(
    Object.entries(value).filter((e): e is [string, string] => typeof e[1] === 'string' && e[1] !== ''),
  );
}

export interface ClusterSyncStatus {
  cluster: string;
  /** The corosync cluster name (null for a standalone node). */
  clusterName: string | null;
  pveVersion: string | null;
  quorate: boolean | null;
  /**
   * The rows may be out of date: the last attempt failed (every row shows last-known values), or
   * no sync succeeded within the freshness window (whether or not one was attempted: `overdue`).
   */
  stale: boolean;
  /** No sync attempted within the freshness window, not even a failed one: nothing keeps this copy current (is the daemon running?). */
  overdue: boolean;
  lastSuccessAt: string | null;
  lastAttemptAt: string | null;
  /** now - lastSuccessAt; null before the first success. */
  ageMs: number | null;
  consecutiveFailures: number;
  lastError: string | null;
  /**
   * Change signals this cluster cannot give, by signal, e.g. `log`: the token lacks Sys.Syslog, so
   * /cluster/log hides other users' config edits until the sweep re-reads them. Empty when all work.
   */
  signalProblems: Record<string, string>;
  /**
   * Set while the URL answers as another cluster than the one this inventory holds: nothing is
   * applied until the old one answers again or `proxmox-inventory cluster reset` accepts the new one.
   */
  identityChanged: { expected: string; seen: string; since: string } | null;
  /** The latest sync run, successful or not. */
  lastRun: {
    startedAt: string;
    finishedAt: string;
    ok: boolean;
    durationMs: number;
    callsTotal: number;
    changes: Record<string, number>;
    error: string | null;
  } | null;
  /** The latest successful run: its API calls per endpoint are what a cycle costs. */
  lastSuccessfulRun: {
    finishedAt: string;
    durationMs: number;
    calls: Record<string, number>;
    callsTotal: number;
    changes: Record<string, number>;
    guests: number;
    nodes: number;
    configsFetched: number;
    warnings: number;
  } | null;
}

/** Per cluster: how fresh its copy is, how the last reads went, and what a cycle costs. */
export function syncStatus(
  store: Store,
  now: number = Date.now(),
  staleAfterMs = Infinity,
): { now: string; clusters: ClusterSyncStatus[] } {
  return oneRead(store, () => {
    const latest = (cluster: string, okOnly: boolean): typeof syncRuns.$inferSelect | undefined =>
      prepared(store, `latest-run:${okOnly}`, () =>
        store.db
          .select()
          .from(syncRuns)
          .where(and(eq(syncRuns.cluster, P('cluster')), okOnly ? eq(syncRuns.ok, true) : undefined))
          .orderBy(desc(syncRuns.id))
          .limit(1)
          .prepare(),
      ).get({ cluster });
    return {
      now: iso(now)!,
      clusters: listClusters(store, now, staleAfterMs).map((c): ClusterSyncStatus => {
        const last = latest(c.cluster, false);
        const good = last?.ok ? last : latest(c.cluster, true);
        return {
          ...c,
          lastRun: last
            ? {
                startedAt: iso(last.startedAt)!,
                finishedAt: iso(last.finishedAt)!,
                ok: last.ok,
                durationMs: last.durationMs,
                callsTotal: last.callsTotal,
                changes: parseJson<Record<string, number>>(last.changes, {}),
                error: last.error,
              }
            : null,
          lastSuccessfulRun: good
            ? {
                finishedAt: iso(good.finishedAt)!,
                durationMs: good.durationMs,
                calls: parseJson<Record<string, number>>(good.calls, {}),
                callsTotal: good.callsTotal,
                changes: parseJson<Record<string, number>>(good.changes, {}),
                guests: good.guests,
                nodes: good.nodes,
                configsFetched: good.configsFetched,
                warnings: good.warnings,
              }
            : null,
        };
      }),
    };
  });
}

export interface Freshness {
  /** The oldest last successful read among clusters that have had one: every answer is at least this fresh. */
  asOf: string | null;
  /** now - asOf. */
  ageMs: number | null;
  /** Clusters whose last read failed, that never had a successful one, or whose last one is older than the freshness window. */
  staleClusters: string[];
  /** Some cluster had no sync attempt within the freshness window: is the daemon running? */
  overdue: boolean;
  /** Nodes showing last-known values (offline or unreachable), in clusters that are not stale themselves. */
  staleNodes: Array<{ cluster: string; node: string; lastSeenAt: string | null }>;
}

/** What every MCP answer carries: how old the copy is, and which parts of it are stale. */
export function freshness(store: Store, now: number = Date.now(), staleAfterMs = Infinity): Freshness {
  return oneRead(store, () => {
    const rows = listClusters(store, now, staleAfterMs);
    const ages = rows.flatMap((c) => (c.ageMs == null ? [] : [c.ageMs]));
    const ageMs = ages.length ? Math.max(...ages) : null;
    const staleClusters = rows.filter((c) => c.stale || c.lastSuccessAt == null).map((c) => c.cluster);
    const staleNodes = prepared(store, 'stale-nodes', () =>
      store.db
        .select({ cluster: nodes.cluster, node: nodes.node, lastSeenAt: nodes.lastSeenAt })
        .from(nodes)
        .where(eq(nodes.stale, true))
        .orderBy(asc(nodes.cluster), asc(nodes.node))
        .prepare(),
    )
      .all()
      .filter((n) => !staleClusters.includes(n.cluster))
      .map((n) => ({ cluster: n.cluster, node: n.node, lastSeenAt: iso(n.lastSeenAt) }));
    return {
      asOf: iso(ageMs == null ? null : now - ageMs),
      ageMs,
      staleClusters,
      overdue: rows.some((c) => c.overdue),
      staleNodes,
    };
  });
}
