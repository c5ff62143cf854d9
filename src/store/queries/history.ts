/** What happened: change events since a time, cursor or snapshot, and the Proxmox tasks the sync has seen. */
import { and, asc, desc, eq, gt, gte, inArray, lte, sql, type SQL } from 'drizzle-orm';
import type { Store } from '../db.js';
import { prepared } from '../prepared.js';
import { events, guests, nodes, syncRuns, tasks } from '../schema.js';
import { eventSummary, taskSummary, type EventSummary, type TaskSummary } from './guest.js';
import {
  clampLimit,
  iso,
  oneRead,
  P,
  QUERY_LIMITS,
  QueryError,
  toEpochMs,
  type LimitInfo,
  type Runnable,
} from './shared.js';

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
  /**
   * `fold`: leave out the events of a cluster's first sync (`data.initial: true`) and count them
   * in `folded` instead; `cluster.imported`, their summary, stays. Default `include`.
   */
  initial?: 'include' | 'fold';
}

/** A cluster's first-sync events left out of a page: how many of each type, and when. */
export interface FoldedImport {
  cluster: string | null;
  events: number;
  types: Record<string, number>;
  from: string;
  to: string;
}

export interface EventPage extends LimitInfo {
  /** Oldest first. */
  events: EventSummary[];
  /** Pass as `afterSeq` to continue: every event up to it has been considered. */
  nextSeq: number;
  /** More matching events follow `nextSeq`. */
  hasMore: boolean;
  /** With `initial: 'fold'`: the first-sync events up to `nextSeq` that the page leaves out, per cluster. */
  folded?: FoldedImport[];
}

/**
 * An event of a cluster's first sync: the sync marks them `initial: true`; `cluster.imported`
 * sums them up and is never one of them. Found by its text, not by parsing it: the store writes
 * data with JSON.stringify, which writes the flag as `"initial":true` and cannot write that inside
 * a string value (its quotes are escaped), and a parse per row doubled the scan of a 10,000-event
 * import. A row that is not JSON (tampered) is not an error either.
 */
const isInitial = sql`(${events.type} <> 'cluster.imported' AND instr(${events.data}, '"initial":true') > 0)`;

/** The conditions of a query but for the page's bounds. */
function eventFilter(q: EventQuery): Array<SQL | undefined> {
  const since = q.since !== undefined ? toEpochMs(q.since, 'since') : undefined;
  const subject =
    q.subject === undefined
      ? undefined
      : q.subject.endsWith('/')
        ? sql`substr(${events.subjectId}, 1, ${q.subject.length}) = ${q.subject}`
        : eq(events.subjectId, q.subject);
  return [
    q.afterSeq !== undefined ? gt(events.seq, q.afterSeq) : undefined,
    since !== undefined ? gte(events.occurredAt, since) : undefined,
    q.types?.length ? inArray(events.type, q.types) : undefined,
    q.cluster !== undefined ? eq(events.cluster, q.cluster) : undefined,
    q.subjectKind !== undefined ? eq(events.subjectKind, q.subjectKind) : undefined,
    subject,
  ];
}

/** Events in seq order. `nextSeq` is safe to poll with: events committed later always have a higher seq. */
export function eventsSince(store: Store, q: EventQuery = {}): EventPage {
  const limitInfo = clampLimit(q.limit, QUERY_LIMITS.events.default, QUERY_LIMITS.events.max);
  if (q.afterSeq !== undefined && (!Number.isInteger(q.afterSeq) || q.afterSeq < 0))
    throw new QueryError(`afterSeq must be a non-negative integer, got ${String(q.afterSeq)}`);
  const filter = eventFilter(q);
  const fold = q.initial === 'fold';
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
      .where(and(sql`${events.seq} <= ${head}`, ...filter, fold ? sql`NOT ${isInitial}` : undefined))
      .orderBy(asc(events.seq))
      .limit(limitInfo.limit + 1)
      .all();
    const page = rows.slice(0, limitInfo.limit);
    const hasMore = rows.length > limitInfo.limit;
    const nextSeq = hasMore ? page.at(-1)!.seq : head;
    return {
      events: page.map(eventSummary),
      nextSeq,
      hasMore,
      ...(fold ? { folded: foldedImports(store, filter, nextSeq) } : {}),
      ...limitInfo,
    };
  });
}

/** The first-sync events a folded page left out, up to `nextSeq`: so the next page never counts them again. */
function foldedImports(store: Store, filter: Array<SQL | undefined>, nextSeq: number): FoldedImport[] {
  const rows = store.db
    .select({
      cluster: events.cluster,
      type: events.type,
      n: sql<number>`count(*)`,
      from: sql<number>`min(${events.occurredAt})`,
      to: sql<number>`max(${events.occurredAt})`,
    })
    .from(events)
    .where(and(lte(events.seq, nextSeq), ...filter, isInitial))
    .groupBy(events.cluster, events.type)
    .orderBy(events.cluster, events.type)
    .all();
  const byCluster = new Map<string | null, FoldedImport>();
  for (const r of rows) {
    const f = byCluster.get(r.cluster) ?? {
      cluster: r.cluster,
      events: 0,
      types: {},
      from: iso(r.from)!,
      to: iso(r.to)!,
    };
    f.events += r.n;
    f.types[r.type] = r.n;
    if (iso(r.from)! < f.from) f.from = iso(r.from)!;
    if (iso(r.to)! > f.to) f.to = iso(r.to)!;
    byCluster.set(r.cluster, f);
  }
  return [...byCluster.values()];
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

// ---- events: who did it ----------------------------------------------------------------------------

/** The Proxmox task behind a change: who started it and when (Proxmox's clock), beside when the sync saw the change. */
export interface TaskCause {
  upid: string;
  type: string;
  user: string;
  startedAt: string;
  endedAt: string | null;
}

const START = ['qmstart', 'vzstart', 'hastart', 'qmresume', 'vzresume', 'qmreboot', 'vzreboot'];
const STOP = ['qmstop', 'vzstop', 'qmshutdown', 'vzshutdown', 'hastop', 'qmsuspend', 'vzsuspend'];
const PAUSE = ['qmpause', 'qmsuspend', 'vzsuspend'];
/** Tasks that change a guest's config (PUT edits leave none: their trace is an `update VM` line of the cluster log). */
const CONFIG = [
  'qmconfig',
  'vzconfig',
  'qmresize',
  'vzresize',
  'resize',
  'qmmove',
  'move_volume',
  'qmsnapshot',
  'vzsnapshot',
  'qmdelsnapshot',
  'vzdelsnapshot',
  'qmrollback',
  'vzrollback',
  'qmtemplate',
  'vztemplate',
  'qmrestore',
  'vzrestore',
];

/** Which task types can have made an event's change; none for events no task makes. */
function causeKinds(e: EventSummary): { kind: string; types: string[] } | undefined {
  const d = e.data;
  switch (e.type) {
    case 'guest.status_changed':
      if (d.to === 'running') return { kind: 'start', types: START };
      if (d.to === 'stopped') return { kind: 'stop', types: STOP };
      if (d.to === 'paused') return { kind: 'pause', types: PAUSE };
      return { kind: 'power', types: [...new Set([...START, ...STOP, ...PAUSE])] };
    case 'guest.migrated':
      return { kind: 'migrate', types: ['qmigrate', 'vzmigrate', 'hamigrate'] };
    case 'guest.updated': {
      // vzdump locks the guest it backs up: a lock that came or went is the backup's doing.
      const lock = typeof d.changes === 'object' && d.changes !== null && 'lock' in d.changes;
      return lock ? { kind: 'config+backup', types: [...CONFIG, 'vzdump'] } : { kind: 'config', types: CONFIG };
    }
    case 'guest.created':
      return { kind: 'create', types: ['qmcreate', 'vzcreate', 'qmrestore', 'vzrestore'] };
    case 'guest.deleted':
      return { kind: 'delete', types: ['qmdestroy', 'vzdestroy'] };
    default:
      return undefined;
  }
}

/**
 * Proxmox's list lags its tasks (pvestatd updates the status every ~10 s) and a config read can
 * wait a cycle for its budget: a task up to this long before the previous read can be the cause.
 */
const CAUSE_SLACK_MS = 60_000;
/** Without the previous read on record (pruned), a change is matched with tasks this far back. */
const CAUSE_FALLBACK_MS = 15 * 60_000;

/**
 * For each guest event a task can make (a power change, a config edit, a migration, a creation or
 * deletion), the newest task of a matching type on that guest that started after the previous
 * successful read of its cluster (less some slack) and before the read that saw the change.
 * Events of the first sync have no cause: there was no read before. Keyed by seq.
 */
export function eventCauses(store: Store, list: EventSummary[]): Map<number, TaskCause> {
  const out = new Map<number, TaskCause>();
  const previous = new Map<string, number | undefined>();
  for (const e of list) {
    const kinds = causeKinds(e);
    const vmid = typeof e.data.vmid === 'number' ? e.data.vmid : undefined;
    if (!kinds || !e.cluster || vmid === undefined || e.data.initial === true) continue;
    const seenAt = Date.parse(e.occurred_at);
    const key = `${e.cluster}\u0000${seenAt}`;
    if (!previous.has(key)) previous.set(key, previousReadAt(store, e.cluster, seenAt));
    const from = (previous.get(key) ?? seenAt - CAUSE_FALLBACK_MS) - CAUSE_SLACK_MS;
    const task = causeQuery(store, kinds.kind, kinds.types).get({
      cluster: e.cluster,
      vmid,
      from: Math.floor(from / 1000),
      to: Math.ceil(seenAt / 1000),
    });
    if (task)
      out.set(e.seq, {
        upid: task.upid,
        type: task.type,
        user: task.user,
        startedAt: iso(task.starttime * 1000)!,
        endedAt: iso(task.endtime == null ? null : task.endtime * 1000),
      });
  }
  return out;
}

type CauseRow = Pick<typeof tasks.$inferSelect, 'upid' | 'type' | 'user' | 'starttime' | 'endtime'>;

function causeQuery(store: Store, kind: string, types: string[]): Runnable<CauseRow> {
  return prepared(store, `cause:${kind}`, () =>
    store.db
      .select({
        upid: tasks.upid,
        type: tasks.type,
        user: tasks.user,
        starttime: tasks.starttime,
        endtime: tasks.endtime,
      })
      .from(tasks)
      .where(
        and(
          eq(tasks.cluster, P('cluster')),
          eq(tasks.vmid, P('vmid')),
          gte(tasks.starttime, P('from')),
          lte(tasks.starttime, P('to')),
          inArray(tasks.type, types),
        ),
      )
      .orderBy(desc(tasks.starttime), desc(tasks.upid))
      .limit(1)
      .prepare(),
  );
}

/** When the successful read before the one finishing after `seenAt` started; undefined when none is on record. */
function previousReadAt(store: Store, cluster: string, seenAt: number): number | undefined {
  const query: Runnable<{ startedAt: number }> = prepared(store, 'previous-read', () =>
    store.db
      .select({ startedAt: syncRuns.startedAt })
      .from(syncRuns)
      .where(
        and(eq(syncRuns.cluster, P('cluster')), eq(syncRuns.ok, true), sql`${syncRuns.finishedAt} < ${P('seenAt')}`),
      )
      .orderBy(desc(syncRuns.id))
      .limit(1)
      .prepare(),
  );
  return query.get({ cluster, seenAt })?.startedAt;
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

/** A task with the name its guest has now (null for tasks of no guest, or of a guest no longer known). */
export type TaskWithGuest = TaskSummary & { guestName: string | null };

/** Recent Proxmox tasks the sync has seen (a sliding window per cluster), newest first. */
export function listTasks(store: Store, q: TaskQuery = {}): LimitInfo & { items: TaskWithGuest[] } {
  const limitInfo = clampLimit(q.limit, QUERY_LIMITS.tasks.default, QUERY_LIMITS.tasks.max);
  const rows = store.db
    .select({ task: tasks, guestName: guests.name })
    .from(tasks)
    .leftJoin(guests, and(eq(guests.cluster, tasks.cluster), eq(guests.vmid, tasks.vmid)))
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
  return { items: rows.map((r) => ({ ...taskSummary(r.task), guestName: r.guestName ?? null })), ...limitInfo };
}

/** How far back the tasks the inventory holds for one node go. */
export interface TaskWindow {
  cluster: string;
  node: string;
  /** The oldest task kept for the node; null when none is. */
  oldest: string | null;
  tasks: number;
}

/**
 * Per node (of a cluster, or one node): the oldest task the inventory holds and how many. Proxmox
 * lists a limited number of recent tasks per node and the sync keeps the newest few thousand per
 * cluster, so nothing before `oldest` is known: a task not found may have run before it.
 */
export function taskWindows(store: Store, q: { cluster?: string; node?: string } = {}): TaskWindow[] {
  const inCluster = q.cluster !== undefined ? sql`WHERE ${tasks.cluster} = ${q.cluster}` : sql``;
  // One pass over the cluster's tasks, grouped, rather than a lookup per node: tasks has no (cluster, node) index.
  const kept = sql`(SELECT ${tasks.cluster} AS cluster, ${tasks.node} AS node, min(${tasks.starttime}) AS oldest, count(*) AS n
    FROM ${tasks} ${inCluster} GROUP BY ${tasks.cluster}, ${tasks.node})`;
  const rows = store.db.all<{ cluster: string; node: string; oldest: number | null; n: number | null }>(
    sql`SELECT ${nodes.cluster} AS cluster, ${nodes.node} AS node, t.oldest AS oldest, t.n AS n
    FROM ${nodes} LEFT JOIN ${kept} AS t ON t.cluster = ${nodes.cluster} AND t.node = ${nodes.node}
    WHERE ${and(
      q.cluster !== undefined ? eq(nodes.cluster, q.cluster) : sql`1`,
      q.node !== undefined ? eq(nodes.node, q.node) : sql`1`,
    )}
    ORDER BY ${nodes.cluster}, ${nodes.node}`,
  );
  return rows.map((r) => ({
    cluster: r.cluster,
    node: r.node,
    oldest: iso(r.oldest == null ? null : r.oldest * 1000),
    tasks: r.n ?? 0,
  }));
}
