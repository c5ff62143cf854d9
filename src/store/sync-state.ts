/**
 * What the sync reads before a cycle and writes after it. `applyCycle` and `recordSyncFailure`
 * each run in one IMMEDIATE transaction: rows, events and the sync_runs row land together or not
 * at all, so readers see the previous cycle or this one, never half.
 */
import { and, desc, eq, inArray, isNull, lte, notInArray, sql } from 'drizzle-orm';
import { parseIdentity } from './cluster-identity.js';
import type { Store } from './db.js';
import { insertEvents, type NewEvent } from './events.js';
import { createGuestPartsWriter, dropClusterParts, markFacetsStale } from './guest-parts.js';
import { replaceGuestStats, type GuestStatsRow } from './guest-stats.js';
import { prepareUpsert } from './rows.js';
import { clusters, guestMetrics, guestSnapshots, guests, nodes, pools, storage, syncRuns, tasks } from './schema.js';

export type ClusterRow = typeof clusters.$inferSelect;
export type NodeRow = typeof nodes.$inferInsert;
export type GuestRow = typeof guests.$inferInsert;
export type GuestMetricsRow = typeof guestMetrics.$inferInsert;
export type StorageRow = typeof storage.$inferInsert;
export type TaskRow = typeof tasks.$inferInsert;
export type SyncRunRow = Omit<typeof syncRuns.$inferInsert, 'id'>;
/** One snapshot of a guest as stored (guest_snapshots without its keys and read time). */
export type GuestSnapshotRow = Omit<typeof guestSnapshots.$inferInsert, 'cluster' | 'vmid' | 'readAt'>;

export interface ClusterState {
  cluster: ClusterRow | undefined;
  nodes: Map<string, NodeRow>;
  /** Every guest ever seen, tombstoned ones included (a guest that comes back is revived). */
  guests: Map<number, GuestRow>;
  metrics: Map<number, GuestMetricsRow>;
  storage: StorageRow[];
  /** Known tasks: upid → `running` or, once finished, any other word (the outcome when loaded). */
  tasks: Map<string, string>;
  /** Nodes whose status read failed, and when: tried again a period later (in memory only). */
  nodeStatusTriedAt: Map<string, number>;
  /**
   * Statuses an action's read-back saw (GET …/status/current), and when: /cluster/resources lags a
   * power change by up to ~10 s (pvestatd), so for a while a bulk read that still shows the old
   * status is not news (sync/refresh.ts `holdConfirmedStatus`). In memory only.
   */
  confirmedStatus?: Map<number, { status: string; at: number }>;
}

const TASKS_KEPT_PER_CLUSTER = 5_000;

export function loadClusterState(store: Store, cluster: string): ClusterState {
  const { db } = store;
  return {
    cluster: db.select().from(clusters).where(eq(clusters.name, cluster)).get(),
    nodes: new Map(
      db
        .select()
        .from(nodes)
        .where(eq(nodes.cluster, cluster))
        .all()
        .map((n) => [n.node, n]),
    ),
    guests: new Map(
      db
        .select()
        .from(guests)
        .where(eq(guests.cluster, cluster))
        .all()
        .map((g) => [g.vmid, g]),
    ),
    metrics: new Map(
      db
        .select()
        .from(guestMetrics)
        .where(eq(guestMetrics.cluster, cluster))
        .all()
        .map((m) => [m.vmid, m]),
    ),
    storage: db.select().from(storage).where(eq(storage.cluster, cluster)).all(),
    tasks: new Map(
      db
        .select({ upid: tasks.upid, outcome: tasks.outcome })
        .from(tasks)
        .where(eq(tasks.cluster, cluster))
        .all()
        .map((t) => [t.upid, t.outcome]),
    ),
    nodeStatusTriedAt: new Map(),
  };
}

/** The cluster's `last_run_id` in the store now (undefined: no row), to tell whether kept state is current. */
export function currentLastRunId(store: Store, cluster: string): number | null | undefined {
  const row = store.db.select({ lastRunId: clusters.lastRunId }).from(clusters).where(eq(clusters.name, cluster)).get();
  return row ? row.lastRunId : undefined;
}

/** Another process wrote this cluster since the state the cycle worked from was read. */
export class ConcurrentWriteError extends Error {
  constructor(cluster: string) {
    super(
      `another process synced cluster ${cluster} meanwhile; this cycle's changes were not written and the next cycle starts from the store`,
    );
    this.name = 'ConcurrentWriteError';
  }
}

export interface CycleWrite {
  cluster: string;
  at: number;
  /** The cluster's `last_run_id` when the cycle's state was read; the write happens only if it still is. */
  expectedLastRunId: number | null;
  clusterFields: Partial<Omit<ClusterRow, 'name'>>;
  nodes: NodeRow[];
  /** Guests that are new or changed, and absent ones whose missing count or tombstone changed. */
  guests: GuestRow[];
  /** Live metrics that moved since the last read. */
  metrics: GuestMetricsRow[];
  /** Guests tombstoned by this cycle: their live metrics go. */
  dropMetrics: number[];
  /** The cluster's guest_stats after this cycle (store/guest-stats.ts summarizeGuests). */
  guestStats: GuestStatsRow[];
  /** The cluster's complete storage set after this cycle. */
  storage: StorageRow[];
  pools: string[];
  tasks: TaskRow[];
  /** Snapshot lists read this cycle (an empty list: the guest has none now). */
  snapshots?: Array<{ vmid: number; list: GuestSnapshotRow[] }>;
  events: NewEvent[];
  run: SyncRunRow;
}

function ensureCluster(store: Store, name: string): void {
  store.db.insert(clusters).values({ name }).onConflictDoNothing().run();
}

/** Guest rows written at once above which the query planner's statistics are refreshed. */
const OPTIMIZE_AFTER_ROWS = 500;

/**
 * After a write of `rows` guest rows: a first sync or a mass change alters the tables' shape, and
 * without fresh statistics SQLite sorts whole tables for a page of 50 instead of walking the
 * listing index. Runs outside the cycle's transaction, after its commit.
 */
export function refreshStatisticsAfter(store: Store, rows: number): void {
  if (rows >= OPTIMIZE_AFTER_ROWS) store.sqlite.pragma('optimize');
}

/** Writes a successful cycle in one transaction; returns the sync run id. */
export function applyCycle(store: Store, w: CycleWrite): number {
  const { db, sqlite } = store;
  return store.write(() => {
    ensureCluster(store, w.cluster);
    const current = db
      .select({ lastRunId: clusters.lastRunId })
      .from(clusters)
      .where(eq(clusters.name, w.cluster))
      .get();
    if ((current?.lastRunId ?? null) !== w.expectedLastRunId) throw new ConcurrentWriteError(w.cluster);
    const runId = Number(db.insert(syncRuns).values(w.run).run().lastInsertRowid);
    db.update(clusters)
      .set({ ...w.clusterFields, lastRunId: runId })
      .where(eq(clusters.name, w.cluster))
      .run();

    const upsertNode = prepareUpsert(sqlite, nodes, ['cluster', 'node']);
    for (const n of w.nodes) upsertNode.run(n);
    writeGuestRows(store, w.guests, runId);
    const upsertMetrics = prepareUpsert(sqlite, guestMetrics, ['cluster', 'vmid']);
    for (const m of w.metrics) upsertMetrics.run(m);
    if (w.dropMetrics.length)
      db.delete(guestMetrics)
        .where(and(eq(guestMetrics.cluster, w.cluster), inArray(guestMetrics.vmid, w.dropMetrics)))
        .run();
    replaceGuestStats(store, w.cluster, w.guestStats);

    db.delete(storage).where(eq(storage.cluster, w.cluster)).run();
    const upsertStorage = prepareUpsert(sqlite, storage, ['cluster', 'node', 'storage']);
    for (const s of w.storage) upsertStorage.run(s);

    if (w.pools.length)
      db.delete(pools)
        .where(and(eq(pools.cluster, w.cluster), notInArray(pools.pool, w.pools)))
        .run();
    else db.delete(pools).where(eq(pools.cluster, w.cluster)).run();
    for (const pool of w.pools)
      db.insert(pools)
        .values({ cluster: w.cluster, pool, updatedAt: w.at })
        .onConflictDoUpdate({ target: [pools.cluster, pools.pool], set: { updatedAt: w.at } })
        .run();

    for (const s of w.snapshots ?? []) replaceGuestSnapshots(store, w.cluster, s.vmid, s.list, w.at);
    const upsertTask = prepareUpsert(sqlite, tasks, ['cluster', 'upid']);
    for (const t of w.tasks) upsertTask.run(t);
    pruneTasks(store, w.cluster);

    insertEvents(store, w.events, w.at);
    return runId;
  });
}

/** Guest rows with their tags and read-model parts (store/guest-parts.ts); inside a write. */
function writeGuestRows(store: Store, rows: GuestRow[], runId: number | null): void {
  const { sqlite } = store;
  const upsertGuest = prepareUpsert(sqlite, guests, ['cluster', 'vmid']);
  const dropTags = sqlite.prepare('DELETE FROM guest_tags WHERE cluster = ? AND vmid = ?');
  const insertTag = sqlite.prepare(
    'INSERT OR IGNORE INTO guest_tags (tag_key, cluster, vmid, tag) VALUES (?, ?, ?, ?)',
  );
  const parts = createGuestPartsWriter(sqlite);
  for (const g of rows) {
    g.syncRun = runId;
    const stored = parts.stored(g.cluster, g.vmid);
    upsertGuest.run(g);
    dropTags.run(g.cluster, g.vmid);
    for (const tag of tagList(g.tags)) insertTag.run(tag.toLowerCase(), g.cluster, g.vmid, tag);
    parts.write(stored, g);
  }
  parts.finish();
}

export interface GuestRefreshWrite {
  cluster: string;
  at: number;
  /** As for a cycle: the write happens only while the cluster's last run is still this one. */
  expectedLastRunId: number | null;
  guest: GuestRow;
  metrics: GuestMetricsRow | undefined;
  guestStats: GuestStatsRow[];
  /** The guest's snapshot list, when it was read. */
  snapshots?: GuestSnapshotRow[];
  events: NewEvent[];
}

/**
 * One guest read back after an action (sync/refresh.ts), written as a cycle writes a guest, with
 * its events, in one transaction; the cluster's run stays as it is.
 */
export function applyGuestRefresh(store: Store, w: GuestRefreshWrite): void {
  store.write(() => {
    const current = store.db
      .select({ lastRunId: clusters.lastRunId })
      .from(clusters)
      .where(eq(clusters.name, w.cluster))
      .get();
    if ((current?.lastRunId ?? null) !== w.expectedLastRunId) throw new ConcurrentWriteError(w.cluster);
    writeGuestRows(store, [w.guest], w.expectedLastRunId);
    if (w.metrics) prepareUpsert(store.sqlite, guestMetrics, ['cluster', 'vmid']).run(w.metrics);
    replaceGuestStats(store, w.cluster, w.guestStats);
    if (w.snapshots) replaceGuestSnapshots(store, w.cluster, w.guest.vmid, w.snapshots, w.at);
    insertEvents(store, w.events, w.at);
  });
}

/** A guest's snapshot list as last read; inside a write. */
export function replaceGuestSnapshots(
  store: Store,
  cluster: string,
  vmid: number,
  list: NonNullable<GuestRefreshWrite['snapshots']>,
  at: number,
): void {
  store.db
    .delete(guestSnapshots)
    .where(and(eq(guestSnapshots.cluster, cluster), eq(guestSnapshots.vmid, vmid)))
    .run();
  for (const snap of list)
    store.db
      .insert(guestSnapshots)
      .values({ ...snap, cluster, vmid, readAt: at })
      .run();
}

/** A guest row's tags (JSON text), for guest_tags; text that is not a JSON list has none. */
function tagList(json: string | undefined): string[] {
  let value: unknown;
  try {
    value = JSON.parse(json ?? '[]');
  } catch {
    return [];
  }
  return Array.isArray(value) ? value.filter((t): t is string => typeof t === 'string') : [];
}

/** Keeps at most the newest TASKS_KEPT_PER_CLUSTER tasks (ties at the cut go too). */
function pruneTasks(store: Store, cluster: string): void {
  const cutoff = store.db
    .select({ starttime: tasks.starttime })
    .from(tasks)
    .where(eq(tasks.cluster, cluster))
    .orderBy(desc(tasks.starttime))
    .limit(1)
    .offset(TASKS_KEPT_PER_CLUSTER)
    .get();
  if (cutoff)
    store.db
      .delete(tasks)
      .where(and(eq(tasks.cluster, cluster), lte(tasks.starttime, cutoff.starttime)))
      .run();
}

export interface FailureWrite {
  cluster: string;
  at: number;
  error: string;
  events: NewEvent[];
  run: SyncRunRow;
  /** Set when the failure is a read from another cluster (JSON { expected, seen, since }). */
  identityChanged?: string;
}

/**
 * A failed read: every row of the cluster keeps its values and is marked stale; rows that were
 * live at the last successful read keep its time as `last_seen_at`.
 */
export function recordSyncFailure(store: Store, w: FailureWrite): number {
  const { db } = store;
  return store.write(() => {
    ensureCluster(store, w.cluster);
    const runId = Number(db.insert(syncRuns).values(w.run).run().lastInsertRowid);
    const lastSuccess = db
      .select({ at: clusters.lastSuccessAt })
      .from(clusters)
      .where(eq(clusters.name, w.cluster))
      .get()?.at;
    db.update(clusters)
      .set({
        stale: true,
        lastAttemptAt: w.at,
        lastError: w.error,
        consecutiveFailures: sql`${clusters.consecutiveFailures} + 1`,
        lastRunId: runId,
        ...(w.identityChanged ? { identityChanged: w.identityChanged } : {}),
      })
      .where(eq(clusters.name, w.cluster))
      .run();
    db.update(nodes).set({ stale: true }).where(eq(nodes.cluster, w.cluster)).run();
    const current = and(eq(guests.cluster, w.cluster), isNull(guests.deletedAt));
    // A guest already missing from the last reads was last seen before them: it keeps its own time.
    if (lastSuccess != null)
      db.update(guests)
        .set({ lastSeenAt: lastSuccess })
        .where(and(current, eq(guests.stale, false), eq(guests.missingCount, 0)))
        .run();
    db.update(guests).set({ stale: true }).where(current).run();
    markFacetsStale(store.sqlite, w.cluster);
    db.update(storage).set({ stale: true }).where(eq(storage.cluster, w.cluster)).run();
    insertEvents(store, w.events, w.at);
    return runId;
  });
}

export interface ResetResult {
  guestsTombstoned: number;
  nodesRemoved: number;
}

/**
 * Accepts that the cluster behind a configured name was replaced: the old inventory's guests are
 * tombstoned (their history stays), its nodes, storage, pools and tasks go, and the cluster row
 * starts over, so the next cycle is a first sync. One `cluster.reset` event says it; undefined
 * when the store has no such cluster. A running daemon's next write finds `last_run_id` changed
 * and reloads (ConcurrentWriteError) instead of applying its old state.
 */
export function resetCluster(store: Store, cluster: string, at: number): ResetResult | undefined {
  const { db } = store;
  return store.write(() => {
    const row = db.select().from(clusters).where(eq(clusters.name, cluster)).get();
    if (!row) return undefined;
    const guestsTombstoned = db
      .update(guests)
      .set({ deletedAt: at, stale: true, updatedAt: at })
      .where(and(eq(guests.cluster, cluster), isNull(guests.deletedAt)))
      .run().changes;
    dropClusterParts(store.sqlite, cluster);
    const nodesRemoved = db.delete(nodes).where(eq(nodes.cluster, cluster)).run().changes;
    db.delete(guestMetrics).where(eq(guestMetrics.cluster, cluster)).run();
    replaceGuestStats(store, cluster, []);
    db.delete(storage).where(eq(storage.cluster, cluster)).run();
    db.delete(pools).where(eq(pools.cluster, cluster)).run();
    db.delete(tasks).where(eq(tasks.cluster, cluster)).run();
    db.update(clusters)
      .set({
        clusterName: null,
        pveVersion: null,
        quorate: null,
        stale: false,
        lastSuccessAt: null,
        lastError: null,
        consecutiveFailures: 0,
        logCursors: null,
        lastSweepAt: null,
        lastRunId: null,
        signalProblems: null,
        identity: null,
        identityChanged: null,
      })
      .where(eq(clusters.name, cluster))
      .run();
    insertEvents(
      store,
      [
        {
          type: 'cluster.reset',
          cluster,
          subject: { kind: 'cluster', id: cluster },
          data: { guestsTombstoned, nodesRemoved, previousIdentity: parseIdentity(row.identity) ?? null },
        },
      ],
      at,
    );
    return { guestsTombstoned, nodesRemoved };
  });
}
