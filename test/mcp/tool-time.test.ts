/**
 * Time inputs of changes_since through the real SDK client, against a real SQLite file holding
 * events at known times, with a fixed "now". Every input is also read by a reference parser
 * written here another way (a character scanner, and Date's own calendar checked by a round trip
 * instead of src/mcp/time.ts's day arithmetic): both must accept the same inputs, at the same
 * instant, and refuse the same ones.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/store/db.js';
import { insertEvents } from '../../src/store/events.js';
import { connectClient } from './connect.js';

const NOW = Date.UTC(2025, 5, 1, 12, 0, 0, 0);
const DAY = 86_400_000;
/** Event times: 3 days, 1 day, 2 hours and 1 minute before NOW. */
const EVENT_TIMES = [NOW - 3 * DAY, NOW - DAY, NOW - 2 * 3_600_000, NOW - 60_000];

let store: Store;
let client: Client;

beforeAll(async () => {
  store = openStore(join(mkdtempSync(join(tmpdir(), 'pi-time-')), 'inventory.db'));
  for (const [i, at] of EVENT_TIMES.entries())
    store.write(() =>
      insertEvents(
        store,
        [{ type: 'snapshot.created', cluster: null, subject: { kind: 'snapshot', id: String(i + 1) }, data: {} }],
        at,
      ),
    );
  client = await connectClient(store, 'time-test', { now: () => NOW });
});

afterAll(async () => {
  await client?.close();
  store?.close();
});

type Answer = { accepted: true; since: number; events: number } | { accepted: false; text: string };

async function since(value: unknown): Promise<Answer> {
  const r = (await client.callTool({ name: 'changes_since', arguments: { since: value } })) as CallToolResult;
  const text = (r.content[0] as { text: string }).text;
  if (r.isError) return { accepted: false, text };
  const s = r.structuredContent as { since: string; events: unknown[] };
  return { accepted: true, since: Date.parse(s.since), events: s.events.length };
}

// ---- the reference -----------------------------------------------------------------------------

/** A tiny scanner over the input: digits, fixed characters, and whether anything is left. */
class Scan {
  i = 0;
  constructor(readonly s: string) {}
  digits(n: number): number | undefined {
    const part = this.s.slice(this.i, this.i + n);
    if (part.length !== n || [...part].some((c) => c < '0' || c > '9')) return undefined;
    this.i += n;
    return Number(part);
  }
  take(...options: string[]): string | undefined {
    const c = this.s[this.i];
    if (c !== undefined && options.includes(c)) {
      this.i++;
      return c;
    }
    return undefined;
  }
  get done(): boolean {
    return this.i === this.s.length;
  }
}

/** An ISO 8601 date or date-time read with Date, which is trusted only when it reads back the same fields. */
function referenceIso(text: string): number | 'invalid' | 'not-iso' {
  const s = new Scan(text);
  const year = s.digits(4);
  if (year === undefined || !s.take('-')) return 'not-iso';
  const month = s.digits(2);
  if (month === undefined || !s.take('-')) return 'not-iso';
  const day = s.digits(2);
  if (day === undefined) return 'not-iso';
  let [hour, minute, second, ms, offset] = [0, 0, 0, 0, 0];
  if (!s.done) {
    if (!s.take('T', 't', ' ')) return 'not-iso';
    const h = s.digits(2);
    if (h === undefined || !s.take(':')) return 'not-iso';
    const m = s.digits(2);
    if (m === undefined) return 'not-iso';
    [hour, minute] = [h, m];
    if (s.take(':')) {
      const sec = s.digits(2);
      if (sec === undefined) return 'not-iso';
      second = sec;
      if (s.take('.')) {
        let fraction = '';
        while (!s.done && /[0-9]/.test(s.s[s.i]!)) fraction += s.s[s.i++];
        if (fraction.length < 1 || fraction.length > 9) return 'not-iso';
        ms = Math.trunc(Number(fraction.slice(0, 3)) * 10 ** (3 - Math.min(3, fraction.length)));
      }
    }
    if (!s.take('Z', 'z')) {
      const sign = s.take('+', '-');
      if (sign) {
        const oh = s.digits(2);
        if (oh === undefined) return 'not-iso';
        const om = s.take(':') ? s.digits(2) : s.done ? 0 : s.digits(2);
        if (om === undefined) return 'not-iso';
        if (oh > 23 || om > 59) return 'invalid';
        offset = (sign === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
      }
    }
  }
  if (!s.done) return 'not-iso';
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, ms);
  const same =
    d.getUTCFullYear() === year &&
    d.getUTCMonth() === month - 1 &&
    d.getUTCDate() === day &&
    d.getUTCHours() === hour &&
    d.getUTCMinutes() === minute &&
    d.getUTCSeconds() === second;
  return same ? d.getTime() - offset : 'invalid';
}

const UNIT_MS: Record<string, number> = { w: 7 * DAY, d: DAY, h: 3_600_000, m: 60_000, s: 1000 };

/** Amounts with units, largest first, each unit once: compact (`1h 30m ago`) or ISO 8601 (`PT1H30M`). */
function referenceDuration(text: string): number | undefined {
  const lower = text.toLowerCase();
  const amounts: Array<[number, string]> = [];
  const number = /^(\d{1,7})(\.\d{1,3})?/;
  if (lower.startsWith('p')) {
    let rest = lower.slice(1);
    let units = ['w', 'd'];
    let timePart = false;
    while (rest) {
      if (rest[0] === 't' && !timePart) {
        timePart = true;
        units = ['h', 'm', 's'];
        rest = rest.slice(1);
        if (!rest) return undefined;
        continue;
      }
      const n = number.exec(rest);
      if (!n) return undefined;
      rest = rest.slice(n[0].length);
      const at = units.indexOf(rest[0] ?? '');
      if (at < 0) return undefined;
      amounts.push([Number(n[0]), units[at]!]);
      units = units.slice(at + 1);
      rest = rest.slice(1);
    }
  } else {
    let rest = lower.endsWith('ago') ? lower.slice(0, -3) : lower;
    let units = ['w', 'd', 'h', 'm', 's'];
    while (rest) {
      const n = number.exec(rest);
      if (!n) return undefined;
      rest = rest.slice(n[0].length).replace(/^ +/, '');
      const at = units.indexOf(rest[0] ?? '');
      if (at < 0) return undefined;
      amounts.push([Number(n[0]), units[at]!]);
      units = units.slice(at + 1);
      rest = rest.slice(1).replace(/^ +/, '');
    }
  }
  if (!amounts.length) return undefined;
  return Math.round(amounts.reduce((sum, [n, unit]) => sum + n * UNIT_MS[unit]!, 0));
}

/** What changes_since must do with `since: value`: the instant, or a refusal. */
function reference(value: string): number | 'refused' {
  const text = value.trim();
  if (text.length < 1 || text.length > 40) return 'refused';
  const iso = referenceIso(text);
  if (typeof iso === 'number') return iso > NOW ? 'refused' : iso;
  if (iso === 'invalid') return 'refused';
  const back = referenceDuration(text);
  if (back === undefined || back <= 0 || back > 3650 * DAY) return 'refused';
  return NOW - back;
}

// ---- inputs ------------------------------------------------------------------------------------

const pad = (n: number, width: number): string => String(n).padStart(width, '0');
const isoLike = fc
  .record({
    // Mostly real dates before NOW, so that both sides' acceptance is exercised as much as refusal.
    year: fc.oneof({ arbitrary: fc.integer({ min: 0, max: 9999 }), weight: 1 }, fc.integer({ min: 2020, max: 2025 })),
    month: fc.oneof({ arbitrary: fc.integer({ min: 0, max: 13 }), weight: 1 }, fc.integer({ min: 1, max: 5 })),
    day: fc.oneof({ arbitrary: fc.integer({ min: 0, max: 32 }), weight: 1 }, fc.integer({ min: 1, max: 28 })),
    time: fc.option(
      fc.record({
        sep: fc.constantFrom('T', 'T', 'T', 't', ' ', '_', '  '),
        hour: fc.integer({ min: 0, max: 25 }),
        minute: fc.integer({ min: 0, max: 61 }),
        second: fc.option(fc.integer({ min: 0, max: 61 })),
        fraction: fc.option(fc.stringMatching(/^[0-9]{0,10}$/)),
        zone: fc.constantFrom(
          ...['', 'Z', 'Z', 'z', '+02:00', '-05:30', '+0200', '+02', '-00:00', '+23:59'],
          ...['+24:00', '+02:60', '+2', '+02:', 'UTC', ' Z'],
        ),
      }),
    ),
    junk: fc.constantFrom(...Array<string>(12).fill(''), ' junk', 'x', '.', 'T', ':00', ' '),
  })
  .map(({ year, month, day, time, junk }) => {
    let text = `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}`;
    if (time) {
      text += `${time.sep}${pad(time.hour, 2)}:${pad(time.minute, 2)}`;
      if (time.second !== null) text += `:${pad(time.second, 2)}`;
      if (time.second !== null && time.fraction !== null) text += `.${time.fraction}`;
      text += time.zone;
    }
    return text + junk;
  });

const durationLike = fc
  .record({
    iso: fc.boolean(),
    parts: fc.array(
      fc.tuple(
        fc.oneof(fc.nat({ max: 100 }), fc.nat({ max: 99_999_999 }), fc.constantFrom(1.5, 0.25, 0.0001, 3650, 521)),
        fc.constantFrom('w', 'd', 'h', 'm', 's', 'W', 'H', 'y', 'M'),
      ),
      { maxLength: 4 },
    ),
    ordered: fc.boolean(),
    space: fc.constantFrom('', ' '),
    ago: fc.constantFrom('', ' ago', 'ago', ' AGO'),
    t: fc.constantFrom('T', 't', ''),
  })
  .map(({ iso, parts: unordered, ordered, space, ago, t }) => {
    // Half of them largest unit first, as a valid duration has them.
    const rank = (unit: string): number => 'wdhmsy'.indexOf(unit.toLowerCase());
    const parts = ordered ? [...unordered].sort((a, b) => rank(a[1]) - rank(b[1])) : unordered;
    const body = parts.map(([n, unit]) => `${n}${space}${unit}`).join(space);
    if (!iso) return body + ago;
    const date = parts.filter(([, u]) => 'wWdD'.includes(u)).map(([n, u]) => `${n}${u}`);
    const time = parts.filter(([, u]) => !'wWdD'.includes(u)).map(([n, u]) => `${n}${u}`);
    return `P${date.join('')}${time.length || t === 'T' ? t : ''}${time.join('')}`;
  });

const sinceValues = fc.oneof(
  { arbitrary: isoLike, weight: 5 },
  { arbitrary: durationLike, weight: 4 },
  { arbitrary: fc.string({ maxLength: 45 }), weight: 1 },
  {
    arbitrary: fc.constantFrom('2025-02-30', '2025-01-02 junk', '2024-02-29', '2025-06-01T12:00:00.001Z', '', ' 2h '),
    weight: 1,
  },
);

// ---- tests -------------------------------------------------------------------------------------

describe('changes_since since', () => {
  it('refuses dates that do not exist and trailing junk, which Date.parse reads as other dates', async () => {
    expect(Number.isNaN(Date.parse('2025-02-30'))).toBe(false); // what the old code relied on
    expect(await since('2025-02-30')).toEqual({
      accepted: false,
      text: 'since "2025-02-30": 2025-02-30 is not a date (February 2025 has 28 days). Use an ISO 8601 time ("2025-01-02T03:04:05Z"; UTC when it has no offset) or a duration back from now ("90s", "15m", "2h", "7d", "1h30m").',
    });
    expect(await since('2025-01-02 junk')).toMatchObject({
      accepted: false,
      text: expect.stringMatching(/^since "2025-01-02 junk": neither an ISO 8601 time nor a duration back from now\./),
    });
    expect(await since('2023-02-29T10:00:00Z')).toMatchObject({ accepted: false });
    expect(await since('2025-05-31T24:00:00Z')).toMatchObject({ accepted: false });
    expect(await since('2024-02-29')).toEqual({ accepted: true, since: Date.UTC(2024, 1, 29), events: 4 });
  });

  it('a time without an offset is UTC; with one, it is that offset', async () => {
    expect(await since('2025-05-31T12:00:00')).toEqual({ accepted: true, since: NOW - DAY, events: 3 });
    expect(await since('2025-05-31T14:00:00+02:00')).toEqual({ accepted: true, since: NOW - DAY, events: 3 });
    expect(await since('2025-05-31 07:30-0430')).toEqual({ accepted: true, since: NOW - DAY, events: 3 });
  });

  it('a since in the future is refused, naming now', async () => {
    expect(await since('2025-06-01T12:00:00.001Z')).toEqual({
      accepted: false,
      text: expect.stringMatching(
        /^since "2025-06-01T12:00:00\.001Z": in the future \(now is 2025-06-01T12:00:00\.000Z\)\. Use /,
      ),
    });
    expect(await since('2025-06-01T12:00:00Z')).toEqual({ accepted: true, since: NOW, events: 0 });
  });

  it('durations go back from now, above zero and at most 3650 days', async () => {
    expect(await since('2h')).toEqual({ accepted: true, since: NOW - 2 * 3_600_000, events: 2 });
    expect(await since('1d 1h ago')).toEqual({ accepted: true, since: NOW - DAY - 3_600_000, events: 3 });
    expect(await since('P3DT1S')).toEqual({ accepted: true, since: NOW - 3 * DAY - 1000, events: 4 });
    expect(await since('3650d')).toMatchObject({ accepted: true, since: NOW - 3650 * DAY });
    expect(await since('3651d')).toMatchObject({
      accepted: false,
      text: expect.stringContaining('reaches at most 3650d; give an ISO date instead'),
    });
    expect(await since('0m')).toMatchObject({ accepted: false, text: expect.stringContaining('above zero') });
    expect(await since('30m1h')).toMatchObject({ accepted: false }); // largest unit first
    expect(await since('1h1h')).toMatchObject({ accepted: false });
  });

  it('agrees with the reference parser on every input: the same instant, or both refuse', async () => {
    let accepted = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(sinceValues, async (value) => {
        const want = reference(value);
        const got = await since(value);
        if (want === 'refused') {
          expect(got, JSON.stringify(value)).toMatchObject({ accepted: false });
          // Refused by the tool with what to write instead, or (empty, too long) by the input schema.
          expect((got as { text: string }).text).toMatch(
            /^since ".*": .+\. Use an ISO 8601 time|^MCP error -32602: .*expected 1 to 40 characters at since$/s,
          );
          refused++;
        } else {
          expect(got, JSON.stringify(value)).toMatchObject({ accepted: true, since: want });
          expect((got as { events: number }).events).toBe(EVENT_TIMES.filter((t) => t >= want).length);
          accepted++;
        }
      }),
      { numRuns: 1500 },
    );
    // Both sides are exercised: the generators reach valid and invalid inputs alike.
    expect(accepted).toBeGreaterThan(200);
    expect(refused).toBeGreaterThan(200);
  });

  it('the input schema says how a time without an offset is read', async () => {
    const tool = (await client.listTools()).tools.find((t) => t.name === 'changes_since')!;
    expect((tool.inputSchema.properties as Record<string, { description?: string }>).since!.description).toMatch(
      /UTC unless it has an offset/,
    );
  });
});
