import { EVENT_TYPES } from '../../store/events.js';
import { z } from 'zod';
import {
  eventCauses,
  eventsSince,
  QUERY_LIMITS,
  type EventSummary,
  type FoldedImport,
  type TaskCause,
} from '../../store/queries.js';
import { listSnapshots } from '../../store/snapshots.js';
import { quoted, shortTime, sizeChange, untrusted } from '../render.js';
import { count, flag, text } from '../schemas.js';
import { readPastTime, TIME_FORMS } from '../time.js';
import { defineTool, READ_ONLY, ToolMiss } from '../tool.js';
import { checkCluster, Rows } from './shared.js';

/** Event types from names and prefixes (`guest.`, `guest.*`); an unknown one is a miss naming them all. */
export function expandTypes(types: string[] | undefined): string[] | undefined {
  if (!types?.length) return undefined;
  const out = new Set<string>();
  for (const t of types) {
    const prefix = t.replace(/\*$/, '');
    const hits = EVENT_TYPES.filter((k) => (prefix.endsWith('.') ? k.startsWith(prefix) : k === prefix));
    if (!hits.length)
      throw new ToolMiss(
        `Unknown event type ${quoted(t)}.`,
        `Types: ${EVENT_TYPES.join(', ')}; or a prefix such as "guest.".`,
      );
    for (const h of hits) out.add(h);
  }
  return [...out];
}

/** A value of an event's data (JSON from the store: Proxmox's values, or anything a tampered row holds) as one cell. */
const cell = (value: unknown, max: number): string =>
  untrusted(
    value == null
      ? '-'
      : typeof value === 'string'
        ? value
        : Array.isArray(value) && value.every((v) => typeof v === 'string')
          ? value.join(',')
          : JSON.stringify(value),
    max,
  );

const arrow = (from: unknown, to: unknown): string => `${cell(from, 30)}→${cell(to, 30)}`;

/** Sizes of a guest.updated change, written as sizes. */
/** Fields whose change the config keys spell out (scsi0, net0…): named, not repeated. */
const BY_CONFIG_KEYS = new Set(['disks', 'nics', 'digest']);
/** Config keys a tracked field already shows from→to. */
const SHOWN_AS_FIELD: Record<string, string> = {
  name: 'name',
  hostname: 'name',
  cores: 'cores',
  sockets: 'sockets',
  vcpus: 'vcpus',
  memory: 'memoryMib',
  balloon: 'balloonMib',
  ostype: 'ostype',
  onboot: 'onboot',
  agent: 'agent',
  protection: 'protection',
  description: 'description',
  tags: 'tags',
  lock: 'lock',
  template: 'template',
};
/** Parts of a guest.updated line before the rest is counted. */
const PARTS_SHOWN = 8;

type Change = { from?: unknown; to?: unknown };
const asChange = (v: unknown): Change => (typeof v === 'object' && v !== null ? (v as Change) : {});

/** One tracked field, old → new (sizes human-readable). */
function fieldChange(field: string, c: Change): string {
  return sizeChange(field, c.from, c.to) ?? `${untrusted(field, 30)} ${arrow(c.from, c.to)}`;
}

/**
 * One config key, old → new. A Proxmox property string (`virtio=…,bridge=vmbr0,tag=5`) shows only
 * the parts that changed, so a long value does not hide its difference past the cut.
 */
function configChange(key: string, c: Change): string {
  const from = typeof c.from === 'string' ? c.from.split(',') : undefined;
  const to = typeof c.to === 'string' ? c.to.split(',') : undefined;
  if (from && to && from.length > 1 && to.length > 1) {
    const removed = from.filter((p) => !to.includes(p));
    const added = to.filter((p) => !from.includes(p));
    const partial = removed.length < from.length || added.length < to.length;
    if (partial)
      return `${untrusted(key, 30)} …${cell(removed.join(',') || null, 30)}→…${cell(added.join(',') || null, 30)}`;
  }
  return `${untrusted(key, 30)} ${arrow(c.from, c.to)}`;
}

/** What a guest.updated event changed: each field and config key, old → new. */
function updateSummary(d: Record<string, unknown>): string {
  const changes = asChange(d.changes) as Record<string, unknown>;
  const config = asChange(changes.config) as Record<string, unknown>;
  const configKeys = Object.keys(config);
  const fields = Object.keys(changes).filter(
    (k) => k !== 'config' && !(BY_CONFIG_KEYS.has(k) && (configKeys.length || k === 'digest')),
  );
  const shown = new Set(fields);
  const parts = [
    ...fields.map((f) => (BY_CONFIG_KEYS.has(f) ? untrusted(f, 30) : fieldChange(f, asChange(changes[f])))),
    ...configKeys
      .filter((k) => !shown.has(SHOWN_AS_FIELD[k] ?? ''))
      .map((k) => `config ${configChange(k, asChange(config[k]))}`),
  ];
  if (!parts.length) return 'config digest';
  const more = parts.length > PARTS_SHOWN ? `; +${parts.length - PARTS_SHOWN} more` : '';
  return parts.slice(0, PARTS_SHOWN).join('; ') + more;
}

/** `guests 300, nodes 4`: the counts a summary event carries (how many events it sums up is said by the fold). */
const counts = (d: Record<string, unknown>): string =>
  Object.entries(d)
    .filter(([k, v]) => typeof v === 'number' && k !== 'initialEvents')
    .map(([k, v]) => `${untrusted(k, 30)} ${String(v)}`)
    .join(', ');

/** A few words on what an event says: changed fields, from→to, the error. */
export function summary(e: EventSummary): string {
  const d = e.data;
  switch (e.type) {
    case 'guest.created':
      return `${cell(d.name, 40)} ${cell(d.type, 10)} on ${cell(d.node, 63)}, ${cell(d.status, 20)}${d.revived ? ', revived' : ''}`;
    case 'guest.deleted':
      return `${cell(d.name, 40)} was on ${cell(d.node, 63)}`;
    case 'guest.status_changed':
    case 'guest.migrated':
    case 'node.status_changed':
    case 'cluster.quorum_changed':
      return arrow(d.from, d.to);
    case 'guest.updated':
      return updateSummary(d);
    case 'cluster.sync_failed':
      return cell(d.error, 120);
    case 'cluster.sync_recovered':
      return `after ${cell(d.failures, 10)} failures`;
    case 'cluster.imported':
      return `first sync: ${counts(d) || 'imported'}`;
    case 'snapshot.created':
      return `id ${cell(d.id, 20)}${d.label ? ` ${untrusted(String(d.label), 40)}` : ''}`;
    default:
      return '';
  }
}

/** Who did it and when, by Proxmox's task: beside the time the line starts with (when the sync saw it). */
const causeText = (c: TaskCause | undefined): string =>
  c ? `; by ${untrusted(c.user, 64)} (${untrusted(c.type, 30)} started ${shortTime(c.startedAt)})` : '';

/** `304 events folded (guest.created 300, node.status_changed 4)`: the first-sync events a page left out. */
function foldedNote(f: FoldedImport): string {
  const types = Object.entries(f.types)
    .map(([t, n]) => `${untrusted(t, 40)} ${n}`)
    .join(', ');
  return `${f.events} events folded (${types}); includeInitial lists them`;
}

/**
 * The page's lines, with each cluster's folded first sync said once: on its `cluster.imported`
 * line when the page has it, else on a line of its own before the events.
 */
function eventLines(events: EventSummary[], folded: FoldedImport[], causes: Map<number, TaskCause>): string[] {
  const imported = new Set(events.filter((e) => e.type === 'cluster.imported').map((e) => e.cluster));
  const foldedBy = new Map(folded.map((f) => [f.cluster, f]));
  const own = folded
    .filter((f) => !imported.has(f.cluster))
    .map((f) => `${shortTime(f.from)} first sync of ${untrusted(f.cluster ?? '-', 63)}: ${foldedNote(f)}`);
  const lines = events.map((e) => {
    const fold = e.type === 'cluster.imported' ? foldedBy.get(e.cluster) : undefined;
    return `${shortTime(e.occurred_at)} ${untrusted(e.type, 40)} ${untrusted(e.subject.id, 80)} ${summary(e)}${causeText(causes.get(e.seq))}${fold ? `; ${foldedNote(fold)}` : ''}`.trimEnd();
  });
  return [...own, ...lines];
}

export const changesSinceTool = defineTool({
  name: 'changes_since',
  title: 'Changes since',
  description:
    "Events oldest first, from one start: since, afterSeq (nextSeq of a previous answer) or snapshot (an id); old→new, with the task's user; a first sync folds to a line unless includeInitial.",
  input: z
    .object({
      since: text(40).optional().describe('ISO 8601 (UTC unless it has an offset), or back from now: 15m, 2h, 7d'),
      afterSeq: count(0, Number.MAX_SAFE_INTEGER).optional(),
      snapshot: count(1, Number.MAX_SAFE_INTEGER).optional(),
      types: z.array(text(40)).max(20).optional().describe('e.g. guest.updated, or a prefix: node.'),
      subject: text(200).optional().describe('lab/101, or a prefix: lab/'),
      cluster: text(63).optional(),
      limit: count(1, QUERY_LIMITS.events.max).optional(),
      includeInitial: flag().optional(),
    })
    .strict(),
  output: z.object({
    events: Rows,
    folded: Rows.optional(),
    since: z.string().optional(),
    nextSeq: z.number(),
    hasMore: z.boolean(),
  }),
  annotations: READ_ONLY,
  handler(args, { store, now }) {
    const starts = [args.since, args.afterSeq, args.snapshot].filter((v) => v !== undefined).length;
    if (starts !== 1)
      throw new ToolMiss(
        starts ? 'Give only one of since, afterSeq, snapshot.' : 'Give since, afterSeq or snapshot.',
        'For example {"since": "2h"}, {"afterSeq": 120} or {"snapshot": 3}.',
      );
    checkCluster(store, args.cluster);
    let since: number | undefined;
    if (args.since !== undefined) {
      const read = readPastTime(args.since, now());
      if (!read.ok) throw new ToolMiss(`since ${quoted(args.since)}: ${read.problem}.`, `Use ${TIME_FORMS}.`);
      since = read.at;
    }
    if (args.snapshot !== undefined) {
      const snapshots = listSnapshots(store);
      const snap = snapshots.find((s) => s.id === args.snapshot);
      if (!snap)
        throw new ToolMiss(
          `No snapshot ${args.snapshot}.`,
          snapshots.length
            ? `Known: ${snapshots
                .slice(0, 10)
                .map((s) => `${s.id} (${shortTime(new Date(s.takenAt).toISOString())})`)
                .join(', ')}.`
            : 'No snapshot has been taken yet; use since instead.',
        );
      since = snap.takenAt;
    }
    const page = eventsSince(store, {
      since,
      afterSeq: args.afterSeq,
      types: expandTypes(args.types),
      subject: args.subject,
      cluster: args.cluster,
      limit: args.limit,
      initial: args.includeInitial ? 'include' : 'fold',
    });
    const causes = eventCauses(store, page.events);
    const folded = page.folded ?? [];
    const more = page.hasMore ? `; more: afterSeq ${page.nextSeq}` : `; next poll: afterSeq ${page.nextSeq}`;
    const sinceIso = since === undefined ? undefined : new Date(since).toISOString();
    const head = `${page.events.length} events${sinceIso ? ` since ${shortTime(sinceIso)}` : ''}${more}`;
    return {
      structured: {
        events: page.events.map((e) => {
          const task = causes.get(e.seq);
          return task ? { ...e, task } : { ...e };
        }),
        ...(folded.length ? { folded: folded.map((f) => ({ ...f })) } : {}),
        // The instant `since` (or the snapshot) was read as: what "2h" meant, to the millisecond.
        ...(sinceIso ? { since: sinceIso } : {}),
        nextSeq: page.nextSeq,
        hasMore: page.hasMore,
      },
      text: [head, ...eventLines(page.events, folded, causes)].join('\n'),
    };
  },
});
