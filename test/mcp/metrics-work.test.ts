/**
 * The action and webhook series of /metrics after real work: a power action run by the worker on
 * a real Redis against the simulator, and its events delivered by the webhook worker to one
 * receiver that takes them and one that answers 500 (a dead letter with a one-attempt schedule).
 * The canary's age appears once the worker has taken it. No label carries an action, delivery or
 * subscription id.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/metrics.js';
import { redisConnection } from '../../src/queue/redis.js';
import type { ActionWorker } from '../../src/actions/queue.js';
import { startWebhooks, type Webhooks } from '../../src/webhooks/service.js';
import { createAddressPolicy, createWebhookAgent } from '../../src/webhooks/ssrf.js';
import { startActionHarness, type ActionHarness } from '../actions/harness.js';
import { answer, startReceiver, type Receiver } from '../webhooks/receiver.js';
import { subscribe } from '../webhooks/subscriptions.js';

const P = 'proxmox_inventory_';
let h: ActionHarness;
let worker: ActionWorker;
let webhooks: Webhooks;
let taker: Receiver;
let refuser: Receiver;

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const subscribeTo = (receiver: Receiver, events: string[]): void => void subscribe(h.store, receiver.url, { events });

/** `name{labels} value` lines as [series, value]. */
async function scrape(): Promise<Map<string, number>> {
  const text = await createMetrics(h.store).scrape();
  const lines = text.split('\n').filter((l) => l && !l.startsWith('#'));
  return new Map(lines.map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))]));
}

beforeAll(async () => {
  h = await startActionHarness({ guests: 20, nodes: 2, seed: 1331 });
  worker = h.startWorker();
  taker = await startReceiver(answer(204));
  refuser = await startReceiver(answer(500));
  subscribeTo(taker, ['action.*']);
  subscribeTo(refuser, ['action.queued']);
  webhooks = startWebhooks({
    store: h.store,
    connection: redisConnection(h.redis.url, 'worker'),
    prefix: h.prefix,
    agent: createWebhookAgent({ policy: createAddressPolicy(['127.0.0.1/32']) }),
    log: h.log,
    now: Date.now,
    settings: { relayEveryMs: 50, timeoutMs: 2_000, schedule: [0] },
  });
}, 60_000);

afterAll(async () => {
  await webhooks?.stop();
  await worker?.stop();
  await taker?.close();
  await refuser?.close();
  await h?.close();
});

describe('/metrics after an action and its webhook deliveries', () => {
  it('counts the action by kind and final state, the deliveries by outcome, the dead letter, and the canary age', async () => {
    await until('canary', () => worker.canaryAt() !== undefined);
    const guest = h.take('qemu', 'stopped');
    const submitted = await h.submit('start', guest.vmid);
    const row = await h.waitFinal(submitted.action.id);
    expect(row.state).toBe('succeeded');
    await until('deliveries', () => taker.received.length >= 3 && refuser.received.length >= 1);
    await until('the dead letter', () => {
      const n = h.store.sqlite.prepare("SELECT count(*) FROM webhook_deliveries WHERE state = 'failed'").pluck().get();
      return n === 1;
    });

    const m = await scrape();
    expect(m.get(`${P}actions_finished_total{kind="start",state="succeeded"}`)).toBe(1);
    expect(m.get(`${P}actions_running`)).toBe(0);
    expect(m.get(`${P}actions{state="queued"}`)).toBe(0);
    expect(m.get(`${P}actions{state="running"}`)).toBe(0);
    expect(m.get(`${P}webhook_delivery_attempts_total{outcome="success"}`)).toBeGreaterThanOrEqual(3);
    expect(m.get(`${P}webhook_delivery_attempts_total{outcome="retry"}`)).toBe(1);
    expect(m.get(`${P}webhook_dead_letters`)).toBe(1);
    const canaryAge = m.get(`${P}action_worker_canary_age_seconds`);
    expect(canaryAge).toBeGreaterThanOrEqual(0);
    expect(canaryAge).toBeLessThan(30);

    const labels = [...m.keys()].join('\n');
    expect(labels).not.toMatch(/act_|msg_|wh_|evt_/);
    expect(labels).not.toContain(`"${guest.vmid}"`);
  }, 60_000);
});
