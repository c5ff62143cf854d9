/** What happened: change events since a time, cursor or snapshot, and the Proxmox tasks the sync has seen. */
import { and, asc, desc, eq, gt, gte, inArray, sql } from 'drizzle-orm';
import type { Store } from '../db.js';
import { events, tasks } from '../schema.js';
import { eventSummary, taskSummary, type EventSummary, type TaskSummary } from './guest.js';
import { clampLimit, oneRead, QUERY_LIMITS, QueryError, toEpochMs, type LimitInfo } from './shared.js';

// ---- events --------------------------------------------------------------------------------------

export interface EventQuery {
  /** Events that occurred at or after this time (epoch ms or ISO-8601). */
  since?: number | string;
  /** Events after this seq (the `nextSeq` of a previous answer). */
  afterSeq?: number;
  types?: string[];
  /** A subject id (`lab/101`, `lab/pve2`, `lab`), or a prefix ending in `/` (`lab/`). */
  subject?: string;
  subjectKind?: 'guest' | 'node' | 'cluster' | 'snapshot' | 'action';
  cluster?: string;
  /** Default 100, at most 1000. */
  limit?: number;
}

export interface EventPage extends LimitInfo {
  /** Oldest first. */
  events: EventSummary[];
  /** Pass as `afterSeq` to continue: every event up to it has been considered. */
  nextSeq: number;
  /** More matching events follow `nextSeq`. */
  hasMore: boolean;
}

/** Events in seq order. `nextSeq` is safe to poll with: events committed later always have a higher seq. */
export function eventsSince(store: Store, q: EventQuery = {}): EventPage {
  const limitInfo = clampLimit(q.limit, QUERY_LIMITS.events.default, QUERY_LIMITS.events.max);
  if (q.afterSeq !== undefined && (!Number.isInteger(q.afterSeq) || q.afterSeq < 0))
    throw new QueryError(`afterSeq must be a non-negative integer, got ${String(q.afterSeq)}`);
  const since = q.since !== undefined ? toEpochMs(q.since, 'since') : undefined;
  const subject =
    q.subject === undefined
      ? undefined
      : q.subject.endsWith('/')
        ? sql`substr(${events.subjectId}, 1, ${q.subject.length}) = ${q.subject}`
        : eq(events.subjectId, q.subject);
  return oneRead(store, () => {
    // Bound the scan by the newest seq first, so nextSeq never passes an event not yet considered.
    const head = latestSeq(store);
    // A cursor past the head would be echoed back as the next poll position forever, every event
    // written meanwhile skipped: it comes from another (or a rebuilt) inventory, so say so.
    if (q.afterSeq !== undefined && q.afterSeq > head)
      throw new QueryError(
        `afterSeq ${q.afterSeq} is beyond the latest event (seq ${head}): the cursor is from another or a rebuilt inventory; continue with afterSeq ${head}, or use since.`,
      );
    const rows = store.db
      .select()
      .from(events)
      .where(
        and(
          sql`${events.seq} <= ${head}`,
          q.afterSeq !== undefined ? gt(events.seq, q.afterSeq) : undefined,
          since !== undefined ? gte(events.occurredAt, since) : undefined,
          q.types?.length ? inArray(events.type, q.types) : undefined,
          q.cluster !== undefined ? eq(events.cluster, q.cluster) : undefined,
          q.subjectKind !== undefined ? eq(events.subjectKind, q.subjectKind) : undefined,
          subject,
        ),
      )
      .orderBy(asc(events.seq))
      .limit(limitInfo.limit + 1)
      .all();
    const page = rows.slice(0, limitInfo.limit);
    const hasMore = rows.length > limitInfo.limit;
    const nextSeq = hasMore ? page.at(-1)!.seq : head;
    return { events: page.map(eventSummary), nextSeq, hasMore, ...limitInfo };
  });
}

/**
 * The highest seq ever given: AUTOINCREMENT's counter, which retention's deletes do not lower, so a
 * cursor a poller received stays valid after the events it points past are pruned.
 */
function latestSeq(store: Store): number {
  const row = store.db.get<{ seq: number | null }>(
    sql`SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0), coalesce((SELECT max(${events.seq}) FROM ${events}), 0)) AS seq`,
  );
  return row?.seq ?? 0;
}

// ---- tasks ---------------------------------------------------------------------------------------

export interface TaskQuery {
  cluster?: string;
  vmid?: number;
  node?: string;
  /** Failed tasks (outcome `error`) first, then newest first. */
  failedFirst?: boolean;
  onlyFailed?: boolean;
  /** Default 50, at most 500. */
  limit?: number;
}

/** Recent Proxmox tasks the sync has seen (a sliding window per cluster), newest first. */
export function listTasks(store: Store, q: TaskQuery = {}): LimitInfo & { items: TaskSummary[] } {
  const limitInfo = clampLimit(q.limit, QUERY_LIMITS.tasks.default, QUERY_LIMITS.tasks.max);
  const rows = store.db
    .select()
    .from(tasks)
    .where(
      and(
        q.cluster !== undefined ? eq(tasks.cluster, q.cluster) : undefined,
        q.vmid !== undefined ? eq(tasks.vmid, q.vmid) : undefined,
        q.node !== undefined ? eq(tasks.node, q.node) : undefined,
        q.onlyFailed ? eq(tasks.outcome, 'error') : undefined,
      ),
    )
    .orderBy(...(q.failedFirst ? [sql`${tasks.outcome} <> 'error'`] : []), desc(tasks.starttime), desc(tasks.upid))
    .limit(limitInfo.limit)
    .all();
  return { items: rows.map(taskSummary), ...limitInfo };
}
