/**
 * Receivers misbehaving, against `serve` as its own process (a shortened retry schedule through
 * WEBHOOK_RETRY_SCHEDULE), counted by webhook-id at receivers verifying with `standardwebhooks`:
 * a receiver down (connection refused, then 503) and back loses nothing and accepts nothing twice;
 * a slow one times out without holding up another subscription; a 308 is never followed; a 429's
 * Retry-After is waited for. Events are committed into serve's inventory by this process (the
 * simulator's path to events is the end-to-end test's); each scenario's subscription filters on a
 * cluster name of its own, so the scenarios never see each other's events.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateWebhookSecret } from '../../src/webhooks/secret.js';
import { ok, startCountingReceiver, type CountingReceiver } from './counting-receiver.js';
import { startServeHarness, until, type ServeHarness } from './serve-harness.js';
import { commitStatusChanges } from './events.js';

let h: ServeHarness;
const receivers: CountingReceiver[] = [];
const TIMEOUT_S = 5;

beforeAll(async () => {
  h = await startServeHarness([{ name: 'lab', nodes: 2, guests: 10, seed: 3 }], {
    WEBHOOK_RETRY_SCHEDULE: '0, 1s, 1s, 2s, 2s, 2s, 2s, 2s, 2s, 2s, 2s, 2s, 2s, 2s',
    WEBHOOK_TIMEOUT_SECONDS: String(TIMEOUT_S),
  });
  // A first subscription, so serve starts delivery at once; it hears only cluster "lab".
  const first = await receiver();
  h.subscribe(first.receiver.url, ['*'], { cluster: 'lab', secret: first.secret });
  const serve = await h.serve();
  await serve.waitForLog('webhook delivery started');
}, 90_000);

afterAll(async () => {
  for (const r of receivers) await r.close();
  await h?.close();
});

async function receiver(): Promise<{ receiver: CountingReceiver; secret: string }> {
  const secret = generateWebhookSecret();
  const r = await startCountingReceiver(secret);
  receivers.push(r);
  return { receiver: r, secret };
}

async function subscribed(cluster: string): Promise<CountingReceiver> {
  const { receiver: r, secret } = await receiver();
  h.subscribe(r.url, ['guest.*'], { cluster, secret });
  return r;
}

/** Commits `n` events about guests of `cluster` in one transaction; answers their ids. */
function commit(cluster: string, n: number): string[] {
  const before = h.store.sqlite.prepare('SELECT coalesce(max(seq), 0) FROM events').pluck().get() as number;
  commitStatusChanges(h.store, cluster, n);
  return h
    .events(before)
    .filter((e) => e.cluster === cluster)
    .map((e) => e.id);
}

/** Deliveries to `cluster`'s subscriber that have been attempted at least once. */
function attemptedDeliveries(cluster: string): number {
  return h.store.sqlite
    .prepare(
      'SELECT count(*) FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id WHERE s.cluster = ? AND d.attempts >= 1',
    )
    .pluck()
    .get(cluster) as number;
}

describe('receivers that fail', () => {
  it('down (refused, then 503) and back: every event accepted exactly once, none lost', async () => {
    const r = await subscribed('outage');
    await r.down();
    const ids = commit('outage', 30);
    // Every delivery's first attempt meets the closed port before the receiver comes back; a fixed
    // sleep here let a loaded machine reach some events only after up(), with one failure fewer.
    await until('every first attempt refused', () => attemptedDeliveries('outage') === ids.length, 20_000);
    r.behave(() => ({ status: 503 })); // before up(): a retry arriving in between would otherwise get a 204
    await r.up();
    await until('503s', () => r.arrivals.filter((a) => a.status === 503).length >= 30, 20_000);
    r.behave(ok);
    await until('every event accepted', () => r.acceptedCounts().size === ids.length, 60_000);
    await sleep(1_500); // nothing more arrives
    const accepted = r.acceptedCounts();
    expect([...accepted.keys()].sort()).toEqual([...ids].sort());
    expect([...accepted.values()].every((n) => n === 1)).toBe(true);
    // An id came again only after an attempt that failed: each arrival but its last was answered 503.
    for (const [id, arrivals] of groupById(r)) {
      expect(
        arrivals.slice(0, -1).every((a) => a.status === 503),
        id,
      ).toBe(true);
      expect(arrivals.at(-1)!.status, id).toBe(204);
    }
    expect(r.arrivals.every((a) => a.verified)).toBe(true);
    const rows = h.store.sqlite
      .prepare(
        "SELECT state, attempts, last_error FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id WHERE s.cluster = 'outage'",
      )
      .all() as Array<{ state: string; attempts: number }>;
    expect(rows).toHaveLength(30);
    expect(rows.every((row) => row.state === 'succeeded' && row.attempts >= 3)).toBe(true); // refused, 503, 204
  }, 100_000);

  it('a slow receiver times out without holding up another subscription', async () => {
    const slow = await subscribed('slow');
    slow.behave(() => ({ status: 204, delayMs: 60_000 }));
    const fast = await subscribed('fast');
    // The slow subscription's deliveries are queued first, more of them than there are slots (16).
    const slowIds = commit('slow', 40);
    const committed = Date.now();
    const fastIds = commit('fast', 40);
    await until('the fast receiver to have every event', () => fast.acceptedCounts().size === fastIds.length, 30_000);
    const last = Math.max(...fast.arrivals.map((a) => a.at));
    // Before the first of the slow attempts could even time out: no fast delivery waited for a slot.
    expect(last - committed).toBeLessThan(TIMEOUT_S * 1_000);
    expect([...fast.acceptedCounts().values()].every((n) => n === 1)).toBe(true);
    // The slow receiver was tried, and its attempts end as timeouts to be retried.
    await until(
      'a timed-out slow attempt',
      () =>
        h.store.sqlite
          .prepare("SELECT count(*) FROM webhook_deliveries WHERE last_error LIKE '%did not answer within 5 s%'")
          .pluck()
          .get() as number,
      20_000,
    );
    expect(new Set(slow.arrivals.map((a) => a.id)).size).toBeGreaterThan(0);
    expect(slowIds.every((id) => !fast.arrivals.some((a) => a.id === id))).toBe(true);
    slow.behave(ok); // its retries drain instead of holding slots into the next tests
  }, 60_000);

  it('a 308 is never followed: the target it names sees nothing', async () => {
    const second = (await receiver()).receiver;
    const r = await subscribed('redirect');
    r.behave(() => ({ status: 308, headers: { location: second.url } }));
    const [id] = commit('redirect', 1);
    await until('two attempts', () => r.arrivals.length >= 2, 20_000);
    expect(r.arrivals.every((a) => a.id === id && a.status === 308)).toBe(true);
    expect(second.connections).toBe(0);
    const row = h.store.sqlite
      .prepare('SELECT state, last_status, last_error FROM webhook_deliveries WHERE event_id = ?')
      .get(id) as { state: string; last_status: number; last_error: string };
    expect(row).toMatchObject({ state: 'pending', last_status: 308 });
    expect(row.last_error).toBe('the receiver answered 308 (a redirect, which webhooks never follow)');
  }, 40_000);

  it("429 with Retry-After: the next attempt waits that long, not the schedule's 1 s", async () => {
    const r = await subscribed('throttled');
    let answered = 0;
    r.behave(() => (answered++ === 0 ? { status: 429, headers: { 'retry-after': '4' } } : { status: 204 }));
    const [id] = commit('throttled', 1);
    await until('the retry', () => r.arrivals.length >= 2 && r.arrivals[1]!.status, 20_000);
    const [first, second] = r.arrivals;
    expect([first!.id, second!.id]).toEqual([id, id]);
    expect(second!.at - first!.answeredAt!).toBeGreaterThanOrEqual(3_900);
    expect(second!.at - first!.answeredAt!).toBeLessThan(8_000);
    expect(second!.status).toBe(204);
  }, 40_000);
});

function groupById(r: CountingReceiver): Map<string, CountingReceiver['arrivals']> {
  const out = new Map<string, CountingReceiver['arrivals']>();
  for (const a of r.arrivals) out.set(a.id, [...(out.get(a.id) ?? []), a]);
  return out;
}
