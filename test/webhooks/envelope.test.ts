/** The webhook body: the versioned envelope, at most 20 KB whatever the event holds. */
import { describe, expect, it } from 'vitest';
import type { EventRow } from '../../src/store/webhooks.js';
import { envelopeBody, MAX_BODY_BYTES } from '../../src/webhooks/envelope.js';

const row = (data: unknown): EventRow => ({
  seq: 42,
  id: 'evt_0123456789abcdef0123456789abcdef',
  type: 'guest.updated',
  occurredAt: Date.UTC(2026, 11, 1),
  cluster: 'prod',
  subjectKind: 'guest',
  subjectId: 'prod/101',
  data: JSON.stringify(data),
});

describe('webhook envelope', () => {
  it('carries version 1, the event id, seq, type, time, cluster, subject and data', () => {
    expect(JSON.parse(envelopeBody(row({ vmid: 101, name: 'web-01' })))).toEqual({
      version: 1,
      id: 'evt_0123456789abcdef0123456789abcdef',
      seq: 42,
      type: 'guest.updated',
      occurred_at: '2026-12-01T00:00:00.000Z',
      cluster: 'prod',
      subject: { kind: 'guest', id: 'prod/101' },
      data: { vmid: 101, name: 'web-01' },
    });
  });

  it('a data too big for 20 KB keeps its scalar fields and says truncated', () => {
    const big = {
      vmid: 101,
      name: 'web-01',
      changes: { config: { description: { from: 'x'.repeat(30_000), to: '' } } },
    };
    const body = envelopeBody(row(big));
    expect(Buffer.byteLength(body)).toBeLessThanOrEqual(MAX_BODY_BYTES);
    expect(JSON.parse(body).data).toEqual({ vmid: 101, name: 'web-01', truncated: true });
  });
});
