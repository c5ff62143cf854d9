import { EVENT_TYPES } from '../../store/events.js';
import { z } from 'zod';
import { eventsSince, QUERY_LIMITS, type EventSummary } from '../../store/queries.js';
import { listSnapshots } from '../../store/snapshots.js';
import { shortTime, untrusted } from '../render.js';
import { count, text } from '../schemas.js';
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
        `Unknown event type ${JSON.stringify(t)}.`,
        `Types: ${EVENT_TYPES.join(', ')}; or a prefix such as "guest.".`,
      );
    for (const h of hits) out.add(h);
  }
  return [...out];
}

/** A value of an event's data (JSON from the store: Proxmox's values, or anything a tampered row holds) as one cell. */
const cell = (value: unknown, max: number): string =>
  untrusted(value == null ? '-' : typeof value === 'string' ? value : JSON.stringify(value), max);

const arrow = (from: unknown, to: unknown): string => `${cell(from, 30)}→${cell(to, 30)}`;

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
    case 'guest.updated': {
      const changes = (d.changes ?? {}) as Record<string, unknown>;
      const fields = Object.keys(changes).filter((k) => k !== 'config' && k !== 'digest');
      const config = Object.keys((changes.config ?? {}) as Record<string, unknown>);
      const name = changes.name as { from?: unknown; to?: unknown } | undefined;
      const keys = config.length > 8 ? `${config.slice(0, 8).join(',')},…` : config.join(',');
      const parts = [
        ...fields.map((f) => (f === 'name' && name ? `name ${arrow(name.from, name.to)}` : untrusted(f, 30))),
        ...(config.length ? [`config ${untrusted(keys, 80)}`] : []),
      ];
      return parts.join('; ') || 'config digest';
    }
    case 'cluster.sync_failed':
      return cell(d.error, 120);
    case 'cluster.sync_recovered':
      return `after ${cell(d.failures, 10)} failures`;
    case 'snapshot.created':
      return `id ${cell(d.id, 20)}${d.label ? ` ${untrusted(String(d.label), 40)}` : ''}`;
    default:
      return '';
  }
}

export const changesSinceTool = defineTool({
  name: 'changes_since',
  title: 'Changes since',
  description:
    'Events oldest first, from one start: since, afterSeq (nextSeq of a previous answer) or snapshot (an id).',
  input: z
    .object({
      since: text(40).optional().describe('ISO 8601 (UTC unless it has an offset), or back from now: 15m, 2h, 7d'),
      afterSeq: count(0, Number.MAX_SAFE_INTEGER).optional(),
      snapshot: count(1, Number.MAX_SAFE_INTEGER).optional(),
      types: z.array(text(40)).max(20).optional().describe('e.g. guest.updated, or a prefix: node.'),
      subject: text(200).optional().describe('lab/101, or a prefix: lab/'),
      cluster: text(63).optional(),
      limit: count(1, QUERY_LIMITS.events.max).optional(),
    })
    .strict(),
  output: z.object({ events: Rows, since: z.string().optional(), nextSeq: z.number(), hasMore: z.boolean() }),
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
      if (!read.ok) throw new ToolMiss(`since ${JSON.stringify(args.since)}: ${read.problem}.`, `Use ${TIME_FORMS}.`);
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
    });
    const more = page.hasMore ? `; more: afterSeq ${page.nextSeq}` : `; next poll: afterSeq ${page.nextSeq}`;
    const sinceIso = since === undefined ? undefined : new Date(since).toISOString();
    const head = `${page.events.length} events${sinceIso ? ` since ${shortTime(sinceIso)}` : ''}${more}`;
    const lines = page.events.map((e) =>
      `${shortTime(e.occurred_at)} ${untrusted(e.type, 40)} ${untrusted(e.subject.id, 80)} ${summary(e)}`.trimEnd(),
    );
    return {
      structured: {
        events: page.events.map((e) => ({ ...e })),
        // The instant `since` (or the snapshot) was read as: what "2h" meant, to the millisecond.
        ...(sinceIso ? { since: sinceIso } : {}),
        nextSeq: page.nextSeq,
        hasMore: page.hasMore,
      },
      text: [head, ...lines].join('\n'),
    };
  },
});
