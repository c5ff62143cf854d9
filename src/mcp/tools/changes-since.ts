import { EVENT_TYPES } from '../../store/events.js';
import { z } from 'zod';
import { eventsSince, QUERY_LIMITS, type EventSummary } from '../../store/queries.js';
import { listSnapshots } from '../../store/snapshots.js';
import { shortTime, untrusted } from '../render.js';
import { count, text } from '../schemas.js';
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

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const MAX_MS = 8.64e15; // the largest Date

/**
 * A time from `since`: an ISO-8601 time or date (`2025-01-02T03:04:05Z`, `2025-01-02`), or a
 * duration back from now: `90s`, `15m`, `2h`, `1d`, `2w`, combined (`1h30m`), or ISO-8601 (`PT2H`, `P1D`).
 * Undefined when it is neither.
 */
export function parseSince(value: string, now: number): number | undefined {
  const v = value.trim();
  if (/^\d{4}-\d{2}-\d{2}/.test(v)) {
    const ms = Date.parse(v);
    return Number.isNaN(ms) ? undefined : ms;
  }
  let ms = 0;
  const compact = v.toLowerCase().replace(/\s+/g, '').replace(/ago$/, '');
  const iso =
    /^p(?:(\d+(?:\.\d+)?)w)?(?:(\d+(?:\.\d+)?)d)?(?:t(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?)?$/.exec(
      compact,
    );
  if (iso && compact !== 'p' && compact !== 'pt') {
    const [, w, d, h, m, s] = iso;
    ms =
      Number(w ?? 0) * UNIT_MS.w! +
      Number(d ?? 0) * UNIT_MS.d! +
      Number(h ?? 0) * UNIT_MS.h! +
      Number(m ?? 0) * UNIT_MS.m! +
      Number(s ?? 0) * UNIT_MS.s!;
  } else if (/^(\d+(\.\d+)?[smhdw])+$/.test(compact)) {
    for (const [, amount, unit] of compact.matchAll(/(\d+(?:\.\d+)?)([smhdw])/g))
      ms += Number(amount) * UNIT_MS[unit!]!;
  } else {
    return undefined;
  }
  const at = now - ms;
  return Number.isFinite(at) && Math.abs(at) <= MAX_MS ? at : undefined;
}

const arrow = (from: unknown, to: unknown): string =>
  `${untrusted(String(from ?? '-'), 30)}→${untrusted(String(to ?? '-'), 30)}`;

/** A few words on what an event says: changed fields, from→to, the error. */
export function summary(e: EventSummary): string {
  const d = e.data;
  switch (e.type) {
    case 'guest.created':
      return `${untrusted(d.name as string | null, 40)} ${String(d.type ?? '')} on ${String(d.node ?? '-')}, ${String(d.status ?? '-')}${d.revived ? ', revived' : ''}`;
    case 'guest.deleted':
      return `${untrusted(d.name as string | null, 40)} was on ${String(d.node ?? '-')}`;
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
        ...fields.map((f) => (f === 'name' && name ? `name ${arrow(name.from, name.to)}` : f)),
        ...(config.length ? [`config ${untrusted(keys, 80)}`] : []),
      ];
      return parts.join('; ') || 'config digest';
    }
    case 'cluster.sync_failed':
      return untrusted(d.error as string | null, 120);
    case 'cluster.sync_recovered':
      return `after ${String(d.failures ?? '?')} failures`;
    case 'snapshot.created':
      return `id ${String(d.id ?? '?')}${d.label ? ` ${untrusted(String(d.label), 40)}` : ''}`;
    default:
      return '';
  }
}

export const changesSinceTool = defineTool({
  name: 'changes_since',
  title: 'Changes since',
  description:
    'Events oldest first, from one start: since (ISO time, or ago: 15m, 2h, 1d), afterSeq (nextSeq of a previous answer) or snapshot (an id).',
  input: z
    .object({
      since: text(40).optional(),
      afterSeq: count(0, Number.MAX_SAFE_INTEGER).optional(),
      snapshot: count(1, Number.MAX_SAFE_INTEGER).optional(),
      types: z.array(text(40)).max(20).optional().describe('e.g. guest.updated, or a prefix: node.'),
      subject: text(200).optional().describe('lab/101, or a prefix: lab/'),
      cluster: text(63).optional(),
      limit: count(1, QUERY_LIMITS.events.max).optional(),
    })
    .strict(),
  output: z.object({ events: Rows, nextSeq: z.number(), hasMore: z.boolean() }),
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
      since = parseSince(args.since, now());
      if (since === undefined)
        throw new ToolMiss(
          `Cannot read since ${JSON.stringify(args.since)}.`,
          'Use an ISO time ("2025-01-02T03:04:05Z") or a duration back from now: "90s", "15m", "2h", "1d", "1w", "1h30m".',
        );
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
    const head = `${page.events.length} events${since !== undefined ? ` since ${shortTime(new Date(since).toISOString())}` : ''}${more}`;
    const lines = page.events.map((e) =>
      `${shortTime(e.occurred_at)} ${e.type} ${untrusted(e.subject.id, 80)} ${summary(e)}`.trimEnd(),
    );
    return {
      structured: { events: page.events.map((e) => ({ ...e })), nextSeq: page.nextSeq, hasMore: page.hasMore },
      text: [head, ...lines].join('\n'),
    };
  },
});
