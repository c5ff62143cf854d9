import { Writable } from 'node:stream';
import { Webhook } from 'standardwebhooks';
import type { Agent } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { Secret } from '../../src/secret.js';
import { defaultUserAgent, deliver, retryAfter, type DeliveryOutcome } from '../../src/webhooks/deliver.js';
import { generateWebhookSecret } from '../../src/webhooks/secret.js';
import { createAddressPolicy, createWebhookAgent } from '../../src/webhooks/ssrf.js';
import { answer, startReceiver, type Receiver, type Respond } from './receiver.js';

// Receivers listen on loopback, which the policy refuses: the tests reach them through the
// operator allowlist, as a homelab operator would reach a receiver on their LAN.
let agent: Agent;
const receivers: Receiver[] = [];
const secret = generateWebhookSecret();

beforeAll(() => {
  agent = createWebhookAgent({ policy: createAddressPolicy(['127.0.0.1/32']) });
});
afterEach(async () => {
  await Promise.all(receivers.splice(0).map((receiver) => receiver.close()));
});
afterAll(() => agent.close());

async function receiver(respond: Respond): Promise<Receiver> {
  const started = await startReceiver(respond);
  receivers.push(started);
  return started;
}

const now = (): number => Math.floor(Date.now() / 1000);

function send(url: string, overrides: Partial<Parameters<typeof deliver>[0]> = {}): Promise<DeliveryOutcome> {
  return deliver({
    url,
    body: JSON.stringify({ version: 1, id: 'evt_1', type: 'guest.created', seq: 1 }),
    id: 'evt_1',
    timestamp: now(),
    secrets: [secret],
    agent,
    ...overrides,
  });
}

/** Answers 204 to a request the standardwebhooks package verifies, 401 otherwise. */
const verifying =
  (...secrets: string[]): Respond =>
  (request, response) => {
    const headers = request.headers as Record<string, string>;
    const verified = secrets.every((s) => {
      try {
        new Webhook(s).verify(request.body, headers);
        return true;
      } catch {
        return false;
      }
    });
    response.writeHead(verified ? 204 : 401).end(verified ? '' : 'bad signature');
  };

describe('deliver', () => {
  it('POSTs the signed JSON a standardwebhooks receiver verifies, every attempt', async () => {
    const hook = await receiver(verifying(secret));
    const body = JSON.stringify({ version: 1, id: 'evt_7', type: 'guest.updated', data: { name: 'web-ü' } });
    const first = await send(hook.url, { body, id: 'evt_7' });
    const second = await send(hook.url, { body, id: 'evt_7', timestamp: now() + 1 });

    expect(first).toMatchObject({ kind: 'success', status: 204, responseText: '' });
    expect(second.kind).toBe('success');
    expect(hook.received).toHaveLength(2);
    const [request] = hook.received;
    expect(request).toMatchObject({ method: 'POST', url: '/hook', body });
    expect(request!.headers).toMatchObject({
      'content-type': 'application/json',
      'user-agent': defaultUserAgent(),
      'webhook-id': 'evt_7',
    });
    expect(defaultUserAgent()).toMatch(/^proxmox-inventory\/\d+\.\d+\.\d+/);
    expect(hook.received.map((r) => r.headers['webhook-id'])).toEqual(['evt_7', 'evt_7']);
  });

  it('dual-signs during a rotation: receivers on the old and on the new secret both verify', async () => {
    const previous = generateWebhookSecret();
    const onNew = await receiver(verifying(secret));
    const onOld = await receiver(verifying(previous));
    const secrets = [secret, new Secret(previous)];
    expect((await send(onNew.url, { secrets })).kind).toBe('success');
    expect((await send(onOld.url, { secrets })).kind).toBe('success');
    expect((await send(onOld.url)).status).toBe(401);
  });

  it('410 is gone, 413 too large, other 4xx/5xx retried', async () => {
    expect(await send((await receiver(answer(410, {}, 'unsubscribed'))).url)).toMatchObject({
      kind: 'gone',
      status: 410,
      responseText: 'unsubscribed',
    });
    expect(await send((await receiver(answer(413))).url)).toMatchObject({ kind: 'too-large', status: 413 });
    expect(await send((await receiver(answer(500, {}, 'oops'))).url)).toMatchObject({
      kind: 'retry',
      status: 500,
      responseText: 'oops',
      error: 'the receiver answered 500',
    });
    const notFound = await send((await receiver(answer(404))).url);
    expect(notFound).toMatchObject({ kind: 'retry', status: 404 });
    expect(notFound.retryAfterMs).toBeUndefined();
  });

  it('429 and 503 carry Retry-After (seconds or a date), bounded', async () => {
    expect(await send((await receiver(answer(429, { 'retry-after': '7' }))).url)).toMatchObject({
      kind: 'retry',
      status: 429,
      retryAfterMs: 7_000,
    });
    const inAMinute = new Date(Date.now() + 60_000).toUTCString();
    const dated = await send((await receiver(answer(503, { 'retry-after': inAMinute }))).url);
    expect(dated).toMatchObject({ kind: 'retry', status: 503 });
    expect(dated.retryAfterMs).toBeGreaterThan(55_000);
    expect(dated.retryAfterMs).toBeLessThanOrEqual(60_000);
    const far = await send((await receiver(answer(429, { 'retry-after': '999999' }))).url, {
      maxRetryAfterMs: 600_000,
    });
    expect(far.retryAfterMs).toBe(600_000);
    // Only 429 and 503 speak for the receiver's capacity; a 500's header is not a throttle.
    expect((await send((await receiver(answer(500, { 'retry-after': '7' }))).url)).retryAfterMs).toBeUndefined();
  });

  it('reads Retry-After strictly', () => {
    const clock = (): number => Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfter('120', clock, 3_600_000)).toBe(120_000);
    expect(retryAfter('Thu, 01 Jan 2026 00:00:30 GMT', clock, 3_600_000)).toBe(30_000);
    expect(retryAfter('Wed, 31 Dec 2025 23:00:00 GMT', clock, 3_600_000)).toBe(0);
    expect(retryAfter('-5', clock, 3_600_000)).toBeUndefined();
    expect(retryAfter('soon', clock, 3_600_000)).toBeUndefined();
    expect(retryAfter(undefined, clock, 3_600_000)).toBeUndefined();
  });

  it('a 308 is a failure and its Location is never visited', async () => {
    const target = await receiver(answer(200));
    const redirecting = await receiver(answer(308, { location: target.url }));
    const outcome = await send(redirecting.url);
    expect(outcome).toMatchObject({ kind: 'redirect', status: 308 });
    expect(outcome.error).toMatch(/never follow/);
    expect(redirecting.received).toHaveLength(1);
    expect(target.received).toHaveLength(0);
    expect(target.connections).toBe(0);
  });

  it('a slow receiver times out within the bound and does not hold up the next delivery', async () => {
    const slow = await receiver((_request, response) => {
      setTimeout(() => response.writeHead(200).end(), 3_000).unref();
    });
    const fast = await receiver(answer(200));
    const started = Date.now();
    const [late, prompt] = await Promise.all([send(slow.url, { timeoutMs: 300 }), send(fast.url)]);
    expect(late.kind).toBe('timeout');
    expect(late.error).toBe(`127.0.0.1:${slow.port} did not answer within 0.3 s`);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(prompt.kind).toBe('success');
  });

  it('a receiver that answers and stalls its body is judged by its status', async () => {
    const stalling = await receiver((_request, response) => {
      response.writeHead(200, { 'content-length': '100' });
      response.write('partial');
    });
    const outcome = await send(stalling.url, { timeoutMs: 300 });
    expect(outcome.kind).toBe('success');
  });

  it('keeps 2 KB of a long answer, cut on a character boundary', async () => {
    const long = 'é'.repeat(5_000);
    const outcome = await send((await receiver(answer(500, {}, long))).url);
    expect(Buffer.byteLength(outcome.responseText!)).toBeLessThanOrEqual(2_048);
    expect(outcome.responseText).toBe('é'.repeat(1_024));
  });

  it('a closed port is an error naming the host and the reason', async () => {
    const gone = await receiver(answer(200));
    const url = gone.url;
    await gone.close();
    receivers.splice(receivers.indexOf(gone), 1);
    const outcome = await send(url);
    expect(outcome).toMatchObject({ kind: 'error', error: `127.0.0.1:${gone.port}: connection refused` });
  });

  it('never lets the secret into outcomes or logs, even when the receiver echoes it', async () => {
    const canary = generateWebhookSecret();
    const echoing = await receiver((request, response) => {
      response.writeHead(500).end(`I was configured with ${canary} (key ${canary.slice(6)}) and got ${request.body}`);
    });
    const slow = await receiver((_request, response) => void setTimeout(() => response.end(), 2_000).unref());
    const lines: string[] = [];
    const log = createLogger({
      level: 'debug',
      destination: new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(chunk.toString());
          done();
        },
      }),
    });
    const canaryAgent = createWebhookAgent({
      policy: createAddressPolicy(['127.0.0.1/32']),
      onRefused: (refused) => log.warn({ host: refused.host, err: refused }, 'webhook target refused'),
    });
    const outcomes = [
      await send(echoing.url, { secrets: [canary] }),
      await send(slow.url, { secrets: [new Secret(canary)], timeoutMs: 200 }),
      await send(`http://127.0.0.2:${echoing.port}/hook?key=${canary}`, { secrets: [canary], agent: canaryAgent }),
      await send(`http://127.0.0.1:1/?key=${canary}`, { secrets: [canary] }),
    ];
    await canaryAgent.close();
    for (const outcome of outcomes) log.info({ outcome }, 'webhook delivery');

    expect(outcomes.map((o) => o.kind)).toEqual(['retry', 'timeout', 'refused', 'error']);
    expect(outcomes[0]!.responseText).toContain('I was configured with [redacted] (key [redacted])');
    const everything = JSON.stringify(outcomes) + lines.join('');
    expect(lines.length).toBeGreaterThanOrEqual(5);
    expect(everything).not.toContain(canary.slice(6));
    expect(everything).not.toContain(canary.slice(6, 18));
  });
});
