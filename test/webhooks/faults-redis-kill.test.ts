/**
 * Redis SIGKILLed mid-delivery and restarted on its AOF, under a running `serve` (REDIS_URL to a
 * test redis-server): SQLite holds each delivery's state, so no event is lost and none is accepted
 * twice. Events committed while Redis is down get their rows from the relay and their jobs from the
 * reconciler once it is back; jobs the AOF lost (fsynced every second) are found the same way.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateWebhookSecret } from '../../src/webhooks/secret.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';
import { startCountingReceiver, tally, type CountingReceiver } from './counting-receiver.js';
import { startServeHarness, until, type ServeHarness } from './serve-harness.js';
import { commitStatusChanges } from './events.js';

let h: ServeHarness;
let redis: TestRedis;
let receiver: CountingReceiver;

beforeAll(async () => {
  redis = await startTestRedis();
  h = await startServeHarness([{ name: 'lab', nodes: 2, guests: 10, seed: 6 }], {
    REDIS_URL: redis.url,
    WEBHOOK_RETRY_SCHEDULE: '0, 1s, 1s, 2s, 2s, 2s, 2s, 2s, 2s, 2s',
  });
}, 60_000);

afterAll(async () => {
  await receiver?.close();
  await h?.close();
  await redis?.stop();
});

function commit(n: number, from: number): void {
  commitStatusChanges(h.store, 'redis-crash', n, from);
}

describe('Redis SIGKILLed mid-delivery', () => {
  it('after Redis restarts every event is accepted exactly once, those committed while it was down too', async () => {
    const secret = generateWebhookSecret();
    receiver = await startCountingReceiver(secret, () => ({ status: 204, delayMs: 300 }));
    const sub = h.subscribe(receiver.url, ['guest.*'], { cluster: 'redis-crash', secret });
    const serve = await h.serve();
    await serve.waitForLog('webhook delivery started');

    commit(60, 100);
    await until('deliveries under way', () => receiver.acceptedCounts().size >= 10, 30_000);
    await redis.kill('SIGKILL');
    commit(20, 500); // relayed into rows while Redis is away; their jobs cannot be added
    await sleep(2_000);
    await redis.restart();

    const ids = h
      .events(0)
      .filter((e) => e.cluster === 'redis-crash')
      .map((e) => e.id);
    expect(ids).toHaveLength(80);
    // The reconciler (every 30 s) gives back the jobs Redis never got or lost.
    await until('every event accepted', () => ids.every((id) => receiver.acceptedCounts().has(id)), 90_000);
    await sleep(1_000);

    const accepted = receiver.acceptedCounts();
    expect([...accepted.keys()].sort()).toEqual([...ids].sort());
    expect([...accepted.values()].every((n) => n === 1)).toBe(true);
    // An id reached the receiver again only if its earlier request was not answered 2xx.
    expect(Math.max(...tally(receiver.arrivals.filter((a) => a.status === 204).map((a) => a.id)).values())).toBe(1);
    expect(receiver.arrivals.every((a) => a.verified)).toBe(true);
    const rows = h.deliveries(sub.id);
    expect(rows).toHaveLength(80);
    expect(rows.every((r) => r.state === 'succeeded')).toBe(true);
    expect(serve.child.exitCode).toBeNull(); // serve lived through it
  }, 150_000);
});
