/**
 * The webhook reconciler against a real Redis and SQLite file: a delivery whose job ended in
 * Redis's failed list while its row stayed pending (the attempt threw before recording its
 * outcome) would wait for good, because BullMQ ignores an add under an id it still holds. The
 * reconciler removes the ended job and adds it again, and the event is delivered.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, Worker } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { redisConnection } from '../../src/queue/redis.js';
import { openStore } from '../../src/store/db.js';
import { insertEvents } from '../../src/store/events.js';
import { listDeliveries, relayEvents } from '../../src/store/webhooks.js';
import { startWebhooks, WEBHOOKS_QUEUE, type Webhooks } from '../../src/webhooks/service.js';
import { createAddressPolicy, createWebhookAgent } from '../../src/webhooks/ssrf.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';
import { answer, startReceiver, type Receiver } from './receiver.js';
import { subscribe } from './subscriptions.js';

const dir = mkdtempSync(join(tmpdir(), 'pi-webhook-reconcile-'));
const store = openStore(join(dir, 'inventory.db'));
let redis: TestRedis | undefined;
let receiver: Receiver | undefined;
let webhooks: Webhooks | undefined;

afterAll(async () => {
  await webhooks?.stop();
  await receiver?.close();
  await redis?.stop();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the webhook reconciler', () => {
  it('replaces a job that failed in Redis while its delivery stayed pending, and the event is delivered', async () => {
    redis = await startTestRedis();
    receiver = await startReceiver(answer(204));
    subscribe(store, receiver.url);
    store.write(() =>
      insertEvents(
        store,
        [
          {
            type: 'guest.status_changed',
            cluster: 'lab',
            subject: { kind: 'guest', id: 'lab/100' },
            data: { vmid: 100, from: 'stopped', to: 'running' },
          },
        ],
        Date.now(),
      ),
    );
    const [delivery] = relayEvents(store, Date.now());
    expect(delivery).toBeDefined();

    // Its job, taken by a worker that throws before any outcome is recorded: failed in Redis, pending in SQLite.
    const queue = new Queue(WEBHOOKS_QUEUE, { connection: redisConnection(redis.url, 'queue') });
    await queue.add('deliver', { deliveryId: delivery!.id }, { jobId: `${delivery!.id}-0`, removeOnFail: 1000 });
    const failing = new Worker(
      WEBHOOKS_QUEUE,
      async () => {
        throw new Error('the process broke before recording');
      },
      { connection: redisConnection(redis.url, 'worker') },
    );
    const deadline = Date.now() + 15_000;
    while ((await queue.getJobState(`${delivery!.id}-0`)) !== 'failed') {
      if (Date.now() > deadline) throw new Error('the job never failed');
      await sleep(50);
    }
    await failing.close();
    await queue.close();
    expect(listDeliveries(store, { limit: 10 }).map((d) => d.state)).toEqual(['pending']);

    webhooks = startWebhooks({
      store,
      connection: redisConnection(redis.url, 'worker'),
      agent: createWebhookAgent({ policy: createAddressPolicy(['127.0.0.1/32']) }),
      log: createLogger({ level: 'silent' }),
      now: Date.now,
      settings: { relayEveryMs: 50, reconcileEveryMs: 60_000 }, // only the reconcile at start
    });
    const until = Date.now() + 15_000;
    while (receiver.received.length === 0 && Date.now() < until) await sleep(50);
    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0]!.headers['webhook-id']).toBe(delivery!.eventId);
    await sleep(300);
    expect(listDeliveries(store, { limit: 10 }).map((d) => d.state)).toEqual(['succeeded']);
  }, 40_000);
});
