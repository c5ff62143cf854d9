/**
 * Per-subscription slots in the delivery worker (service.ts subscriptionSlots), on a real SQLite
 * file, a real Redis and real receivers: a subscription's backlog waits in the process for its
 * `perSubscription` slots instead of going back to Redis for `busyDelayMs` (set to a minute here,
 * so a delivery put back would miss the deadline), never more than that many at the receiver at
 * once; and a receiver that hangs holds at most half of the worker's slots, so another
 * subscription's deliveries still go out.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { redisConnection } from '../../src/queue/redis.js';
import { openStore, type Store } from '../../src/store/db.js';
import { startWebhooks, type Webhooks } from '../../src/webhooks/service.js';
import { createAddressPolicy, createWebhookAgent } from '../../src/webhooks/ssrf.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';
import { startReceiver, type Receiver } from './receiver.js';
import { commitStatusChanges } from './events.js';
import { subscribe } from './subscriptions.js';

const log = createLogger({ level: 'silent' });
let dir: string;
let store: Store;
let redis: TestRedis;
let webhooks: Webhooks;
const receivers: Receiver[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pi-webhook-slots-'));
  store = openStore(join(dir, 'inventory.db'));
  redis = await startTestRedis();
  webhooks = startWebhooks({
    store,
    connection: redisConnection(redis.url, 'worker'),
    agent: createWebhookAgent({ policy: createAddressPolicy(['127.0.0.1/32']) }),
    log,
    now: Date.now,
    settings: { relayEveryMs: 50, concurrency: 16, perSubscription: 2, busyDelayMs: 60_000, timeoutMs: 30_000 },
  });
}, 30_000);

afterAll(async () => {
  await webhooks?.stop();
  for (const r of receivers) await r.close();
  store?.close();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A receiver that answers 204 after `delayMs` (or when `held` lets go) and counts requests open at once. */
async function countingReceiver(opts: { delayMs?: number; held?: Promise<void> }) {
  const state = { open: 0, most: 0, done: 0 };
  const r = await startReceiver(async (_request, response) => {
    state.most = Math.max(state.most, ++state.open);
    if (opts.held) await opts.held;
    else await new Promise((resolve) => setTimeout(resolve, opts.delayMs ?? 0));
    state.open--;
    state.done++;
    response.writeHead(204).end();
  });
  receivers.push(r);
  return { receiver: r, state };
}

const subscribeTo = (receiver: Receiver, cluster: string): void => void subscribe(store, receiver.url, { cluster });

function commit(cluster: string, n: number): void {
  commitStatusChanges(store, cluster, n);
}

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('per-subscription slots', () => {
  it('a backlog waits in the process for its slots: all delivered promptly, never more than perSubscription at once', async () => {
    const { receiver, state } = await countingReceiver({ delayMs: 100 });
    subscribeTo(receiver, 'backlog');
    commit('backlog', 6); // 2 sending + 4 waiting: within half of the 16 slots, none goes back to Redis
    await until('all six delivered', () => state.done === 6, 20_000);
    expect(state.most).toBe(2);
  }, 30_000);

  it('a hanging receiver holds at most half of the slots; another subscription is still delivered', async () => {
    let letGo!: () => void;
    const held = new Promise<void>((resolve) => (letGo = resolve));
    const hanging = await countingReceiver({ held });
    const fast = await countingReceiver({});
    subscribeTo(hanging.receiver, 'hanging');
    subscribeTo(fast.receiver, 'fast');
    commit('hanging', 30); // enough to take every slot if nothing capped them
    await until('the hanging receiver to hold its two', () => hanging.state.open === 2, 20_000);
    commit('fast', 5);
    await until('the other subscription delivered', () => fast.state.done === 5, 20_000);
    expect(hanging.state.most).toBe(2);
    letGo();
  }, 40_000);
});
