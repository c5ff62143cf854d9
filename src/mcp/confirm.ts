/**
 * Confirmation of destructive actions, which a client cannot skip. A client that declared MCP
 * elicitation is asked through it (the user answers, not the model). Any other gets a plan and a
 * confirmation token: random, shown once, stored only as its SHA-256, bound to the exact request
 * (kind, guest, parameters) and the principal, valid for a few minutes, spent on first use. The
 * second call with the token and the same parameters queues the action.
 */
import { createHash, randomBytes } from 'node:crypto';
import { requestHash, type CheckedRequest } from '../actions/submit.js';
import { saveConfirmation, type ConfirmationCheck } from '../store/actions.js';
import { quoted, untrusted } from './render.js';
import type { ElicitRequestFormParams } from '@modelcontextprotocol/sdk/types.js';
import { ToolMiss, type ActionToolContext } from './tool.js';

/** What will happen to which guest, as the user and the model read it before saying yes. */
export interface Plan {
  kind: string;
  what: string;
  cluster: string;
  vmid: number;
  name: string | null;
  node: string;
  statusNow: string;
  becomes: string;
  params: Record<string, unknown>;
}

export type Confirmation =
  /** `spend`: the token to spend when the action is inserted (submitAction), absent when the user confirmed. */
  | { state: 'confirmed'; spend?: { tokenHash: string; requestHash: string; presentedAt: number } }
  | { state: 'declined'; plan: Plan; answer: 'decline' | 'cancel' }
  | { state: 'asked'; plan: Plan; token: string; expiresAt: number };

export function planOf(checked: CheckedRequest): Plan {
  const g = checked.guest;
  return {
    kind: checked.kind.name,
    what: checked.kind.about,
    cluster: g.cluster,
    vmid: g.vmid,
    name: g.name,
    node: g.node,
    statusNow: g.status,
    becomes: checked.kind.outcome,
    params: checked.params,
  };
}

/** One line: `stop lab/101 "web 1" on pve1 (running now → stopped): stop the guest at once… Parameters: {…}.` */
export function planText(p: Plan): string {
  const params = Object.keys(p.params).length ? ` Parameters: ${quoted(JSON.stringify(p.params), 400)}.` : '';
  return `${p.kind} ${p.cluster}/${p.vmid} ${untrusted(p.name, 60)} on ${untrusted(p.node, 63)} (${untrusted(p.statusNow, 20)} now → ${p.becomes}): ${p.what}.${params}`;
}

/**
 * The form a client shows its user. One object for every call: the SDK checks the answer against
 * it with ajv, which compiles a schema once per object (about 3 ms a call with a new one each time).
 */
const CONFIRM_FORM = {
  type: 'object',
  properties: { confirm: { type: 'boolean', title: 'Run it', description: 'Queue this action now' } },
  required: ['confirm'],
} satisfies ElicitRequestFormParams['requestedSchema'];

const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');

/** Why a token was refused, and what to do instead: one sentence each. */
const refusals = (ttlMs: number): Record<Exclude<ConfirmationCheck, 'ok'>, [string, string]> => ({
  unknown: [
    'That confirmation token is not one this server issued.',
    'Call again without "confirmation" to get a plan and a new token.',
  ],
  used: [
    'That confirmation token was already used (each confirms one action once).',
    'Call again without "confirmation" for a new plan and token.',
  ],
  expired: [
    `That confirmation token has expired (tokens are valid for ${Math.round(ttlMs / 60_000)} minutes).`,
    'Call again without "confirmation" for a new plan and token.',
  ],
  'other-principal': [
    'That confirmation token was issued to another caller.',
    'Call again without "confirmation" for a plan and a token of your own.',
  ],
  'other-request': [
    'That confirmation token was issued for a different request: the action, guest or a parameter changed since the plan.',
    'Send exactly the arguments of the plan with the token, or call again without "confirmation" for a plan of this request.',
  ],
});

/** The answer to a token that could not be spent, as a miss the model can act on. */
export function confirmationMiss(ctx: ActionToolContext, check: Exclude<ConfirmationCheck, 'ok'>): ToolMiss {
  const [message, hint] = refusals(ctx.actions.confirmTtlMs)[check];
  return new ToolMiss(message, hint);
}

/**
 * Settles whether a destructive request may be queued: a token given is passed on, to be checked
 * and spent with the insert (submitAction);
 * otherwise the client asks its user when it can, and a plan with a token is the answer when not.
 */
export async function confirm(
  ctx: ActionToolContext,
  checked: CheckedRequest,
  token: string | undefined,
): Promise<Confirmation> {
  const store = ctx.actions.submit.store;
  const hash = requestHash(checked);
  const now = ctx.now();
  if (token !== undefined)
    return { state: 'confirmed', spend: { tokenHash: hashToken(token), requestHash: hash, presentedAt: now } };
  const plan = planOf(checked);
  if (ctx.elicit) {
    const result = await ctx.elicit({
      mode: 'form',
      message: `Confirm: ${planText(plan)}`,
      requestedSchema: CONFIRM_FORM,
    });
    if (result.action === 'accept' && result.content?.confirm === true) return { state: 'confirmed' };
    return { state: 'declined', plan, answer: result.action === 'cancel' ? 'cancel' : 'decline' };
  }
  const issued = randomBytes(24).toString('base64url');
  saveConfirmation(
    store,
    {
      tokenHash: hashToken(issued),
      requestHash: hash,
      principal: ctx.caller.principal,
      ttlMs: ctx.actions.confirmTtlMs,
    },
    now,
  );
  return { state: 'asked', plan, token: issued, expiresAt: now + ctx.actions.confirmTtlMs };
}
