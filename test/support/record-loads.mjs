/**
 * `node --import ./test/support/record-loads.mjs …`: appends every module URL the process resolves
 * through ESM to the file LOADS_FILE names, one a line, so that a test can say what a command loaded.
 * The hook runs on Node's loader thread, hence a file rather than memory.
 */
import { register } from 'node:module';

const hook = `
import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  appendFileSync(process.env.LOADS_FILE, resolved.url + '\\n');
  return resolved;
}`;

register(`data:text/javascript,${encodeURIComponent(hook)}`);
