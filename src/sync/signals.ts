/**
 * Change signals a cluster cannot give because of the token's privileges, worked out from what
 * GET /access/permissions answers. Pure: the caller reads the permissions and stores the result
 * (clusters.signal_problems).
 */
import type { AccessPermissions } from '../proxmox/types.js';

/** Problems by signal name, e.g. `{ log: "…" }`: the JSON of clusters.signal_problems. */
export type SignalProblems = Record<string, string>;

/**
 * Why `update VM N:` lines of other users are missing from /cluster/log, or undefined when the
 * token sees them. Cluster.pm `log` returns every line only with Sys.Syslog on `/` itself
 * (`check($user, '/', ['Sys.Syslog'])`); without it a token gets only the lines it wrote. A
 * privilege listed on `/` counts whatever its propagate flag, since the check is on `/` itself.
 * `sweepPeriodMinutes` is how often the sweep re-reads every config (sync.sweepPeriodMinutes,
 * 6 h by default; 0 when there is no sweep).
 */
export function clusterLogProblem(permissions: AccessPermissions, sweepPeriodMinutes = 360): string | undefined {
  const root = Object.hasOwn(permissions, '/') ? permissions['/'] : undefined;
  if (root && Object.hasOwn(root, 'Sys.Syslog')) return undefined;
  const every = sweepPeriodMinutes % 60 ? `${sweepPeriodMinutes} min` : `${sweepPeriodMinutes / 60} h`;
  const fallback =
    sweepPeriodMinutes <= 0
      ? 'no sweep re-reads those configs either (the sweep is off)'
      : `they are seen by the ${sweepPeriodMinutes === 60 ? 'hourly sweep' : `sweep (every ${every})`} instead`;
  return `the token lacks Sys.Syslog on /, so /cluster/log hides other users' config edits; ${fallback} (grant a role with Sys.Syslog, README: The API token)`;
}

/** The value for clusters.signal_problems: every problem by signal, or null when every signal works. */
export function signalProblems(permissions: AccessPermissions, sweepPeriodMinutes = 360): SignalProblems | null {
  const log = clusterLogProblem(permissions, sweepPeriodMinutes);
  return log === undefined ? null : { log };
}
