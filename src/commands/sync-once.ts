/** `sync --once`: one cycle of every cluster, a summary line each. */
import { configFromEnv } from './config-env.js';
import { createDaemon } from '../main.js';
import { createProgress } from '../progress.js';
import type { CycleSummary } from '../sync/cycle.js';

export function describeCycle(s: CycleSummary): string {
  if (!s.ok && s.recorded === false)
    return `${s.cluster}: FAILED after ${s.durationMs} ms: ${s.error} (and the store could not record the failure)`;
  if (!s.ok)
    return `${s.cluster}: FAILED after ${s.durationMs} ms: ${s.error} (last-known inventory kept, marked stale)`;
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
