/**
 * History retention: `sync_runs` and `events` only ever grow (a cluster synced every 15 s adds
 * 5,760 sync runs a day), so old rows are deleted by age.
 *
 * - sync_runs older than `syncRunsDays` go, except each cluster's latest run and latest successful
 *   run, whatever their age: `sync_status` reports both (a cluster failing for weeks still shows
 *   what its last good cycle cost), and the latest run is the one `clusters.last_run_id` names.
 * - events older than `eventsDays` go: the change history and the webhook outbox are one table.
 *   `keepEventsFromSeq` keeps every event from that seq on, whatever its age: the webhook relay
 *   passes the seq of its oldest undelivered event, so retention never drops an event before it
 *   was delivered. A bound read a while before the call is safe (delivery only moves it forward,
 *   and newer events have higher seqs).
 *
 * Deleting never moves a cursor back: both tables are AUTOINCREMENT, so a seq or run id is never
 * handed out again, even after the newest rows were deleted.
 *
 * The work is done in batches of `batchSize` rows, each its own `BEGIN IMMEDIATE` transaction
 * (store.write), and the function yields to the event loop between them, so the sync cycle's
 * write (in this process or in `sync --once` beside it) and MCP requests wait for one batch at
 * most, never for the whole backlog. That is also why it is async, unlike the rest of the store.
 *
 * Deleted rows leave free pages that new rows reuse; the file does not shrink. Only a database
 * created with `auto_vacuum = INCREMENTAL` gives them back to the file system (`PRAGMA
 * incremental_vacuum`, run here in bounded steps); ours are created without it (it can only be
 * chosen before the first table exists, or by a full VACUUM), so there is nothing to do.
 */
import type { Store } from './db.js';

export interface RetentionPolicy {
  /** sync_runs older than this many days are deleted (each cluster's latest and latest successful run stay); 0 keeps them forever. */
  syncRunsDays: number;
  /** events older than this many days are deleted; 0 keeps them forever. */
  eventsDays: number;
  /** Events with this seq or a higher one are kept whatever their age (the webhook relay's oldest undelivered event). */
  keepEventsFromSeq?: number | null;
  /** Rows deleted per transaction (5,000). */
  batchSize?: number;
}

export interface PruneResult {
  syncRuns: number;
  events: number;
  /** Delete transactions run. */
  batches: number;
  /** Free pages given back to the file system (auto_vacuum = INCREMENTAL only; otherwise 0). */
  pagesFreed: number;
}

const DAY_MS = 86_400_000;
const VACUUM_PAGES_PER_STEP = 2_048;
const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Deletes the history the policy no longer keeps; `signal` stops it between batches. */
export async function pruneHistory(
  store: Store,
  policy: RetentionPolicy,
  now: number = Date.now(),
  { signal }: { signal?: AbortSignal } = {},
): Promise<PruneResult> {
  const batchSize = policy.batchSize ?? 5_000;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError(`batchSize must be a positive whole number, got ${batchSize}`);
  const result: PruneResult = { syncRuns: 0, events: 0, batches: 0, pagesFreed: 0 };
  const { sqlite } = store;

  if (policy.syncRunsDays > 0) {
    const cutoff = now - policy.syncRunsDays * DAY_MS;
    // No index on finished_at: the old runs are found by reading on in id order (a read, so outside
    // the write lock: in WAL mode it blocks no writer), a batch at a time, and each batch is deleted
    // in its own transaction, where the latest and latest successful runs are looked up again.
    const findOld = sqlite
      .prepare('SELECT id FROM sync_runs WHERE id > ? AND finished_at < ? ORDER BY id LIMIT ?')
      .pluck();
    const deleteRuns = sqlite.prepare(`
      DELETE FROM sync_runs WHERE id IN (
        SELECT r.id FROM sync_runs r
        WHERE r.id IN (SELECT value FROM json_each(:ids))
          AND r.id <> (SELECT max(id) FROM sync_runs WHERE cluster = r.cluster)
          AND r.id IS NOT (SELECT max(id) FROM sync_runs WHERE cluster = r.cluster AND ok = 1))`);
    let after = 0;
    while (!signal?.aborted) {
      const ids = findOld.all(after, cutoff, batchSize) as number[];
      if (ids.length === 0) break;
      result.syncRuns += store.write(() => deleteRuns.run({ ids: JSON.stringify(ids) }).changes);
      result.batches++;
      if (ids.length < batchSize) break;
      after = ids.at(-1)!;
      await yieldToEventLoop();
    }
  }

  if (policy.eventsDays > 0 && !signal?.aborted) {
    const cutoff = now - policy.eventsDays * DAY_MS;
    const keepFrom = policy.keepEventsFromSeq ?? Number.MAX_SAFE_INTEGER;
    // events_time (occurred_at) finds the old events without reading the recent ones.
    const deleteEvents = sqlite.prepare(`
      DELETE FROM events WHERE seq IN (
        SELECT seq FROM events WHERE occurred_at < :cutoff AND seq < :keepFrom LIMIT :batch)`);
    while (!signal?.aborted) {
      const deleted = store.write(() => deleteEvents.run({ cutoff, keepFrom, batch: batchSize }).changes);
      result.batches++;
      result.events += deleted;
      if (deleted < batchSize) break;
      await yieldToEventLoop();
    }
  }

  if (result.syncRuns + result.events > 0 && sqlite.pragma('auto_vacuum', { simple: true }) === 2) {
    // INCREMENTAL: hand the freed pages back in steps, each a short write of its own.
    while (!signal?.aborted) {
      const free = sqlite.pragma('freelist_count', { simple: true }) as number;
      if (free === 0) break;
      store.write(() => sqlite.pragma(`incremental_vacuum(${VACUUM_PAGES_PER_STEP})`));
      result.pagesFreed += free - (sqlite.pragma('freelist_count', { simple: true }) as number);
      await yieldToEventLoop();
    }
  }
  return result;
}
