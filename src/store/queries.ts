/**
 * The read side of the store: the queries MCP tools (and later actions and webhooks) answer from,
 * one module per subject under queries/; this file is their public surface.
 *
 * Conventions, for every function here:
 * - Synchronous, `store` first, and each call reads one consistent snapshot (a deferred read
 *   transaction): a sync cycle that commits meanwhile is seen entirely or not at all.
 * - Results are plain JSON-able objects with camelCase fields.
 * - Times come out as ISO-8601 strings (UTC, `2025-01-02T03:04:05.678Z`) or null; ages and durations
 *   are numbers of milliseconds in fields ending in `Ms`. Time inputs take epoch ms or an ISO string.
 *   (Tasks are stored in Proxmox's epoch seconds and converted.)
 * - Sizes are bytes (Proxmox's `maxmem`, `mem`, `maxdisk`, or fields ending in `Bytes`), except
 *   `memoryMib`/`balloonMib`, which are the config's own MiB values. `cpu` is a fraction (0..1) of `maxcpu`.
 * - Tombstoned (deleted) guests are left out unless a query is asked to include them.
 * - A guest's `lastSeenAt` is its effective time: the cluster's last successful read for a live row,
 *   the row's own `last_seen_at` once it is stale, missing or deleted.
 * - A stale guest (not confirmed by the last read: node offline, cluster unreachable, missing from
 *   the read) is answered as Proxmox reports a guest of an offline node: `status` `unknown`, no
 *   live `cpu`/`mem`/`uptime`; `lastKnownStatus` holds the status last seen. Filters, sorts, counts
 *   and top consumers take it so: `status: 'unknown'` matches it, `running` counts only guests
 *   running now, and it is never among the top consumers.
 * - Limits above a query's maximum are clamped, not refused: the result carries the `limit` applied
 *   and `limitClamped: true`. Input the caller can fix (a malformed cursor, a limit below 1, an
 *   unparsable time, an empty search) throws `QueryError`.
 * - SQL is built with drizzle's query builder or `sql` templates: every value is a bound parameter.
 */
export { oneRead, QUERY_LIMITS, QueryError, type LimitInfo } from './queries/shared.js';
export {
  countGuests,
  knownFilterValues,
  listGuests,
  OTHER_STATUS,
  topGuests,
  type FilterValueKind,
  type GuestField,
  type GuestFilter,
  type GuestPage,
  type GuestSort,
  type GuestSummary,
  type ListGuestsOptions,
  type TopGuest,
} from './queries/guests.js';
export {
  getGuest,
  nameSimilarity,
  type EventSummary,
  type GuestCandidate,
  type GuestDetail,
  type GuestLookup,
  type GuestMetrics,
  type GuestRef,
  type GuestSuggestion,
  type TaskSummary,
} from './queries/guest.js';
export {
  aggregate,
  type Aggregate,
  type AggregateBy,
  type AggregateGroup,
  type GuestStats,
} from './queries/aggregates.js';
export {
  getNode,
  listNodes,
  listStorage,
  type NodeDetail,
  type NodeLookup,
  type NodeSummary,
  type StorageEntry,
  type StorageFilter,
} from './queries/nodes.js';
export {
  eventCauses,
  eventsSince,
  listTasks,
  taskWindows,
  type EventPage,
  type EventQuery,
  type FoldedImport,
  type TaskCause,
  type TaskQuery,
  type TaskWindow,
  type TaskWithGuest,
} from './queries/history.js';
export {
  freshness,
  listClusters,
  syncStatus,
  type ClusterInfo,
  type ClusterSyncStatus,
  type Freshness,
} from './queries/status.js';
export {
  searchInventory,
  type SearchAnswer,
  type SearchField,
  type SearchMatch,
  type SearchResult,
} from './queries/search.js';
export {
  COMPLETION_LIMIT,
  completeClusters,
  completeGuests,
  completeNodes,
  type Completion,
} from './queries/completions.js';
/** Disk and NIC shapes as parsed from the config (src/sync/parse-config.ts writes them). */
export type { GuestDisk, GuestNic } from './guest-parts.js';
