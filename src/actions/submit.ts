/**
 * Asking for an action, from any transport: the request checked against the catalogue and the
 * inventory (the guest exists, is current, is no template, is not locked; the snapshot names make
 * sense), the principal's rate limit, then the row written with its `action.queued` event, and
 * only then the job enqueued. Redis being down does not lose it: the row waits in SQLite, the
 * reconciler enqueues it, and its time to live still holds.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import {
  actionsAskedSince,
  insertAction,
  targetGuests,
  type ActionRow,
  type NewAction,
  type TargetGuest,
} from '../store/actions.js';
import type { Store } from '../store/db.js';
import { CATALOGUE, type ActionKind, type ActionKindName } from './catalogue.js';
import type { Logger } from '../log.js';
import type { ActionQueue } from './queue.js';

export interface Requester {
  /** `mcp-stdio`, `mcp-http` or `cli`. */
  transport: string;
  /** The MCP client's declared name and version. */
  client: string | null;
  /** An HTTP token's label, or the local user: who the rate limit and the audit name. */
  principal: string;
}

export interface ActionRequest {
  kind: ActionKindName;
  vmid: number;
  cluster?: string;
  params: Record<string, unknown>;
  idempotencyKey?: string;
}

export interface SubmitSettings {
  /** How long a queued action may wait to start. */
  ttlMs: number;
  /** Actions one principal may ask for per minute. */
  perMinute: number;
}

export interface SubmitDeps {
  store: Store;
  /** Undefined when this process has no Redis (the stdio `mcp` without REDIS_URL): the row waits for `serve`. */
  queue: ActionQueue | undefined;
  settings: SubmitSettings;
  now: () => number;
  /** Hears of a job that did not reach Redis after the answer went (answerBeforeJob). */
  log?: Pick<Logger, 'warn'>;
}

export interface SubmitOptions {
  idempotencyKey?: string;
  /** The confirmation token to spend in the transaction that inserts the row. */
  confirmation?: NewAction['confirmation'];
  /**
   * Answer once the row is committed when the queue's connection is up, without waiting for
   * Redis to take the job: the row is the truth, and should the job not land, the reconciler
   * enqueues it. An agent waits on this call; a round trip to Redis was a fifth of it.
   */
  answerBeforeJob?: boolean;
}

/** A request the caller can fix: the message says what and how. */
export class ActionRefused extends Error {
  /** What to do, said for the shell: the `action` command's user has no MCP tools to turn to. */
  readonly shellHint?: string;
  constructor(
    message: string,
    readonly hint?: string,
    shellHint?: string,
  ) {
    super(message);
    this.name = 'ActionRefused';
    this.shellHint = shellHint ?? hint;
  }
}

export interface Submitted {
  action: ActionRow;
  /** False: an earlier action with the same idempotency key is answered. */
  created: boolean;
  /**
   * The job: `queued` in Redis; `sent` over a connected Redis, not waited for (answerBeforeJob);
   * `held`: nothing sent now, the row in SQLite for the reconciler to enqueue, or an earlier
   * action answered (`created` false). `note` says which, and what happens next.
   */
  job: 'queued' | 'sent' | 'held';
  note?: string;
}

/** What the action will do, checked: the target and the validated parameters. */
export interface CheckedRequest {
  kind: ActionKind;
  guest: TargetGuest;
  params: Record<string, unknown>;
}

export function checkRequest(store: Store, req: ActionRequest, now: number): CheckedRequest {
  const kind = CATALOGUE[req.kind];
  const parsed = kind.params.safeParse(req.params ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ActionRefused(
      `${req.kind}: ${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message}.`,
      `Parameters of ${req.kind}: ${Object.keys(kind.params.shape).join(', ') || 'none'}.`,
    );
  }
  const params = parsed.data as Record<string, unknown>;
  const guest = oneGuest(store, req);
  checkGuest(kind, guest, params, now);
  return { kind, guest, params };
}

function oneGuest(store: Store, req: ActionRequest): TargetGuest {
  const found = targetGuests(store, req.vmid, req.cluster);
  if (found.length === 1) return found[0]!;
  if (found.length > 1)
    throw new ActionRefused(
      `vmid ${req.vmid} exists in several clusters (${found.map((g) => g.cluster).join(', ')}).`,
      'Name the cluster.',
    );
  throw new ActionRefused(
    `No guest ${req.vmid}${req.cluster ? ` in cluster ${req.cluster}` : ''} in the inventory.`,
    'Check the vmid with list_guests or search_inventory; a guest created in the last minute appears after the next sync.',
    'A guest created since the last sync is there after the next (serve syncs on its schedule, `proxmox-inventory sync --once` now).',
  );
}

const PARAM_TYPES: Partial<Record<string, 'qemu'>> = { vmstate: 'qemu', todisk: 'qemu' };

function checkGuest(kind: ActionKind, g: TargetGuest, params: Record<string, unknown>, now: number): void {
  const who = `guest ${g.vmid}${g.name ? ` (${g.name})` : ''}`;
  if (g.clusterStale || g.stale) {
    // The cluster's last success says nothing of a node that missed it: "last synced 0 min ago" would mislead.
    const age =
      g.clusterStale && g.lastSuccessAt ? ` (last synced ${Math.round((now - g.lastSuccessAt) / 60_000)} min ago)` : '';
    throw new ActionRefused(
      `The inventory's view of ${who} is stale${age}: ${g.stale && !g.clusterStale ? `its node ${g.node} did not answer` : `cluster ${g.cluster}'s last sync failed`}.`,
      'Acting on an old view is refused; see sync_status, and ask again once the cluster syncs.',
      'Acting on an old view is refused; `proxmox-inventory sync --once` says why the sync fails; ask again once the cluster syncs.',
    );
  }
  if (g.template)
    throw new ActionRefused(`${who} is a template: Proxmox neither runs nor snapshots templates.`, 'Clone it first.');
  if (g.lock)
    throw new ActionRefused(
      `${who} is locked (${g.lock}) by a Proxmox operation.`,
      'Wait until that operation ends (list_tasks shows it), then ask again.',
      "Wait until that operation ends (the node's task list in Proxmox shows it), then ask again.",
    );
  for (const [param, type] of Object.entries(PARAM_TYPES))
    if (params[param] !== undefined && g.type !== type)
      throw new ActionRefused(`${param} applies to qemu VMs only; ${who} is a container.`, `Leave ${param} out.`);
  const snapshot = typeof params.name === 'string' ? params.name : undefined;
  if (snapshot && g.snapshots) {
    const exists = g.snapshots.some((s) => s.toLowerCase() === snapshot.toLowerCase());
    if (kind.name === 'snapshot_create' && exists)
      throw new ActionRefused(`${who} already has a snapshot named "${snapshot}".`, 'Choose another name.');
    if (kind.name !== 'snapshot_create' && !exists)
      throw new ActionRefused(
        `${who} has no snapshot "${snapshot}".`,
        g.snapshots.length ? `Its snapshots: ${g.snapshots.join(', ')}.` : 'It has no snapshots.',
      );
  }
}

/** The hash a confirmation is bound to: the kind, the exact guest and the parameters as checked. */
export function requestHash(c: CheckedRequest): string {
  const params = Object.fromEntries(Object.entries(c.params).sort(([a], [b]) => a.localeCompare(b)));
  return createHash('sha256')
    .update(JSON.stringify([c.kind.name, c.guest.cluster, c.guest.vmid, params]))
    .digest('hex');
}

export async function submitAction(
  deps: SubmitDeps,
  checked: CheckedRequest,
  requester: Requester,
  { idempotencyKey, confirmation, answerBeforeJob = false }: SubmitOptions = {},
): Promise<Submitted> {
  const now = deps.now();
  const asked = actionsAskedSince(deps.store, requester.principal, now - 60_000);
  if (asked >= deps.settings.perMinute)
    throw new ActionRefused(
      `Rate limit: ${requester.principal} asked for ${asked} actions in the last minute (at most ${deps.settings.perMinute}).`,
      'Wait a minute, or raise ACTIONS_PER_MINUTE.',
    );
  const { row, created } = insertAction(
    deps.store,
    {
      kind: checked.kind.name,
      cluster: checked.guest.cluster,
      vmid: checked.guest.vmid,
      guestType: checked.guest.type,
      node: checked.guest.node,
      guestName: checked.guest.name,
      params: checked.params,
      transport: requester.transport,
      client: requester.client,
      principal: requester.principal,
      idempotencyKey: idempotencyKey ?? null,
      ttlMs: deps.settings.ttlMs,
      ...(confirmation ? { confirmation } : {}),
    },
    now,
  );
  if (!created) return { action: row, created, job: 'held', note: 'an earlier action with this idempotency key' };
  const queue = deps.queue;
  const expires = new Date(row.expiresAt).toISOString();
  if (!queue)
    return {
      action: row,
      created,
      job: 'held',
      note: `queued in the inventory; this process has no queue connection, so \`serve\` picks it up (it expires at ${expires} if no daemon runs)`,
    };
  if (answerBeforeJob && queue.connected()) {
    queue
      .enqueue(row.id)
      .catch((err: unknown) =>
        deps.log?.warn(
          { action: row.id, reason: err instanceof Error ? err.message : String(err) },
          'the action was answered as queued but its job did not reach Redis; the reconciler in serve enqueues it',
        ),
      );
    return { action: row, created, job: 'sent' };
  }
  try {
    await queue.enqueue(row.id);
    return { action: row, created, job: 'queued' };
  } catch {
    return {
      action: row,
      created,
      job: 'held',
      note: `queued in the inventory, but Redis did not answer: the daemon enqueues it when Redis is back (it expires at ${expires})`,
    };
  }
}

export const idempotencyKey = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[\x21-\x7e]+$/, { error: 'printable ASCII without spaces' });
