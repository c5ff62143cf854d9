/** One guest by vmid or name: its detail, or the candidates of an ambiguous name, or suggestions for a miss. */
import { and, asc, desc, eq, gt, gte, isNotNull, isNull, notInArray, or, sql } from 'drizzle-orm';
import { toInventoryEvent, type InventoryEvent } from '../events.js';
import type { GuestDisk, GuestNic } from '../guest-parts.js';
import type { Store } from '../db.js';
import { prepared } from '../prepared.js';
import { events, guestMetrics, guests, tasks } from '../schema.js';
import { summaryColumns, toSummary, type GuestSummary } from './guests.js';
import { iso, metricsJoin, oneRead, P, parseJson } from './shared.js';

export type GuestRef =
  | { cluster?: string; vmid: number; includeDeleted?: boolean }
  | { cluster?: string; name: string; includeDeleted?: boolean };

/** A guest named in an ambiguity, a suggestion or a tombstone list. */
export interface GuestCandidate {
  cluster: string;
  vmid: number;
  name: string | null;
  node: string;
  type: 'qemu' | 'lxc';
  status: string;
  deletedAt: string | null;
}

export interface GuestSuggestion extends GuestCandidate {
  /** Why it is suggested. */
  reason: 'other_cluster' | 'similar_name' | 'nearby_vmid';
}

export interface GuestMetrics {
  cpu: number | null;
  mem: number | null;
  disk: number | null;
  uptime: number | null;
  netin: number | null;
  netout: number | null;
  diskread: number | null;
  diskwrite: number | null;
  updatedAt: string | null;
}

export interface TaskSummary {
  cluster: string;
  upid: string;
  node: string;
  type: string;
  objectId: string;
  vmid: number | null;
  user: string;
  startedAt: string;
  endedAt: string | null;
  durationMs: number | null;
  /** `OK`, `WARNINGS: n` or the error text; null while running. */
  exitstatus: string | null;
  outcome: 'running' | 'ok' | 'warning' | 'error';
}

/** Events are answered in the one envelope webhooks use too (store/events.ts). */
export type EventSummary = InventoryEvent;

export interface GuestDetail extends GuestSummary {
  vcpus: number | null;
  balloonMib: number | null;
  onboot: boolean | null;
  agent: boolean | null;
  description: string | null;
  disks: GuestDisk[];
  nics: GuestNic[];
  /** Every config key as Proxmox returned it (null until the first config read). */
  config: Record<string, string> | null;
  digest: string | null;
  configFetchedAt: string | null;
  /** A config re-read is pending (a change signal arrived that has not been read yet). */
  configDirty: boolean;
  /** Consecutive complete reads the guest was missing from (it is tombstoned at the threshold). */
  missingCount: number;
  /** 1 for the first guest with this vmid, 2 for the next one created after it was destroyed, … */
  incarnation: number;
  /** When this guest took over the vmid (null for the first); its tasks and changes are the ones since. */
  incarnationSince: string | null;
  firstSeenAt: string;
  updatedAt: string;
  metrics: GuestMetrics | null;
  /** The last 10 tasks on this vmid, newest first. */
  recentTasks: TaskSummary[];
  /** The last 10 events about this guest, newest first. */
  recentEvents: EventSummary[];
}

export type GuestLookup =
  | { kind: 'found'; guest: GuestDetail }
  | { kind: 'ambiguous'; candidates: GuestCandidate[] }
  | { kind: 'not_found'; suggestions: GuestSuggestion[]; deleted: GuestCandidate[] };

export const candidateColumns = {
  cluster: guests.cluster,
  vmid: guests.vmid,
  name: guests.name,
  node: guests.node,
  type: guests.type,
  status: guests.status,
  deletedAt: guests.deletedAt,
};

export type CandidateRow = {
  cluster: string;
  vmid: number;
  name: string | null;
  node: string;
  type: 'qemu' | 'lxc';
  status: string;
  deletedAt: number | null;
};
const toCandidate = (r: CandidateRow): GuestCandidate => ({ ...r, deletedAt: iso(r.deletedAt) });

function levenshtein(a: string, b: string): number {
  let prev = new Uint16Array(b.length + 1).map((_, i) => i);
  let cur = new Uint16Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length]!;
}

/** 0..1: edit-distance similarity, raised for one name containing the other. */
export function nameSimilarity(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  if (!x || !y) return 0;
  const longer = Math.max(x.length, y.length);
  const shorter = Math.min(x.length, y.length);
  const contained = x.includes(y) || y.includes(x) ? 0.5 + (0.5 * shorter) / longer : 0;
  // The edit distance is at least the length difference: skip it when it cannot beat `contained`.
  if (1 - (longer - shorter) / longer <= contained) return contained;
  return Math.max(1 - levenshtein(x, y) / longer, contained);
}

export const SUGGESTIONS = 5;

function suggestGuests(store: Store, ref: GuestRef): GuestSuggestion[] {
  const { db } = store;
  const live = isNull(guests.deletedAt);
  const inCluster = ref.cluster !== undefined ? eq(guests.cluster, ref.cluster) : undefined;
  const out: GuestSuggestion[] = [];
  const seen = new Set<string>();
  const add = (rows: CandidateRow[], reason: GuestSuggestion['reason']): void => {
    for (const r of rows) {
      const key = `${r.cluster}/${r.vmid}`;
      if (seen.has(key) || out.length >= SUGGESTIONS) continue;
      seen.add(key);
      out.push({ ...toCandidate(r), reason });
    }
  };
  const exact = 'vmid' in ref ? eq(guests.vmid, ref.vmid) : sql`${guests.name} = ${ref.name} COLLATE NOCASE`;
  // The guest exists, just not in the cluster asked for.
  if (ref.cluster !== undefined)
    add(
      db.select(candidateColumns).from(guests).where(and(live, exact)).orderBy(asc(guests.cluster)).all(),
      'other_cluster',
    );
  if ('vmid' in ref) {
    const near = db
      .select(candidateColumns)
      .from(guests)
      .where(and(live, inCluster))
      .orderBy(sql`abs(${guests.vmid} - ${ref.vmid})`, asc(guests.vmid), asc(guests.cluster))
      .limit(SUGGESTIONS)
      .all();
    add(near, 'nearby_vmid');
  } else {
    const all = db
      .select(candidateColumns)
      .from(guests)
      .where(and(live, inCluster, isNotNull(guests.name)))
      .all();
    const scored = all.map((r) => ({ r, score: nameSimilarity(ref.name, r.name ?? '') })).filter((s) => s.score >= 0.5);
    scored.sort((p, q) => q.score - p.score || p.r.cluster.localeCompare(q.r.cluster) || p.r.vmid - q.r.vmid);
    add(
      scored.map((s) => s.r),
      'similar_name',
    );
  }
  return out;
}

export function taskSummary(t: typeof tasks.$inferSelect): TaskSummary {
  return {
    cluster: t.cluster,
    upid: t.upid,
    node: t.node,
    type: t.type,
    objectId: t.objectId,
    vmid: t.vmid,
    user: t.user,
    startedAt: iso(t.starttime * 1000)!,
    endedAt: iso(t.endtime == null ? null : t.endtime * 1000),
    durationMs: t.endtime == null ? null : (t.endtime - t.starttime) * 1000,
    exitstatus: t.exitstatus,
    outcome: t.outcome,
  };
}

export const eventSummary = toInventoryEvent;

const RECENT = 10;

function guestDetail(store: Store, cluster: string, vmid: number): GuestDetail | undefined {
  const { db } = store;
  const row = prepared(store, 'guest-detail', () =>
    db
      .select({
        ...summaryColumns,
        vcpus: guests.vcpus,
        balloonMib: guests.balloonMib,
        onboot: guests.onboot,
        agent: guests.agent,
        description: guests.description,
        disks: guests.disks,
        nics: guests.nics,
        config: guests.config,
        digest: guests.digest,
        configFetchedAt: guests.configFetchedAt,
        configDirty: guests.configDirty,
        missingCount: guests.missingCount,
        firstSeenAt: guests.firstSeenAt,
        updatedAt: guests.updatedAt,
        incarnation: guests.incarnation,
        incarnationSince: guests.incarnationSince,
        mDisk: guestMetrics.disk,
        netin: guestMetrics.netin,
        netout: guestMetrics.netout,
        diskread: guestMetrics.diskread,
        diskwrite: guestMetrics.diskwrite,
        metricsAt: guestMetrics.updatedAt,
      })
      .from(guests)
      .leftJoin(guestMetrics, metricsJoin)
      .where(and(eq(guests.cluster, P('cluster')), eq(guests.vmid, P('vmid'))))
      .prepare(),
  ).get({ cluster, vmid });
  if (!row) return undefined;
  // Only this guest's history: an earlier guest with the same vmid (incarnation) had its own.
  const recentTasks = prepared(store, 'guest-tasks', () =>
    db
      .select()
      .from(tasks)
      // Task times are whole seconds: the previous guest's destroy task can share the second this one began.
      .where(
        and(
          eq(tasks.cluster, P('cluster')),
          eq(tasks.vmid, P('vmid')),
          gte(tasks.starttime, P('since')),
          or(notInArray(tasks.type, ['qmdestroy', 'vzdestroy']), gt(tasks.starttime, P('since'))),
        ),
      )
      .orderBy(desc(tasks.starttime), desc(tasks.upid))
      .limit(RECENT)
      .prepare(),
  ).all({ cluster, vmid, since: Math.floor((row.incarnationSince ?? 0) / 1000) });
  const recentEvents = prepared(store, 'guest-events', () =>
    db
      .select()
      .from(events)
      .where(
        and(
          eq(events.subjectKind, 'guest'),
          eq(events.subjectId, P('subject')),
          sql`coalesce(json_extract(${events.data}, '$.incarnation'), 1) = ${P('incarnation')}`,
        ),
      )
      .orderBy(desc(events.seq))
      .limit(RECENT)
      .prepare(),
  ).all({ subject: `${cluster}/${vmid}`, incarnation: row.incarnation });
  const config = parseJson<unknown>(row.config, null);
  return {
    ...toSummary(row),
    vcpus: row.vcpus,
    balloonMib: row.balloonMib,
    onboot: row.onboot,
    agent: row.agent,
    description: row.description,
    disks: parseJson<GuestDisk[]>(row.disks, []),
    nics: parseJson<GuestNic[]>(row.nics, []),
    config: typeof config === 'object' && config !== null ? (config as Record<string, string>) : null,
    digest: row.digest,
    configFetchedAt: iso(row.configFetchedAt),
    configDirty: row.configDirty,
    missingCount: row.missingCount,
    firstSeenAt: iso(row.firstSeenAt)!,
    updatedAt: iso(row.updatedAt)!,
    incarnation: row.incarnation,
    incarnationSince: iso(row.incarnationSince),
    metrics:
      row.metricsAt == null
        ? null
        : {
            cpu: row.cpu,
            mem: row.mem,
            disk: row.mDisk,
            uptime: row.uptime,
            netin: row.netin,
            netout: row.netout,
            diskread: row.diskread,
            diskwrite: row.diskwrite,
            updatedAt: iso(row.metricsAt),
          },
    recentTasks: recentTasks.map(taskSummary),
    recentEvents: recentEvents.map(eventSummary),
  };
}

/**
 * One guest by vmid or name (names compare case-insensitively; an exact-case match wins over
 * others that differ only in case). A vmid or name found in several clusters, or a name several
 * guests share, is ambiguous. A miss comes with suggestions (the same guest in another cluster,
 * similar names or nearby vmids) and any tombstoned guest that matched.
 */
export function getGuest(store: Store, ref: GuestRef): GuestLookup {
  return oneRead(store, () => {
    const { db } = store;
    const byVmid = 'vmid' in ref;
    const inCluster = ref.cluster !== undefined;
    const scope = and(
      byVmid ? eq(guests.vmid, P('ref')) : sql`${guests.name} = ${P('ref')} COLLATE NOCASE`,
      inCluster ? eq(guests.cluster, P('cluster')) : undefined,
    );
    const values = { ref: 'vmid' in ref ? ref.vmid : ref.name, ...(inCluster ? { cluster: ref.cluster } : {}) };
    const candidates = (which: 'live' | 'deleted' | 'any'): GuestCandidate[] =>
      prepared(store, `guest-find:${byVmid}:${inCluster}:${which}`, () =>
        db
          .select(candidateColumns)
          .from(guests)
          .where(
            and(
              scope,
              which === 'live'
                ? isNull(guests.deletedAt)
                : which === 'deleted'
                  ? isNotNull(guests.deletedAt)
                  : undefined,
            ),
          )
          .orderBy(asc(guests.cluster), asc(guests.vmid))
          .prepare(),
      )
        .all(values)
        .map(toCandidate);
    let found = candidates(ref.includeDeleted ? 'any' : 'live');
    if (found.length > 1 && 'name' in ref) {
      const exactCase = found.filter((r) => r.name === ref.name);
      if (exactCase.length === 1) found = exactCase;
    }
    if (found.length > 1) return { kind: 'ambiguous', candidates: found };
    const only = found[0];
    if (only) return { kind: 'found', guest: guestDetail(store, only.cluster, only.vmid)! };
    return {
      kind: 'not_found',
      suggestions: suggestGuests(store, ref),
      deleted: ref.includeDeleted ? [] : candidates('deleted'),
    };
  });
}
