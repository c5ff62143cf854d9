/**
 * Queries built and prepared once per store and shape, then run with placeholder values. On the
 * read paths MCP tools take, building a drizzle query and compiling its SQL costs several times
 * what running it on an indexed table does (about 0.2 ms against 0.05 for a five-row page).
 */
import type { Store } from './db.js';

/** Shapes kept per store; past this the cache starts over (a shape is cheap to build again). */
const MAX_SHAPES = 500;

const caches = new WeakMap<Store, Map<string, unknown>>();

/**
 * The query `build` makes for `shape`, built on first use. `shape` must name everything that
 * changes the SQL text (which filters are present, the sort, the selected columns); values go in
 * as placeholders.
 */
export function prepared<Q>(store: Store, shape: string, build: () => Q): Q {
  let queries = caches.get(store);
  if (!queries) caches.set(store, (queries = new Map()));
  let query = queries.get(shape) as Q | undefined;
  if (query === undefined) {
    if (queries.size >= MAX_SHAPES) queries.clear();
    query = build();
    queries.set(shape, query);
  }
  return query;
}
