/**
 * Time inputs of the tools, read strictly. Date.parse is not used: it reads `2025-02-30` as March 2
 * and `2025-01-02 junk` as January 2, so a typo would silently answer about another time.
 *
 * Accepted:
 * - an ISO 8601 (RFC 3339) date or date-time: `2025-01-02`, `2025-01-02T03:04`, `2025-01-02T03:04:05.678`,
 *   with `T` or one space between date and time; with an offset (`Z`, `+02:00`, `+0200`, `+02`) or,
 *   without one, in UTC (a date alone is its midnight UTC);
 * - a duration back from now: `90s`, `15m`, `2h`, `7d`, `2w`, combined largest unit first (`1h30m`),
 *   optionally followed by `ago`, or ISO 8601 (`PT2H`, `P1DT30M`); above zero and at most MAX_BACK_DAYS.
 */

const MS = { w: 604_800_000, d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 } as const;

/** A duration back from now reaches at most this far (10 years): further back is an ISO date's job. */
export const MAX_BACK_DAYS = 3650;

/** How to write a time, for hints. */
export const TIME_FORMS =
  'an ISO 8601 time ("2025-01-02T03:04:05Z"; UTC when it has no offset) or a duration back from now ("90s", "15m", "2h", "7d", "1h30m")';

export type TimeReading = { ok: true; at: number } | { ok: false; problem: string };

const ISO_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?)?$/;

const AMOUNT = String.raw`(\d{1,7}(?:\.\d{1,3})?)`;
const COMPACT = new RegExp(
  `^(?:${AMOUNT} *w *)?(?:${AMOUNT} *d *)?(?:${AMOUNT} *h *)?(?:${AMOUNT} *m *)?(?:${AMOUNT} *s *)?(?:ago)?$`,
  'i',
);
const ISO_DURATION = new RegExp(
  `^P(?:${AMOUNT}W)?(?:${AMOUNT}D)?(?:T(?:${AMOUNT}H)?(?:${AMOUNT}M)?(?:${AMOUNT}S)?)?$`,
  'i',
);

const isLeap = (y: number): boolean => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
const daysInMonth = (y: number, m: number): number =>
  m === 2 ? (isLeap(y) ? 29 : 28) : [4, 6, 9, 11].includes(m) ? 30 : 31;

/** Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's days_from_civil), without Date's two-digit-year quirks. */
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

const MONTHS = 'January February March April May June July August September October November December'.split(' ');

function readIsoTime(value: string): TimeReading | undefined {
  const m = ISO_TIME.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zulu, sign, oh, om = '0'] = m;
  const [year, month, day, hour, minute, second] = [y, mo, d, h, mi, s].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (month < 1 || month > 12) return { ok: false, problem: `month ${mo} does not exist` };
  const days = daysInMonth(year, month);
  if (day < 1 || day > days)
    return { ok: false, problem: `${y}-${mo}-${d} is not a date (${MONTHS[month - 1]} ${y} has ${days} days)` };
  if (hour > 23 || minute > 59 || second > 59)
    return { ok: false, problem: `${h}:${mi}:${s} is not a time of day (00:00:00 to 23:59:59)` };
  const offsetMinutes = zulu || !sign ? 0 : (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om));
  if (Number(oh ?? 0) > 23 || Number(om) > 59)
    return { ok: false, problem: `offset ${sign}${oh}:${om} does not exist` };
  const ms = Number(frac.padEnd(3, '0').slice(0, 3));
  const at =
    daysFromCivil(year, month, day) * MS.d + hour * MS.h + minute * MS.m + second * MS.s + ms - offsetMinutes * MS.m;
  return { ok: true, at };
}

function readDuration(value: string): number | undefined {
  const iso = ISO_DURATION.exec(value);
  const parts = iso && !/^pt?$/i.test(value) && !/t$/i.test(value) ? iso : COMPACT.exec(value);
  if (!parts || !/\d/.test(value)) return undefined;
  const [w, d, h, m, s] = parts.slice(1).map((p) => Number(p ?? 0)) as [number, number, number, number, number];
  return Math.round(w * MS.w + d * MS.d + h * MS.h + m * MS.m + s * MS.s);
}

/** The instant a time input names, or why it names none. */
export function readTime(value: string, now: number): TimeReading {
  const time = readIsoTime(value);
  if (time) return time;
  const back = readDuration(value);
  if (back === undefined) return { ok: false, problem: 'neither an ISO 8601 time nor a duration back from now' };
  if (back <= 0) return { ok: false, problem: 'a duration back from now must be above zero' };
  if (back > MAX_BACK_DAYS * MS.d)
    return {
      ok: false,
      problem: `a duration back from now reaches at most ${MAX_BACK_DAYS}d; give an ISO date instead`,
    };
  return { ok: true, at: now - back };
}

/** A start time (`since`): as readTime, and not after now. */
export function readPastTime(value: string, now: number): TimeReading {
  const t = readTime(value, now);
  if (t.ok && t.at > now) return { ok: false, problem: `in the future (now is ${new Date(now).toISOString()})` };
  return t;
}
