/**
 * A worker's Redis errors, logged without flooding: ioredis reconnects about once a second on each
 * of a worker's connections, so a Redis that is down for an hour would otherwise write thousands of
 * identical warnings. The first error is logged at once; after it, at most one a minute, saying how
 * many were left out.
 */
import type { Logger } from '../log.js';

export function redisTroubleLog(
  log: Logger,
  message: string,
  { everyMs = 60_000, now = Date.now }: { everyMs?: number; now?: () => number } = {},
): (err: Error) => void {
  let loggedAt: number | undefined;
  let leftOut = 0;
  return (err) => {
    const t = now();
    if (loggedAt !== undefined && t - loggedAt < everyMs) {
      leftOut++;
      return;
    }
    log.warn({ err: err.message, ...(leftOut ? { leftOut } : {}) }, message);
    loggedAt = t;
    leftOut = 0;
  };
}
