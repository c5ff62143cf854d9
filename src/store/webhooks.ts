/**
 * Webhook subscriptions and deliveries (schema.ts): the relay's step that turns committed events
 * into delivery rows and moves its cursor in the same transaction (so a crash loses no event and
 * makes none twice), the outcome of each attempt, replays, and what retention must keep.
 */
import { and, asc, desc, eq, gte, lte, sql, type SQL } from 'drizzle-orm';
import { newId } from './actions.js';
import { prepared } from './prepared.js';
import type { Store } from './db.js';
import { insertEvents } from './events.js';
import { events, webhookDeliveries, webhookRelay, webhookSubscriptions } from './schema.js';

export type SubscriptionRow = typeof webhookSubscriptions.$inferSelect;
export type DeliveryRow = typeof webhookDeliveries.$inferSelect;
export type EventRow = typeof events.$inferSelect;

export interface NewSubscription {
  url: string;
  description: string | null;
  /** Event type globs: `guest.*`, `action.failed`, `*`. */
  events: string[];
  cluster: string | null;
  tag: string | null;
  secret: string;
  source: 'cli' | 'config';
}

export function addSubscription(store: Store, s: NewSubscription, now: number): SubscriptionRow {
  const row: typeof webhookSubscriptions.$inferInsert = {
    id: newId('wh'),
    url: s.url,
    description: s.description,
    events: JSON.stringify(s.events),
    cluster: s.cluster,
    tag: s.tag?.toLowerCase() ?? null,
    secret: s.secret,
    source: s.source,
    createdAt: now,
    updatedAt: now,
  };
  return store.write(() => {
    // The first subscription hears what happens from now on, not the history since the relay last ran.
    const others =
      store.db
        .select({ n: sql<number>`count(*)` })
        .from(webhookSubscriptions)
        .get()?.n ?? 0;
    if (others === 0) {
      const newest = store.sqlite.prepare('SELECT coalesce(max(seq), 0) FROM events').pluck().get() as number;
      store.db
        .insert(webhookRelay)
        .values({ id: 1, lastSeq: newest, updatedAt: now })
        .onConflictDoUpdate({ target: webhookRelay.id, set: { lastSeq: newest, updatedAt: now } })
        .run();
    }
    return store.db.insert(webhookSubscriptions).values(row).returning().get();
  });
}

export const listSubscriptions = (store: Store): SubscriptionRow[] =>
  store.db.select().from(webhookSubscriptions).orderBy(asc(webhookSubscriptions.createdAt)).all();

export const getSubscription = (store: Store, id: string): SubscriptionRow | undefined =>
  prepared(store, 'webhooks.subscription', () =>
    store.db
      .select()
      .from(webhookSubscriptions)
      .where(eq(webhookSubscriptions.id, sql.placeholder('id')))
      .prepare(),
  ).get({ id });

export function updateSubscription(
  store: Store,
  id: string,
  fields: Partial<Omit<SubscriptionRow, 'id' | 'createdAt'>>,
  now: number,
): SubscriptionRow | undefined {
  return store.write(() =>
    store.db
      .update(webhookSubscriptions)
      .set({ ...fields, updatedAt: now })
      .where(eq(webhookSubscriptions.id, id))
      .returning()
      .get(),
  );
}

/** Disables a subscription because of what its deliveries met (410, days of failures), with its event. */
export function disableSubscription(
  store: Store,
  id: string,
  reason: string,
  now: number,
): SubscriptionRow | undefined {
  return store.write(() => {
    const row = store.db
      .update(webhookSubscriptions)
      .set({ enabled: false, disabledReason: reason, updatedAt: now })
      .where(and(eq(webhookSubscriptions.id, id), eq(webhookSubscriptions.enabled, true)))
      .returning()
      .get();
    if (row)
      insertEvents(
        store,
        [
          {
            type: 'webhook.disabled',
            cluster: row.cluster,
            subject: { kind: 'webhook', id: row.id },
            data: { subscription: row.id, reason, description: row.description },
          },
        ],
        now,
      );
    return row;
  });
}

export function removeSubscription(store: Store, id: string): boolean {
  return store.write(
    () => store.db.delete(webhookSubscriptions).where(eq(webhookSubscriptions.id, id)).run().changes > 0,
  );
}

/** A glob of event types: `*` any run of characters (`guest.*`, `*.failed`, `*`). */
export function typeMatches(globs: readonly string[], type: string): boolean {
  return globs.some((g) => new RegExp(`^${g.split('*').map(escapeRegExp).join('.*')}$`).test(type));
}
const escapeRegExp = (s: string): string => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');

/** The guest an event is about (a guest event's subject, an action's target), for the tag filter. */
function eventGuest(e: EventRow): { cluster: string; vmid: number } | undefined {
  if (!e.cluster) return undefined;
  if (e.subjectKind === 'guest') {
    const vmid = Number(e.subjectId.split('/').at(-1));
    return Number.isInteger(vmid) ? { cluster: e.cluster, vmid } : undefined;
  }
  if (e.subjectKind === 'action') {
    const vmid = (JSON.parse(e.data) as { vmid?: unknown }).vmid;
    return typeof vmid === 'number' ? { cluster: e.cluster, vmid } : undefined;
  }
  return undefined;
}

function matches(store: Store, s: SubscriptionRow, e: EventRow, globs: readonly string[]): boolean {
  if (!typeMatches(globs, e.type)) return false;
  if (s.cluster !== null && e.cluster !== s.cluster) return false;
  if (s.tag === null) return true;
  const guest = eventGuest(e);
  if (!guest) return false;
  const tagged = prepared(store, 'webhooks.tagged', () =>
    store.sqlite.prepare('SELECT 1 FROM guest_tags WHERE cluster = ? AND vmid = ? AND tag_key = ?'),
  );
  return tagged.get(guest.cluster, guest.vmid, s.tag) !== undefined;
}

export const relayCursor = (store: Store): number =>
  store.db.select({ lastSeq: webhookRelay.lastSeq }).from(webhookRelay).where(eq(webhookRelay.id, 1)).get()?.lastSeq ??
  0;

/**
 * One relay step: the committed events after the cursor (at most `limit`), a delivery row for
 * each enabled subscription that matches, and the cursor moved past them, in one transaction.
 * Answers the new deliveries (to enqueue).
 */
export function relayEvents(store: Store, now: number, limit = 500): DeliveryRow[] {
  return store.write(() => {
    const after = relayCursor(store);
    const batch = store.db
      .select()
      .from(events)
      .where(sql`${events.seq} > ${after}`)
      .orderBy(asc(events.seq))
      .limit(limit)
      .all();
    if (!batch.length) return [];
    const subs = store.db.select().from(webhookSubscriptions).where(eq(webhookSubscriptions.enabled, true)).all();
    const globs = new Map(subs.map((s) => [s.id, JSON.parse(s.events) as string[]]));
    const out: DeliveryRow[] = [];
    for (const e of batch)
      for (const s of subs) if (matches(store, s, e, globs.get(s.id)!)) out.push(insertDelivery(store, s.id, e, now));
    store.db
      .insert(webhookRelay)
      .values({ id: 1, lastSeq: batch.at(-1)!.seq, updatedAt: now })
      .onConflictDoUpdate({ target: webhookRelay.id, set: { lastSeq: batch.at(-1)!.seq, updatedAt: now } })
      .run();
    return out;
  });
}

function insertDelivery(store: Store, subscriptionId: string, e: EventRow, now: number): DeliveryRow {
  const insert = prepared(store, 'webhooks.insertDelivery', () =>
    store.db
      .insert(webhookDeliveries)
      .values({
        id: sql.placeholder('id'),
        subscriptionId: sql.placeholder('subscriptionId'),
        eventSeq: sql.placeholder('eventSeq'),
        eventId: sql.placeholder('eventId'),
        eventType: sql.placeholder('eventType'),
        state: 'pending',
        attempts: 0,
        nextAttemptAt: sql.placeholder('now'),
        createdAt: sql.placeholder('now'),
      })
      .returning()
      .prepare(),
  );
  return insert.get({ id: newId('msg'), subscriptionId, eventSeq: e.seq, eventId: e.id, eventType: e.type, now });
}

export interface DeliveryContext {
  delivery: DeliveryRow;
  subscription: SubscriptionRow;
  event: EventRow;
}

export function deliveryContext(store: Store, id: string): DeliveryContext | undefined {
  const delivery = prepared(store, 'webhooks.delivery', () =>
    store.db
      .select()
      .from(webhookDeliveries)
      .where(eq(webhookDeliveries.id, sql.placeholder('id')))
      .prepare(),
  ).get({ id });
  if (!delivery) return undefined;
  const subscription = getSubscription(store, delivery.subscriptionId);
  const event = prepared(store, 'webhooks.event', () =>
    store.db
      .select()
      .from(events)
      .where(eq(events.seq, sql.placeholder('seq')))
      .prepare(),
  ).get({ seq: delivery.eventSeq });
  return subscription && event ? { delivery, subscription, event } : undefined;
}

export interface AttemptRecord {
  /** pending: another attempt at `nextAttemptAt`; succeeded; failed: no more attempts (dead letter). */
  state: 'pending' | 'succeeded' | 'failed';
  status: number | null;
  error: string | null;
  response: string | null;
  nextAttemptAt: number | null;
}

/** A placeholder where drizzle's `set` takes SQL rather than a placeholder. */
const param = (name: string): SQL => sql`${sql.placeholder(name)}`;

/**
 * Records attempts (each only on a pending delivery) and the subscriptions' success or failing
 * streaks, many in one transaction (one fsync for the lot: at hundreds of deliveries a
 * second, a commit each was most of the service's time). Answers each delivery's row after the
 * update, or undefined where it was no longer pending, in the order given.
 */
export function recordAttempts(
  store: Store,
  list: ReadonlyArray<{ id: string; attempt: AttemptRecord }>,
  now: number,
): Array<DeliveryRow | undefined> {
  const update = prepared(store, 'webhooks.recordAttempt', () =>
    store.db
      .update(webhookDeliveries)
      .set({
        state: param('state'),
        attempts: sql`${webhookDeliveries.attempts} + 1`,
        lastStatus: param('status'),
        lastError: param('error'),
        lastResponse: param('response'),
        nextAttemptAt: param('nextAttemptAt'),
        finishedAt: param('finishedAt'),
      })
      .where(and(eq(webhookDeliveries.id, sql.placeholder('id')), eq(webhookDeliveries.state, 'pending')))
      .returning()
      .prepare(),
  );
  const succeeded = prepared(store, 'webhooks.subscriptionSucceeded', () =>
    store.db
      .update(webhookSubscriptions)
      .set({ lastSuccessAt: param('now'), failingSince: null })
      .where(eq(webhookSubscriptions.id, sql.placeholder('id')))
      .prepare(),
  );
  const failing = prepared(store, 'webhooks.subscriptionFailing', () =>
    store.db
      .update(webhookSubscriptions)
      .set({ failingSince: sql`coalesce(${webhookSubscriptions.failingSince}, ${sql.placeholder('now')})` })
      .where(eq(webhookSubscriptions.id, sql.placeholder('id')))
      .prepare(),
  );
  return store.write(() => {
    const rows = list.map(({ id, attempt: a }) =>
      update.get({
        id,
        state: a.state,
        status: a.status,
        error: a.error,
        response: a.response,
        nextAttemptAt: a.nextAttemptAt,
        finishedAt: a.state === 'pending' ? null : now,
      }),
    );
    // The subscription's streak once per subscription: the last outcome recorded for it decides.
    const last = new Map<string, AttemptRecord['state']>();
    for (const row of rows) if (row) last.set(row.subscriptionId, row.state);
    for (const [id, state] of last) (state === 'succeeded' ? succeeded : failing).run({ id, now });
    return rows;
  });
}

/** Deliveries still to attempt, oldest first: what the reconciler makes sure has a job. */
export const pendingDeliveries = (store: Store, limit = 10_000): DeliveryRow[] =>
  store.db
    .select()
    .from(webhookDeliveries)
    .where(eq(webhookDeliveries.state, 'pending'))
    .orderBy(asc(webhookDeliveries.createdAt))
    .limit(limit)
    .all();

export interface DeliveryFilter {
  subscriptionId?: string;
  failedOnly?: boolean;
  since?: number;
  limit: number;
}

export function listDeliveries(store: Store, f: DeliveryFilter): DeliveryRow[] {
  const where = [
    f.subscriptionId ? eq(webhookDeliveries.subscriptionId, f.subscriptionId) : undefined,
    f.failedOnly ? eq(webhookDeliveries.state, 'failed') : undefined,
    f.since !== undefined ? gte(webhookDeliveries.createdAt, f.since) : undefined,
  ].filter((c) => c !== undefined);
  return store.db
    .select()
    .from(webhookDeliveries)
    .where(where.length ? and(...where) : undefined)
    .orderBy(desc(webhookDeliveries.createdAt), desc(webhookDeliveries.id))
    .limit(f.limit)
    .all();
}

/**
 * New deliveries of past events to one subscription (its filters applied): since a time, or one
 * event by id. Each is a new delivery with the event's own id (webhook-id), so a receiver that
 * already has it can tell.
 */
export function replayEvents(
  store: Store,
  subscriptionId: string,
  which: { since: number } | { eventId: string },
  now: number,
  limit = 10_000,
): DeliveryRow[] {
  return store.write(() => {
    const s = getSubscription(store, subscriptionId);
    if (!s) return [];
    const globs = JSON.parse(s.events) as string[];
    const picked = store.db
      .select()
      .from(events)
      .where('since' in which ? gte(events.occurredAt, which.since) : eq(events.id, which.eventId))
      .orderBy(asc(events.seq))
      .limit(limit)
      .all();
    return picked
      .filter((e) => 'eventId' in which || matches(store, s, e, globs))
      .map((e) => insertDelivery(store, s.id, e, now));
  });
}

/**
 * The oldest event a pending delivery or the relay still needs: retention keeps it and all after
 * it. Undefined without subscriptions: nothing is waiting (a first subscription starts at the end).
 */
export function oldestNeededSeq(store: Store): number | undefined {
  if (!(
    store.db
      .select({ n: sql<number>`count(*)` })
      .from(webhookSubscriptions)
      .get()?.n ?? 0
  ))
    return undefined;
  const pending = store.db
    .select({ seq: sql<number | null>`min(${webhookDeliveries.eventSeq})` })
    .from(webhookDeliveries)
    .where(eq(webhookDeliveries.state, 'pending'))
    .get()?.seq;
  const relayed = relayCursor(store) + 1;
  return pending != null ? Math.min(pending, relayed) : relayed;
}

/** Subscriptions that are disabled, or whose deliveries fail since `failingSince`: problems to report. */
export function troubledSubscriptions(store: Store): SubscriptionRow[] {
  return store.db
    .select()
    .from(webhookSubscriptions)
    .where(sql`${webhookSubscriptions.enabled} = 0 OR ${webhookSubscriptions.failingSince} IS NOT NULL`)
    .all();
}

/** Subscriptions failing without a success since before `cutoff`: to be disabled. */
export const failingSince = (store: Store, cutoff: number): SubscriptionRow[] =>
  store.db
    .select()
    .from(webhookSubscriptions)
    .where(and(eq(webhookSubscriptions.enabled, true), lte(webhookSubscriptions.failingSince, cutoff)))
    .all();

/** Dead-letter depth per subscription. */
export function failedCounts(store: Store): Map<string, number> {
  const rows = store.db
    .select({ id: webhookDeliveries.subscriptionId, n: sql<number>`count(*)` })
    .from(webhookDeliveries)
    .where(eq(webhookDeliveries.state, 'failed'))
    .groupBy(webhookDeliveries.subscriptionId)
    .all();
  return new Map(rows.map((r) => [r.id, r.n]));
}
