import { z } from 'zod';
import { listActions, type ActionState } from '../../store/actions.js';
import { quoted } from '../render.js';
import { count, text, vmid } from '../schemas.js';
import { readPastTime, TIME_FORMS } from '../time.js';
import { defineTool, READ_ONLY, ToolMiss } from '../tool.js';
import { actionLine, actionView } from './action-shared.js';
import { Rows } from './shared.js';

const STATES = ['queued', 'running', 'succeeded', 'failed', 'expired', 'cancelled'] as const satisfies ActionState[];

/** A page boundary: the last row's time and id, so rows asked for at the same millisecond are not skipped. */
const cursorOf = (createdAt: number, id: string): string => Buffer.from(`${createdAt}:${id}`).toString('base64url');

function readCursor(cursor: string): { createdAt: number; id: string } {
  const match = /^(\d{1,15}):(act_[0-9a-z]{26})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match)
    throw new ToolMiss(
      `cursor ${quoted(cursor, 60)} is not one list_actions gave.`,
      'Leave it out to start from the newest.',
    );
  return { createdAt: Number(match[1]), id: match[2]! };
}

export const listActionsTool = defineTool({
  name: 'list_actions',
  title: 'List actions',
  description:
    'Actions asked of the daemon (power, snapshots), newest first: state, who asked (transport, client, token label or user), UPID, Proxmox exit status and reason, times.',
  input: z
    .object({
      state: z
        .enum(STATES, { error: (i) => `expected one of ${STATES.join(', ')}, got ${JSON.stringify(i.input)}` })
        .optional(),
      cluster: text(63).optional(),
      vmid: vmid().optional(),
      since: text(60).optional().describe('asked at or after: ISO 8601 or a duration back ("2h")'),
      limit: count(1, 100).optional().describe('default 20'),
      cursor: text(200).optional(),
    })
    .strict(),
  output: z.object({ actions: Rows, nextCursor: z.string().optional() }),
  annotations: READ_ONLY,
  handler(args, { store, now }) {
    let since: number | undefined;
    if (args.since !== undefined) {
      const read = readPastTime(args.since, now());
      if (!read.ok) throw new ToolMiss(`since ${quoted(args.since)}: ${read.problem}.`, `Use ${TIME_FORMS}.`);
      since = read.at;
    }
    const limit = args.limit ?? 20;
    const rows = listActions(store, {
      state: args.state,
      cluster: args.cluster,
      vmid: args.vmid,
      since,
      before: args.cursor === undefined ? undefined : readCursor(args.cursor),
      limit: limit + 1,
    });
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    const nextCursor = rows.length > limit && last ? cursorOf(last.createdAt, last.id) : undefined;
    const head = `${page.length} action${page.length === 1 ? '' : 's'}${rows.length > limit ? ' (more: next page with cursor)' : ''}`;
    return {
      structured: { actions: page.map((r) => actionView(r)), ...(nextCursor ? { nextCursor } : {}) },
      text: [head, ...page.map(actionLine), ...(nextCursor ? [`next page: cursor=${nextCursor}`] : [])].join('\n'),
    };
  },
});
