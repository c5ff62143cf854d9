/**
 * The action outbox (schema.ts `actions`): each state change is one `BEGIN IMMEDIATE` transaction
 * with its `action.*` event, and a change only happens from the state it expects, so a worker, the
 * reconciler and a cancel racing on one row cannot both win.
 */
import { randomBytes } from 'node:crypto';
import { and, desc, eq, gte, inArray, lt, lte, sql } from 'drizzle-orm';
import { prepareInsert } from './rows.js';
import type { Store } from './db.js';
import { insertEvents, type EventType } from './events.js';
import { prepared } from './prepared.js';
import { P } from './queries/shared.js';
import { actionConfirmations, actions } from './schema.js';

export type ActionRow = typeof actions.$inferSelect;
export type ActionState = ActionRow['state'];
export const FINAL_STATES: readonly ActionState[] = ['succeeded', 'failed', 'expired', 'cancelled'];

/** 26 Crockford base32 characters from 26 random bytes (130 bits, as a ULID's length): no `.`, safe in a job id and a URL. */
export function newId(prefix: string): string {
  const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';
  let out = '';
  for (const byte of randomBytes(26)) out += alphabet[byte % 32]; // 256 is a multiple of 32: no bias
  return `${prefix}_${out}`;
}

export interface NewAction {
  kind: string;
  cluster: string;
  vmid: number;
  guestType: 'qemu' | 'lxc';
  node: string;
  guestName: string | null;
  params: Record<string, unknown>;
  transport: string;
  client: string | null;
  principal: string;
  idempotencyKey: string | null;
  ttlMs: number;
  /**
   * The confirmation token the request came with, spent in the transaction that inserts the row:
   * one commit instead of two on the path an agent waits on, and a token is never spent on an
   * action that was not queued. An idempotent repeat answers the earlier action without it.
   */
  confirmation?: { tokenHash: string; requestHash: string; presentedAt: number };
}

/** The confirmation token could not be spent: the row was not inserted. */
export class ConfirmationRefused extends Error {
  constructor(readonly check: Exclude<ConfirmationCheck, 'ok'>) {
    super(`confirmation token refused: ${check}`);
    this.name = 'ConfirmationRefused';
  }
}

/** The guest's tags as the inventory holds them now, for a subscriber's tag filter and its own routing. */
function guestTags(store: Store, cluster: string, vmid: number): string[] {
  const text = prepared(store, 'actions.guestTags', () =>
    store.sqlite.prepare('SELECT tags FROM guests WHERE cluster = ? AND vmid = ?').pluck(),
  ).get(cluster, vmid) as string | undefined;
  return text ? (JSON.parse(text) as string[]) : [];
}

/** The event an action's change carries: enough to act on without a call back. */
function actionEvent(store: Store, type: EventType, row: ActionRow): Parameters<typeof insertEvents>[1][number] {
  return {
    type,
    cluster: row.cluster,
    subject: { kind: 'action', id: row.id },
    data: {
      action: row.id,
      kind: row.kind,
      vmid: row.vmid,
      node: row.node,
      name: row.guestName,
      tags: guestTags(store, row.cluster, row.vmid),
      params: JSON.parse(row.params) as unknown,
      principal: row.principal,
      state: row.state,
      ...(row.upid ? { upid: row.upid } : {}),
      ...(row.exitStatus ? { exitStatus: row.exitStatus } : {}),
      ...(row.reason ? { reason: row.reason } : {}),
    },
  };
}

export type InsertResult = { row: ActionRow; created: true } | { row: ActionRow; created: false };

/**
 * Inserts a queued action with its `action.queued` event. With an idempotency key the principal
 * used before, the earlier action is answered instead (`created: false`), whatever it asked.
 */
export function insertAction(store: Store, a: NewAction, now: number): InsertResult {
  return store.write(() => {
    if (a.idempotencyKey !== null) {
      const earlier = prepared(store, 'actions.byIdempotencyKey', () =>
        store.db
          .select()
          .from(actions)
          .where(and(eq(actions.principal, P('principal')), eq(actions.idempotencyKey, P('key'))))
          .prepare(),
      ).get({ principal: a.principal, key: a.idempotencyKey });
      if (earlier) return { row: earlier, created: false };
    }
    if (a.confirmation) {
      const { tokenHash, requestHash, presentedAt } = a.confirmation;
      const check = useConfirmation(store, tokenHash, requestHash, a.principal, presentedAt);
      if (check !== 'ok') throw new ConfirmationRefused(check);
    }
    const row: ActionRow = {
      id: newId('act'),
      kind: a.kind,
      cluster: a.cluster,
      vmid: a.vmid,
      guestType: a.guestType,
      node: a.node,
      guestName: a.guestName,
      params: JSON.stringify(a.params),
      transport: a.transport,
      client: a.client,
      principal: a.principal,
      idempotencyKey: a.idempotencyKey,
      state: 'queued',
      upid: null,
      postedAt: null,
      exitStatus: null,
      reason: null,
      taskLog: null,
      createdAt: now,
      expiresAt: now + a.ttlMs,
      startedAt: null,
      finishedAt: null,
    };
    prepared(store, 'actions.insert', () => prepareInsert(store.sqlite, actions)).run(row);
    insertEvents(store, [actionEvent(store, 'action.queued', row)], now);
    return { row, created: true };
  });
}

export function getAction(store: Store, id: string): ActionRow | undefined {
  return prepared(store, 'actions.get', () =>
    store.db
      .select()
      .from(actions)
      .where(eq(actions.id, P('id')))
      .prepare(),
  ).get({ id });
}

/**
 * Moves a row from one of `from` to `to` with `fields`, and writes `event` for it; answers the
 * row after, or undefined when it was not in one of `from` (someone else moved it first).
 */
function transition(
  store: Store,
  id: string,
  from: readonly ActionState[],
  fields: Partial<ActionRow>,
  event: EventType | null,
  now: number,
): ActionRow | undefined {
  return store.write(() => {
    const changed = store.db
      .update(actions)
      .set(fields)
      .where(and(eq(actions.id, id), inArray(actions.state, [...from])))
      .returning()
      .get();
    if (changed && event) insertEvents(store, [actionEvent(store, event, changed)], now);
    return changed;
  });
}

/** queued → running; undefined when it is not queued (cancelled, expired, or already taken). */
export const markRunning = (store: Store, id: string, now: number): ActionRow | undefined =>
  transition(store, id, ['queued'], { state: 'running', startedAt: now }, 'action.started', now);

/** The POST is about to go: after a crash with no UPID recorded, this says one may have been sent. */
export const markPosting = (store: Store, id: string, now: number): ActionRow | undefined =>
  transition(store, id, ['running'], { postedAt: now }, null, now);

export const recordUpid = (store: Store, id: string, upid: string, now: number): ActionRow | undefined =>
  transition(store, id, ['running'], { upid }, null, now);

export interface Outcome {
  state: 'succeeded' | 'failed';
  exitStatus?: string | null;
  reason?: string | null;
  taskLog?: string[];
}

export const finishAction = (store: Store, id: string, o: Outcome, now: number): ActionRow | undefined =>
  transition(
    store,
    id,
    ['running', 'queued'],
    {
      state: o.state,
      exitStatus: o.exitStatus ?? null,
      reason: o.reason ?? null,
      taskLog: o.taskLog ? JSON.stringify(o.taskLog) : null,
      finishedAt: now,
    },
    o.state === 'succeeded' ? 'action.succeeded' : 'action.failed',
    now,
  );

/** A queued action asked off; undefined when it is no longer queued. */
export const cancelAction = (store: Store, id: string, reason: string, now: number): ActionRow | undefined =>
  transition(store, id, ['queued'], { state: 'cancelled', reason, finishedAt: now }, 'action.cancelled', now);

/** Queued actions whose time to start has passed: each ends `expired` with its event. Answers them. */
export function expireDue(store: Store, now: number): ActionRow[] {
  const due = store.db
    .select({ id: actions.id, expiresAt: actions.expiresAt })
    .from(actions)
    .where(and(eq(actions.state, 'queued'), lte(actions.expiresAt, now)))
    .all();
  const out: ActionRow[] = [];
  for (const d of due) {
    const reason = `not started within its time to live (by ${new Date(d.expiresAt).toISOString()}); it never runs late`;
    const row = transition(
      store,
      d.id,
      ['queued'],
      { state: 'expired', reason, finishedAt: now },
      'action.expired',
      now,
    );
    if (row) out.push(row);
  }
  return out;
}

/** Actions not yet final, oldest first: what the reconciler looks at. */
export function unfinishedActions(store: Store): ActionRow[] {
  return store.db
    .select()
    .from(actions)
    .where(inArray(actions.state, ['queued', 'running']))
    .orderBy(actions.createdAt)
    .all();
}

/** How many actions `principal` asked for since `since` (the rate limit's count). */
export function actionsAskedSince(store: Store, principal: string, since: number): number {
  const count = prepared(store, 'actions.askedSince', () =>
    store.db
      .select({ n: sql<number>`count(*)` })
      .from(actions)
      .where(and(eq(actions.principal, P('principal')), gte(actions.createdAt, P('since'))))
      .prepare(),
  );
  return count.get({ principal, since })?.n ?? 0;
}

export interface ActionFilter {
  state?: ActionState;
  cluster?: string;
  vmid?: number;
  since?: number;
  /** Newer than this id's row first: the page before it (listing is newest first). */
  before?: { createdAt: number; id: string };
  limit: number;
}

/** Newest first. */
export function listActions(store: Store, f: ActionFilter): ActionRow[] {
  const where = [
    f.state ? eq(actions.state, f.state) : undefined,
    f.cluster ? eq(actions.cluster, f.cluster) : undefined,
    f.vmid !== undefined ? eq(actions.vmid, f.vmid) : undefined,
    f.since !== undefined ? gte(actions.createdAt, f.since) : undefined,
    f.before
      ? sql`(${actions.createdAt} < ${f.before.createdAt} OR (${actions.createdAt} = ${f.before.createdAt} AND ${actions.id} < ${f.before.id}))`
      : undefined,
  ].filter((c) => c !== undefined);
  return store.db
    .select()
    .from(actions)
    .where(where.length ? and(...where) : undefined)
    .orderBy(desc(actions.createdAt), desc(actions.id))
    .limit(f.limit)
    .all();
}

// ---- confirmations ------------------------------------------------------------------------------

export interface Confirmation {
  tokenHash: string;
  requestHash: string;
  principal: string;
  ttlMs: number;
}

export function saveConfirmation(store: Store, c: Confirmation, now: number): void {
  const forgetOld = prepared(store, 'confirmations.forgetOld', () =>
    store.db
      .delete(actionConfirmations)
      .where(lt(actionConfirmations.expiresAt, P('before')))
      .prepare(),
  );
  const insert = prepared(store, 'confirmations.insert', () => prepareInsert(store.sqlite, actionConfirmations));
  store.write(() => {
    forgetOld.run({ before: now - 86_400_000 });
    insert.run({
      tokenHash: c.tokenHash,
      requestHash: c.requestHash,
      principal: c.principal,
      createdAt: now,
      expiresAt: now + c.ttlMs,
    });
  });
}

export type ConfirmationCheck = 'ok' | 'unknown' | 'used' | 'expired' | 'other-request' | 'other-principal';

/**
 * Spends a confirmation token on `requestHash`: `ok` only once, for that exact request and
 * principal, before it expires. A token shown with another request is not spent (the right
 * request can still use it).
 */
export function useConfirmation(
  store: Store,
  tokenHash: string,
  requestHash: string,
  principal: string,
  now: number,
): ConfirmationCheck {
  const find = prepared(store, 'confirmations.get', () =>
    store.db
      .select()
      .from(actionConfirmations)
      .where(eq(actionConfirmations.tokenHash, P('tokenHash')))
      .prepare(),
  );
  const spend = prepared(store, 'confirmations.spend', () =>
    store.db
      .update(actionConfirmations)
      .set({ usedAt: sql`${P('usedAt')}` })
      .where(eq(actionConfirmations.tokenHash, P('tokenHash')))
      .prepare(),
  );
  return store.write(() => {
    const c = find.get({ tokenHash });
    if (!c) return 'unknown';
    if (c.usedAt !== null) return 'used';
    if (c.expiresAt <= now) return 'expired';
    if (c.principal !== principal) return 'other-principal';
    if (c.requestHash !== requestHash) return 'other-request';
    spend.run({ usedAt: now, tokenHash });
    return 'ok';
  });
}

// ---- what an action is checked against ----------------------------------------------------------

export interface TargetGuest {
  cluster: string;
  vmid: number;
  type: 'qemu' | 'lxc';
  node: string;
  name: string | null;
  status: string;
  template: boolean;
  lock: string | null;
  /** The guest's row is stale (its node is offline or the cluster's last sync failed). */
  stale: boolean;
  clusterStale: boolean;
  lastSuccessAt: number | null;
  /** Its snapshots as last read, or null when never read. */
  snapshots: string[] | null;
}

/** Its snapshots as read; none read (no rows) with a parent in its config: unknown (null); no parent: none. */
function snapshotNames(json: string, parent: string | null): string[] | null {
  const names = JSON.parse(json) as string[];
  return names.length ? names : parent ? null : [];
}

/** Live guests with this vmid (in `cluster` when given): one, none, or one per cluster that has it. */
export function targetGuests(store: Store, vmid: number, cluster?: string): TargetGuest[] {
  const rows = prepared(store, `actions.targetGuests:${cluster === undefined ? 'any' : 'one'}`, () =>
    store.sqlite.prepare(
      `SELECT g.cluster, g.vmid, g.type, g.node, g.name, g.status, g.template, g.lock, g.stale,
              c.stale AS clusterStale, c.last_success_at AS lastSuccessAt,
              (SELECT json_group_array(s.name) FROM guest_snapshots s WHERE s.cluster = g.cluster AND s.vmid = g.vmid) AS snaps,
              g.snapshot_parent AS parent
       FROM guests g JOIN clusters c ON c.name = g.cluster
       WHERE g.vmid = ? AND g.deleted_at IS NULL ${cluster === undefined ? '' : 'AND g.cluster = ?'}
       ORDER BY g.cluster`,
    ),
  ).all(...(cluster === undefined ? [vmid] : [vmid, cluster])) as Array<Record<string, unknown>>;
  return rows.map((r) => ({
    cluster: r.cluster as string,
    vmid: r.vmid as number,
    type: r.type as 'qemu' | 'lxc',
    node: r.node as string,
    name: (r.name as string | null) ?? null,
    status: r.status as string,
    template: Boolean(r.template),
    lock: (r.lock as string | null) ?? null,
    stale: Boolean(r.stale),
    clusterStale: Boolean(r.clusterStale),
    lastSuccessAt: (r.lastSuccessAt as number | null) ?? null,
    snapshots: snapshotNames(r.snaps as string, (r.parent as string | null) ?? null),
  }));
}
