/**
 * Input pieces shared by the tools. Some clients send every argument as text, so a number is also
 * accepted as a string holding one ("50", "1.5") and a boolean as "true" or "false"; nothing else
 * is converted (`true`, `[3]`, `""` and `null` are not numbers). Each piece fails with one message
 * that says what the field takes, and "missing" when a required field is absent.
 */
import { z } from 'zod';

/** A decimal number written out, as JSON would: no hex, no `Infinity`, no empty string. */
const NUMERIC = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

const numberFromText = (v: unknown): unknown => (typeof v === 'string' && NUMERIC.test(v.trim()) ? Number(v) : v);
const booleanFromText = (v: unknown): unknown => (v === 'true' ? true : v === 'false' ? false : v);

/** The value a caller sent, short enough for an error message. */
function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 39)}…` : text;
}

/** One message for every way a value can fail: missing, or what it takes and what came. */
const expecting =
  (what: string) =>
  (issue: { input?: unknown }): string =>
    issue.input === undefined ? `missing: expected ${what}` : `expected ${what}, got ${shown(issue.input)}`;

const range = (min: number, max: number): string =>
  max >= Number.MAX_SAFE_INTEGER ? `${min} or more` : `from ${min} to ${max}`;

/** A whole number in [min, max]; `what` names it in messages. */
export const count = (min: number, max: number, what = 'a whole number') =>
  z.preprocess(
    numberFromText,
    z
      .number({ error: expecting(`${what} ${range(min, max)}`) })
      .int()
      .min(min)
      .max(max),
  );

/** A number from 0 (to max, when given; fractions allowed: 0.5 GiB). */
export const amount = (max?: number) => {
  const number = z.number({ error: expecting(`a number ${range(0, max ?? Number.MAX_SAFE_INTEGER)}`) }).min(0);
  return z.preprocess(numberFromText, max === undefined ? number : number.max(max));
};

export const flag = () => z.preprocess(booleanFromText, z.boolean({ error: expecting('true or false') }));

/** Non-empty text up to `max` characters; the bound is checked, not advertised (it would bloat tools/list). */
export const text = (max = 200) =>
  z
    .string({ error: expecting(`text of 1 to ${max} characters`) })
    .trim()
    .refine((s) => s.length >= 1 && s.length <= max, `expected 1 to ${max} characters`);

export const vmid = () => count(100, 999_999_999, 'a vmid');

/**
 * For `.superRefine` on a tool's input: each [low, high] pair of bounds given backwards (a minimum
 * above its maximum) matches nothing, which is a mistake to say rather than an empty answer.
 */
export const boundsInOrder =
  <T extends Record<string, unknown>>(...pairs: Array<[keyof T & string, keyof T & string]>) =>
  (value: T, ctx: z.RefinementCtx): void => {
    for (const [low, high] of pairs) {
      const [a, b] = [value[low], value[high]];
      if (typeof a === 'number' && typeof b === 'number' && a > b)
        ctx.addIssue({
          code: 'custom',
          message: `${low} ${a} is above ${high} ${b}, so nothing can match; swap them or leave one out`,
        });
    }
  };
