/**
 * When to try a failed delivery again: Svix's schedule (8 attempts over about 27.6 h) with ±20 %
 * jitter, so many deliveries that failed together do not all come back in the same second.
 */

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/** Delay before each attempt, the first being the immediate one: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. */
export const DEFAULT_RETRY_SCHEDULE_MS: readonly number[] = [
  0,
  5 * SECOND,
  5 * MINUTE,
  30 * MINUTE,
  2 * HOUR,
  5 * HOUR,
  10 * HOUR,
  10 * HOUR,
];

export const DEFAULT_JITTER = 0.2;

export interface RetryOptions {
  /** Delay before attempt 1, 2, …; its length is the number of attempts. */
  schedule?: readonly number[];
  /** Fraction either way (0.2: ±20 %). */
  jitter?: number;
  /** What the receiver asked for (Retry-After, already bounded): the retry comes no sooner. */
  retryAfterMs?: number;
  /** A number in [0, 1); tests pass a fixed one. */
  random?: () => number;
}

/**
 * Milliseconds to wait before the next attempt after `attemptsMade` failed ones, or undefined when
 * the schedule is used up (the delivery goes to the dead letter state).
 */
export function retryDelayMs(attemptsMade: number, options: RetryOptions = {}): number | undefined {
  const schedule = options.schedule ?? DEFAULT_RETRY_SCHEDULE_MS;
  const base = schedule[attemptsMade];
  if (attemptsMade < 1 || base === undefined) return undefined;
  const jittered = withJitter(base, options.jitter ?? DEFAULT_JITTER, options.random ?? Math.random);
  return Math.max(jittered, options.retryAfterMs ?? 0);
}

function withJitter(delayMs: number, jitter: number, random: () => number): number {
  return Math.round(delayMs * (1 + jitter * (2 * random() - 1)));
}

/**
 * A schedule as an operator writes it: delays such as `0, 5s, 5m, 30m, 2h` (plain numbers are
 * seconds). The first is the delay of the first attempt, normally 0.
 */
export function parseRetrySchedule(text: string): number[] {
  const parts = text
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
  if (parts.length === 0) throw new Error('The retry schedule is empty; give delays such as 0, 5s, 5m, 30m, 2h.');
  return parts.map(parseDelay);
}

const UNIT_MS: Record<string, number> = { ms: 1, s: SECOND, m: MINUTE, h: HOUR, d: 24 * HOUR };

function parseDelay(part: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(part);
  if (!match) {
    throw new Error(`The retry schedule entry '${part}' is not a delay; write a number with s, m, h or d (5s, 30m).`);
  }
  return Math.round(Number(match[1]) * UNIT_MS[match[2] ?? 's']!);
}
