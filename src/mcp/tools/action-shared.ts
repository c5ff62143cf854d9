/**
 * What the action tools share: an action row as answers show it, the arguments every write tool
 * takes (idempotency key, wait, confirmation), and the way from a request to a queued action:
 * scope, checks against the inventory, confirmation of destructive kinds, the outbox, the wait.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { CATALOGUE, type ActionKindName } from '../../actions/catalogue.js';
import { checkRequest, idempotencyKey, submitAction, type ActionRequest } from '../../actions/submit.js';
import { ConfirmationRefused, FINAL_STATES, getAction, type ActionRow, type NewAction } from '../../store/actions.js';
import type { Store } from '../../store/db.js';
import { confirm, confirmationMiss, planText, type Plan } from '../confirm.js';
import { oneLine, quoted, shortTime, untrusted } from '../render.js';
import { count, text } from '../schemas.js';
import { ToolMiss, type ActionToolContext, type ToolAnswer } from '../tool.js';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** Parameters as stored (JSON we wrote); a row that does not parse shows none. */
function paramsOf(row: ActionRow): Record<string, unknown> {
  try {
    const value = JSON.parse(row.params) as unknown;
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function taskLogOf(row: ActionRow): string[] {
  try {
    const value = JSON.parse(row.taskLog ?? '[]') as unknown;
    return Array.isArray(value) ? value.map(String) : [];
  } catch {
    return [];
  }
}

/** An action as the tools answer it; `taskLog` (the last lines of Proxmox's task log) for get_action. */
export function actionView(row: ActionRow, withLog = false): Record<string, unknown> {
  return {
    id: row.id,
    kind: row.kind,
    cluster: row.cluster,
    vmid: row.vmid,
    node: row.node,
    name: row.guestName,
    params: paramsOf(row),
    state: row.state,
    requestedBy: { transport: row.transport, client: row.client, principal: row.principal },
    idempotencyKey: row.idempotencyKey,
    upid: row.upid,
    exitStatus: row.exitStatus,
    reason: row.reason,
    createdAt: iso(row.createdAt),
    expiresAt: iso(row.expiresAt),
    startedAt: iso(row.startedAt),
    finishedAt: iso(row.finishedAt),
    ...(withLog ? { taskLog: taskLogOf(row) } : {}),
  };
}

/** One line: id, kind, guest, state, who, when, Proxmox's words (as data). */
export function actionLine(row: ActionRow): string {
  const who = [row.transport, row.client, row.principal].filter(Boolean).map((p) => untrusted(p, 60));
  const when = row.finishedAt
    ? `finished ${shortTime(iso(row.finishedAt))}`
    : row.startedAt
      ? `started ${shortTime(iso(row.startedAt))}`
      : `queued ${shortTime(iso(row.createdAt))}, expires ${shortTime(iso(row.expiresAt))}`;
  const params = paramsOf(row);
  return [
    `${row.id} ${row.kind} ${row.cluster}/${row.vmid} ${untrusted(row.guestName, 40)} on ${untrusted(row.node, 63)}: ${row.state}`,
    Object.keys(params).length ? ` ${quoted(JSON.stringify(params), 200)}` : '',
    `; by ${who.join('/')}; ${when}`,
    row.exitStatus ? `; exit ${untrusted(row.exitStatus, 80)}` : '',
    row.reason ? `; reason ${untrusted(row.reason, 300)}` : '',
    row.upid ? `; upid ${untrusted(row.upid, 120)}` : '',
  ].join('');
}

/** The arguments every write tool takes besides its kind's. */
export const commonInput = {
  idempotencyKey: idempotencyKey
    .optional()
    .describe('the same key again answers the earlier action instead of asking twice (per caller)'),
  waitSeconds: count(0, 3600, 'seconds')
    .optional()
    .describe('wait up to this long for the outcome (bounded by the server); 0 or absent: answer at once'),
  confirmation: text(100)
    .optional()
    .describe('the token a plan gave, with the same arguments as the plan, to queue a destructive action'),
};

export const ActionOutput = z.object({
  outcome: z.enum(['queued', 'earlier', 'confirmation_required', 'declined']),
  action: z.record(z.string(), z.unknown()).optional(),
  plan: z.record(z.string(), z.unknown()).optional(),
  confirmation: z.string().optional(),
  confirmationExpiresAt: z.string().optional(),
  note: z.string().optional(),
});
type ActionAnswer = ToolAnswer<z.infer<typeof ActionOutput>>;

/** A kind outside the caller's scope: refused naming the scope (its label, never a token). */
export function checkScope(ctx: ActionToolContext, kind: ActionKindName): void {
  if (ctx.caller.kinds.has(kind)) return;
  const allowed = [...ctx.caller.kinds];
  throw new ToolMiss(
    `${kind} is outside the scope of ${quoted(ctx.caller.principal, 60)}, which may ask for ${allowed.length ? allowed.join(', ') : 'no action (read-only)'}.`,
    'An operator can add it to the scope (ACTIONS, or the HTTP token’s kinds in the config file).',
  );
}

/** Polls the row until it ends, the time is up or the client goes away; answers the row as it is then. */
async function waitForEnd(store: Store, id: string, ms: number, signal: AbortSignal): Promise<ActionRow> {
  const until = Date.now() + ms;
  let row = getAction(store, id)!;
  while (!FINAL_STATES.includes(row.state) && Date.now() < until && !signal.aborted) {
    await sleep(Math.min(100, Math.max(1, until - Date.now()))).catch(() => undefined);
    row = getAction(store, id)!;
  }
  return row;
}

export interface AskedFor {
  request: ActionRequest;
  waitSeconds?: number;
  confirmation?: string;
  /** The tool, for the text telling how to confirm. */
  tool: string;
}

/**
 * From a tool's request to its answer: the scope, the checks (ActionRefused is thrown to the
 * server, which answers it as a miss), a confirmation for a destructive kind, the outbox row and
 * job, then the wait asked for.
 */
export async function askForAction(ctx: ActionToolContext, asked: AskedFor): Promise<ActionAnswer> {
  checkScope(ctx, asked.request.kind);
  const deps = ctx.actions.submit;
  const checked = checkRequest(deps.store, asked.request, ctx.now());
  let spend: NewAction['confirmation'];
  if (checked.kind.destructive) {
    const confirmed = await confirm(ctx, checked, asked.confirmation);
    spend = confirmed.state === 'confirmed' ? confirmed.spend : undefined;
    if (confirmed.state === 'asked')
      return planAnswer(asked.tool, confirmed.plan, confirmed.token, confirmed.expiresAt);
    if (confirmed.state === 'declined') return declinedAnswer(confirmed.plan, confirmed.answer);
  }
  const submitted = await submitAction(deps, checked, ctx.caller, {
    idempotencyKey: asked.request.idempotencyKey,
    confirmation: spend,
    answerBeforeJob: true,
  }).catch((err: unknown) => {
    throw err instanceof ConfirmationRefused ? confirmationMiss(ctx, err.check) : err;
  });
  const waitMs = Math.min(asked.waitSeconds ?? 0, ctx.actions.waitMaxSeconds) * 1000;
  const row = waitMs > 0 ? await waitForEnd(deps.store, submitted.action.id, waitMs, ctx.signal) : submitted.action;
  const capped =
    (asked.waitSeconds ?? 0) > ctx.actions.waitMaxSeconds
      ? `waited at most ${ctx.actions.waitMaxSeconds} s (this server's bound)`
      : undefined;
  const note = [submitted.note, capped].filter(Boolean).join('; ') || undefined;
  const follow = FINAL_STATES.includes(row.state)
    ? ''
    : `\nFollow it with get_action {"id":"${row.id}"} (or list_actions).`;
  return {
    structured: {
      outcome: submitted.created ? 'queued' : 'earlier',
      action: actionView(row),
      ...(note ? { note } : {}),
    },
    text: `${submitted.created ? 'Asked' : 'Already asked (same idempotency key)'}: ${actionLine(row)}${note ? `\nNote: ${oneLine(note, 400)}` : ''}${follow}`,
  };
}

function planAnswer(tool: string, plan: Plan, token: string, expiresAt: number): ActionAnswer {
  const until = new Date(expiresAt).toISOString();
  return {
    structured: {
      outcome: 'confirmation_required',
      plan: { ...plan },
      confirmation: token,
      confirmationExpiresAt: until,
    },
    text: [
      `Not queued yet: ${plan.kind} is destructive and needs a confirmation.`,
      `Plan: ${planText(plan)}`,
      `Show this plan to the user. To run it, call ${tool} again with the same arguments plus "confirmation": "${token}" (single use, valid until ${shortTime(until)}); a changed argument is refused.`,
    ].join('\n'),
  };
}

function declinedAnswer(plan: Plan, answer: 'decline' | 'cancel'): ActionAnswer {
  return {
    structured: { outcome: 'declined', plan: { ...plan } },
    text: `Not queued: the user ${answer === 'cancel' ? 'cancelled' : 'declined'} ${planText(plan)} Nothing was sent to Proxmox.`,
  };
}

/** The description's list of kinds, each with what it does and whether it is confirmed first. */
export function kindsDescribed(kinds: readonly ActionKindName[], label: (k: ActionKindName) => string): string {
  return kinds
    .map((k) => `${label(k)}: ${CATALOGUE[k].about}${CATALOGUE[k].destructive ? ' (confirmed first)' : ''}`)
    .join('; ');
}

/** The kind's parameters that were given: an absent one is not sent (the kind's schema refuses others by name). */
export function definedOnly(params: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined));
}
