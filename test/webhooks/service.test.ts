/**
 * The webhook relay and delivery worker on a real SQLite file and a real Redis: committed events
 * become one delivery per matching subscription, each POSTed signed (verified at a real receiver
 * with the `standardwebhooks` package), retried on a shortened schedule while the receiver fails,
 * and never delivered twice once it succeeded; 410 disables the subscription with an event.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { redisConnection } from '../../src/queue/redis.js';
import { openStore, type Store } from '../../src/store/db.js';
import { insertEvents, type NewEvent } from '../../src/store/events.js';
import { getSubscription, listDeliveries } from '../../src/store/webhooks.js';
import { startWebhooks, type Webhooks } from '../../src/webhooks/service.js';
import { createAddressPolicy, createWebhookAgent } from '../../src/webhooks/ssrf.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';
import { connectClient } from '../mcp/connect.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { answer, startReceiver, type Receiver, type Respond } from './receiver.js';
import { subscribe } from './subscriptions.js';

const log = createLogger({ level: 'silent' });
let dir: string;
let store: Store;
let redis: TestRedis;
let webhooks: Webhooks;

const guestEvent = (vmid: number, type: NewEvent['type'] = 'guest.status_changed'): NewEvent => ({
  type,
  cluster: 'prod',
  subject: { kind: 'guest', id: `prod/${vmid}` },
  data: { vmid, name: `vm-${vmid}`, from: 'stopped', to: 'running' },
});

async function until(check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pi-webhooks-'));
  store = openStore(join(dir, 'inventory.db'));
  redis = await startTestRedis();
  const agent = createWebhookAgent({ policy: createAddressPolicy(['127.0.0.1/32']) });
  webhooks = startWebhooks({
    store,
    connection: redisConnection(redis.url, 'worker'),
    agent,
    log,
    now: Date.now,
    settings: { relayEveryMs: 50, timeoutMs: 2_000, schedule: [0, 200, 400, 400] },
  });
}, 30_000);

afterAll(async () => {
  await webhooks?.stop();
  store?.close();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const subscribeTo = (receiver: Receiver, events: string[], extra: { tag?: string; cluster?: string } = {}) =>
  subscribe(store, receiver.url, { events, ...extra });

describe('webhook relay and delivery', () => {
  it('delivers each matching event once, signed, in an envelope with seq; filters honoured', async () => {
    const receiver = await startReceiver(answer(204));
    const other = await startReceiver(answer(204));
    const { secret } = subscribeTo(receiver, ['guest.*']);
    subscribeTo(other, ['action.failed'], { cluster: 'prod' });
    store.write(() =>
      insertEvents(
        store,
        [1, 2, 3].map((v) => guestEvent(v)),
        Date.now(),
      ),
    );
    await until(() => receiver.received.length >= 3);
    await new Promise((r) => setTimeout(r, 500)); // nothing more arrives
    expect(receiver.received).toHaveLength(3);
    expect(other.received).toHaveLength(0);
    const verifier = new Webhook(secret);
    const bodies = receiver.received.map((r) => {
      const headers = {
        'webhook-id': String(r.headers['webhook-id']),
        'webhook-timestamp': String(r.headers['webhook-timestamp']),
        'webhook-signature': String(r.headers['webhook-signature']),
      };
      return verifier.verify(r.body, headers) as { version: number; id: string; seq: number; data: { vmid: number } };
    });
    expect(bodies.map((b) => b.version)).toEqual([1, 1, 1]);
    expect(new Set(bodies.map((b) => b.id)).size).toBe(3);
    expect(bodies.map((b) => b.data.vmid).sort()).toEqual([1, 2, 3]);
    expect(receiver.received.every((r) => r.headers['content-type'] === 'application/json')).toBe(true);
    expect(String(receiver.received[0]!.headers['user-agent'])).toMatch(/^proxmox-inventory\//);
    await receiver.close();
    await other.close();
  }, 30_000);

  it('retries while the receiver fails and delivers once it answers; the same webhook-id each time', async () => {
    let failing = 2;
    const respond: Respond = (_req, res) => {
      if (failing-- > 0) res.writeHead(500).end('down');
      else res.writeHead(200).end('ok');
    };
    const receiver = await startReceiver(respond);
    subscribeTo(receiver, ['guest.created']);
    store.write(() => insertEvents(store, [guestEvent(10, 'guest.created')], Date.now()));
    await until(() => receiver.received.length >= 3);
    await new Promise((r) => setTimeout(r, 600));
    expect(receiver.received).toHaveLength(3);
    expect(new Set(receiver.received.map((r) => r.headers['webhook-id'])).size).toBe(1);
    await receiver.close();
  }, 30_000);

  it('410 disables the subscription with a webhook.disabled event, and nothing more is sent to it', async () => {
    const receiver = await startReceiver(answer(410));
    const sub = subscribeTo(receiver, ['guest.deleted']);
    store.write(() => insertEvents(store, [guestEvent(20, 'guest.deleted')], Date.now()));
    await until(() => getSubscription(store, sub.id)?.enabled === false);
    expect(getSubscription(store, sub.id)?.disabledReason).toMatch(/410/);
    const disabled = store.sqlite
      .prepare("SELECT count(*) FROM events WHERE type = 'webhook.disabled' AND subject_id = ?")
      .pluck()
      .get(sub.id);
    expect(disabled).toBe(1);
    store.write(() => insertEvents(store, [guestEvent(21, 'guest.deleted')], Date.now()));
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.received).toHaveLength(1);
    // sync_status and inventory_overview report it, by id and host: never the URL's path or a secret.
    const client = await connectClient(store, 'webhook-health-test');
    for (const tool of ['sync_status', 'inventory_overview']) {
      const r = (await client.callTool({ name: tool, arguments: {} })) as CallToolResult;
      const text = (r.content[0] as { text: string }).text;
      expect(text, tool).toContain(
        `webhook ${sub.id} → 127.0.0.1:${receiver.port}: DISABLED ("the receiver answered 410 Gone")`,
      );
      expect(JSON.stringify(r), tool).not.toContain('/hook');
      expect(JSON.stringify(r), tool).not.toContain('whsec_');
    }
    await client.close();
    await receiver.close();
  }, 30_000);

  it('exhausting the schedule leaves a dead letter with the last status', async () => {
    const receiver = await startReceiver(answer(503, {}, 'busy'));
    const sub = subscribeTo(receiver, ['guest.migrated']);
    store.write(() => insertEvents(store, [guestEvent(30, 'guest.migrated')], Date.now()));
    await until(() => listDeliveries(store, { subscriptionId: sub.id, failedOnly: true, limit: 5 }).length === 1);
    const [dead] = listDeliveries(store, { subscriptionId: sub.id, limit: 5 });
    expect(dead).toMatchObject({ state: 'failed', attempts: 4, lastStatus: 503, lastResponse: 'busy' });
    expect(receiver.received).toHaveLength(4);
    await receiver.close();
  }, 30_000);
});
