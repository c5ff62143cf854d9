import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { Secret } from '../../src/secret.js';
import { DEFAULT_RETRY_SCHEDULE_MS, parseRetrySchedule, retryDelayMs } from '../../src/webhooks/schedule.js';
import {
  generateWebhookSecret,
  parseWebhookSecret,
  webhookSecretKey,
  WebhookSecretError,
} from '../../src/webhooks/secret.js';
import { signatureHeaders } from '../../src/webhooks/sign.js';

// The Standard Webhooks reference library's own test vector (libraries/javascript/src/webhook.test.ts).
const GOLDEN = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};

describe('signatureHeaders', () => {
  it('signs the spec golden vector', () => {
    const headers = signatureHeaders({ ...GOLDEN, secrets: [GOLDEN.secret] });
    expect(headers).toEqual({
      'webhook-id': GOLDEN.id,
      'webhook-timestamp': '1614265330',
      'webhook-signature': GOLDEN.signature,
    });
    expect(new Webhook(GOLDEN.secret).sign(GOLDEN.id, new Date(GOLDEN.timestamp * 1000), GOLDEN.body)).toBe(
      GOLDEN.signature,
    );
  });

  it('is verified by the standardwebhooks package, with each secret of a rotation', () => {
    const current = generateWebhookSecret();
    const previous = generateWebhookSecret();
    const body = JSON.stringify({ version: 1, type: 'guest.created', data: { name: 'ünïcode ✓' } });
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = signatureHeaders({ id: 'evt_1', timestamp, body, secrets: [current, new Secret(previous)] });

    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    for (const secret of [current, previous]) {
      expect(new Webhook(secret).verify(body, { ...headers })).toEqual(JSON.parse(body));
    }
    expect(() => new Webhook(generateWebhookSecret()).verify(body, { ...headers })).toThrow();
    expect(() => new Webhook(current).verify(body + ' ', { ...headers })).toThrow();
  });

  it('refuses an id with a dot and a timestamp that is not Unix seconds', () => {
    const base = { body: '{}', secrets: [GOLDEN.secret] };
    expect(() => signatureHeaders({ ...base, id: 'evt.1', timestamp: 1 })).toThrow(/no dot/);
    expect(() => signatureHeaders({ ...base, id: 'evt_1', timestamp: 1.5 })).toThrow(/Unix seconds/);
    expect(() => signatureHeaders({ ...base, id: 'evt_1', timestamp: 1, secrets: [] })).toThrow(/secret/);
  });
});

describe('webhook secrets', () => {
  it('generates whsec_ + base64 of 32 random bytes, accepted by the reference library', () => {
    const secret = generateWebhookSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(webhookSecretKey(secret)).toHaveLength(32);
    expect(generateWebhookSecret()).not.toBe(secret);
    expect(() => new Webhook(secret)).not.toThrow();
  });

  it('accepts 24 to 64 bytes and refuses anything else without echoing the value', () => {
    const ofBytes = (n: number): string => 'whsec_' + Buffer.alloc(n, 0xa5).toString('base64');
    expect(parseWebhookSecret(ofBytes(24))).toBe(ofBytes(24));
    expect(webhookSecretKey(ofBytes(64))).toHaveLength(64);

    const canary = 'whsec_' + Buffer.from('CANARY-canary-CANARY-canary!').toString('base64').slice(0, -2) + '!!';
    const refused: [string, RegExp][] = [
      [ofBytes(23), /decodes to 23 bytes/],
      [ofBytes(65), /decodes to 65 bytes/],
      [ofBytes(32).slice('whsec_'.length), /does not start with whsec_/],
      [canary, /is not base64/],
      ['whsec_' + Buffer.alloc(32, 7).toString('base64').replace(/=$/, ''), /is not base64/],
      ['whsec_' + 'A'.repeat(43) + 'B=', /is not base64/],
    ];
    for (const [value, reason] of refused) {
      const error = catchError(() => parseWebhookSecret(value));
      expect(error).toBeInstanceOf(WebhookSecretError);
      expect(error.message).toMatch(reason);
      expect(error.message).toMatch(/^The webhook secret .*; give whsec_ followed by base64 of 24 to 64 random bytes/);
      expect(error.message).not.toContain(value);
      expect(error.message).not.toContain(value.slice(6, 20));
    }
  });
});

describe('retryDelayMs', () => {
  const middle = (): number => 0.5;

  it('follows the Svix schedule: 8 attempts, then none', () => {
    const delays = [1, 2, 3, 4, 5, 6, 7].map((n) => retryDelayMs(n, { random: middle }));
    expect(delays).toEqual([5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000]);
    expect(DEFAULT_RETRY_SCHEDULE_MS[0]).toBe(0);
    expect(retryDelayMs(8)).toBeUndefined();
    expect(retryDelayMs(0)).toBeUndefined();
  });

  it('jitters by at most ±20 %', () => {
    expect(retryDelayMs(2, { random: () => 0 })).toBe(240_000);
    expect(retryDelayMs(2, { random: () => 0.999999 })).toBe(360_000);
    for (let i = 0; i < 200; i++) {
      const delay = retryDelayMs(3)!;
      expect(delay).toBeGreaterThanOrEqual(1_440_000);
      expect(delay).toBeLessThanOrEqual(2_160_000);
    }
  });

  it('waits at least what Retry-After asked for', () => {
    expect(retryDelayMs(1, { random: middle, retryAfterMs: 42_000 })).toBe(42_000);
    expect(retryDelayMs(2, { random: middle, retryAfterMs: 42_000 })).toBe(300_000);
  });

  it('takes a configured schedule', () => {
    const schedule = parseRetrySchedule('0, 100ms, 1s, 2m, 1.5h, 1d, 30');
    expect(schedule).toEqual([0, 100, 1_000, 120_000, 5_400_000, 86_400_000, 30_000]);
    expect(retryDelayMs(1, { schedule, jitter: 0 })).toBe(100);
    expect(retryDelayMs(7, { schedule })).toBeUndefined();
    expect(() => parseRetrySchedule('5s, soon')).toThrow(/entry 'soon' is not a delay/);
    expect(() => parseRetrySchedule(' , ')).toThrow(/empty/);
  });
});

function catchError(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a throw');
}
