/**
 * `serve` SIGKILLed mid-delivery and started again: no event is lost. Delivery is at least once: a
 * request the receiver had when the daemon died (held, so not yet recorded as delivered) is sent
 * again after the restart, and only such a request. Counted by webhook-id at a receiver verifying
 * with `standardwebhooks`; Redis is a test redis-server given as REDIS_URL, so it outlives the kill.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateWebhookSecret } from '../../src/webhooks/secret.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';
import { ok, startCountingReceiver, tally, type CountingReceiver } from './counting-receiver.js';
import { startServeHarness, until, type ServeHarness } from './serve-harness.js';
import { commitStatusChanges } from './events.js';

let h: ServeHarness;
let redis: TestRedis;
let receiver: CountingReceiver;

beforeAll(async () => {
  redis = await startTestRedis();
  h = await startServeHarness([{ name: 'lab', nodes: 2, guests: 10, seed: 5 }], {
    REDIS_URL: redis.url,
    WEBHOOK_RETRY_SCHEDULE: '0, 1s, 1s, 2s, 2s, 2s, 2s, 2s, 2s, 2s',
  });
}, 60_000);

afterAll(async () => {
  await receiver?.close();
  await h?.close();
  await redis?.stop();
});

describe('serve SIGKILLed mid-delivery', () => {
  it('after the restart every event has arrived; only requests in flight at the kill came twice', async () => {
    const secret = generateWebhookSecret();
    receiver = await startCountingReceiver(secret, () => ({ status: 204, delayMs: 1_500 }));
    const sub = h.subscribe(receiver.url, ['guest.*'], { cluster: 'crash', secret });
    const first = await h.serve();
    await first.waitForLog('webhook delivery started');

    commitStatusChanges(h.store, 'crash', 60);
    const ids = h
      .events(0)
      .filter((e) => e.cluster === 'crash')
      .map((e) => e.id);
    expect(ids).toHaveLength(60);

    await until(
      'some deliveries done and more held',
      () => receiver.acceptedCounts().size >= 8 && receiver.arrivals.filter((x) => x.status === undefined).length >= 2,
      30_000,
    );
    await first.kill('SIGKILL');
    const killedAt = Date.now();
    const arrivedBefore = new Set(receiver.arrivals.map((a) => a.id));
    const recorded = new Set(
      h.store.sqlite
        .prepare("SELECT event_id FROM webhook_deliveries WHERE subscription_id = ? AND state = 'succeeded'")
        .pluck()
        .all(sub.id) as string[],
    );
    // In flight at the kill: reached the receiver, not recorded as delivered.
    const inFlight = new Set([...arrivedBefore].filter((id) => !recorded.has(id)));
    expect(inFlight.size).toBeGreaterThan(0);
    expect(inFlight.size).toBeLessThanOrEqual(4); // one subscription's share of the slots

    receiver.behave(ok);
    await sleep(500);
    const second = await h.serve();
    await second.waitForLog('webhook delivery started');
    // The held jobs are taken back at the start, not after BullMQ's lock lapses and its stalled
    // check runs (up to a minute).
    await until('every event accepted', () => ids.every((id) => receiver.acceptedCounts().has(id)), 20_000);
    await sleep(1_000);

    const arrivals = tally(receiver.arrivals.map((a) => a.id));
    expect([...arrivals.keys()].sort()).toEqual([...ids].sort());
    const twice = [...arrivals].filter(([, n]) => n > 1).map(([id]) => id);
    expect(
      twice.every((id) => inFlight.has(id)),
      `came twice: ${twice.join(', ')}`,
    ).toBe(true);
    expect(arrivals.size).toBe(60);
    expect(Math.max(...arrivals.values())).toBeLessThanOrEqual(2);
    // Nothing recorded as delivered before the kill was sent again after it.
    const after = receiver.arrivals.filter((a) => a.at > killedAt);
    expect(after.filter((a) => recorded.has(a.id))).toEqual([]);
    expect(receiver.arrivals.every((a) => a.verified)).toBe(true);
    const states = h.deliveries(sub.id).map((d) => d.state);
    expect(states).toHaveLength(60);
    expect(states.every((s) => s === 'succeeded')).toBe(true);
  }, 150_000);
});
