/**
 * The event filter a subscriber gives (`guest.*,action.failed`), checked against the types the
 * daemon emits: a glob that matches none (a typo such as `gust.*`) would subscribe to nothing and
 * never say so, so it is refused with the list of types.
 */
import { EVENT_TYPES } from '../store/events.js';
import { typeMatches } from '../store/webhooks.js';

const GLOB_RE = /^[a-z_.*]+$/;

export const EVENT_GLOBS_EXAMPLE = 'guest.*,action.failed';

/** The globs given (a comma-separated text or a list), trimmed, deduplicated, each matching a type. */
export function parseEventGlobs(given: string | readonly unknown[]): { globs: string[] } | { problem: string } {
  const items = (typeof given === 'string' ? given.split(',') : given).map((item) =>
    typeof item === 'string' ? item.trim() : item,
  );
  const globs: string[] = [];
  for (const item of items) {
    if (item === '') continue;
    if (typeof item !== 'string' || !GLOB_RE.test(item))
      return {
        problem: `${JSON.stringify(item)} is not an event type or glob; write types such as ${EVENT_GLOBS_EXAMPLE} (letters, "_", "." and "*")`,
      };
    if (!EVENT_TYPES.some((type) => typeMatches([item], type)))
      return { problem: `"${item}" matches no event type; the types are ${EVENT_TYPES.join(', ')}` };
    if (!globs.includes(item)) globs.push(item);
  }
  if (!globs.length) return { problem: `give at least one event type or glob, e.g. ${EVENT_GLOBS_EXAMPLE}` };
  return { globs };
}
