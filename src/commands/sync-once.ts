/** `sync --once`: one cycle of every cluster, a summary line each. */
import { configFromEnv } from './config-env.js';
import { createDaemon } from '../main.js';
import { createProgress } from '../progress.js';
import type { CycleSummary } from '../sync/cycle.js';

/** What a failed cycle left in the inventory, for the end of its line. */
function afterFailure(s: CycleSummary): string {
  const unrecorded = s.recorded === false;
  if (s.neverSynced)
    return unrecorded ? 'no inventory of it yet, and the store could not record the failure' : 'no inventory of it yet';
  return unrecorded
    ? 'last-known inventory kept; the store could not record the failure, so it is not marked stale'
    : 'last-known inventory kept, marked stale';
}

export function describeCycle(s: CycleSummary): string {
  if (!s.ok) {
    return `${s.cluster}: FAILED after ${s.durationMs} ms: ${s.error} (${afterFailure(s)})`;
  }
  const calls = Object.entries(s.calls)
    .map(([endpoint, n]) => `${endpoint.replace(/^GET /, '')} ${n}`)
    .join(', ');
  const changes =
    Object.entries(s.changes)
      .map(([type, n]) => `${type} ${n}`)
      .join(', ') || 'none';
  return `${s.cluster}: ok in ${s.durationMs} ms · ${s.guests} guests, ${s.nodes} nodes · ${s.callsTotal} API calls (${calls}) · ${s.configsFetched} configs read · changes: ${changes}`;
}

/** `sync --once`: one cycle of every cluster, a line each; exit code 1 if any failed. */
export async function runSyncOnce(configPath: string | undefined): Promise<number> {
  const daemon = createDaemon(configFromEnv(configPath));
  try {
    let failures = 0;
    for (const sync of daemon.syncs) {
      let summary = await sync.runCycle({ onProgress: createProgress(process.stderr, daemon.log, sync.cluster) });
      // Beside a running serve, its write may land between this cycle's read and write: read again.
      for (let retry = 0; summary.concurrentWrite && retry < 3; retry++) summary = await sync.runCycle();
      process.stdout.write(`${describeCycle(summary)}\n`);
      if (!summary.ok) failures++;
    }
    return failures ? 1 : 0;
  } finally {
    await daemon.close();
  }
}
