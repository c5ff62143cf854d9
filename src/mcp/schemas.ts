/**
 * Input pieces shared by the tools. Numbers and booleans are also accepted as strings ("50",
 * "true"), which some clients send; anything else fails validation with a message naming the field.
 */
import { z } from 'zod';

export const count = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
export const amount = () => z.coerce.number().min(0);
export const flag = () => z.preprocess((v) => (v === 'true' ? true : v === 'false' ? false : v), z.boolean());
/** Non-empty text up to `max` characters; the bound is checked, not advertised (it would bloat tools/list). */
export const text = (max = 200) =>
  z
    .string()
    .trim()
    .refine((s) => s.length >= 1 && s.length <= max, `expected 1 to ${max} characters`);
export const vmid = () => z.coerce.number().int().min(100).max(999_999_999);
