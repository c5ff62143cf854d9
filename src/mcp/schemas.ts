/**
 * Input pieces shared by the tools. Numbers and booleans are also accepted as strings ("50",
 * "true"), which some clients send; anything else fails validation with a message naming the field.
 */
import { z } from 'zod';

export const count = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
export const amount = () => z.coerce.number().min(0);
export const flag = () => z.preprocess((v) => (v === 'true' ? true : v === 'false' ? false : v), z.boolean());
export const text = (max = 200) => z.string().trim().min(1).max(max);
export const vmid = () => z.coerce.number().int().min(100).max(999_999_999);
