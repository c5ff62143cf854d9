import { z } from 'zod';
import { syncStatus } from '../../store/queries.js';
import { table, untrusted } from '../render.js';
import { defineTool, READ_ONLY } from '../tool.js';

export const syncStatusTool = defineTool({
  name: 'sync_status',
  title: 'Sync status',
  description: 'Per cluster: last successful sync, age, failures, last error, API calls and duration per cycle, change signals the token cannot see.',
  input: z.object({}).strict(),
  output: z.object({ clusters: z.array(z.record(z.string(), z.unknown())) }),
  annotations: READ_ONLY,
  handler(_args, { store, now, staleAfterMs }) {
    const status = syncStatus(store, now(), staleAfterMs);
    const rows = status.clusters.map((c) => [
      c.cluster,
      c.overdue ? 'OVERDUE' : c.stale ? 'STALE' : 'ok',
      c.lastSuccessAt ?? 'never',
      c.ageMs == null ? '-' : `${Math.round(c.ageMs / 1000)}s`,
      String(c.lastSuccessfulRun?.callsTotal ?? '-'),
      c.lastSuccessfulRun ? `${c.lastSuccessfulRun.durationMs}ms` : '-',
      String(c.consecutiveFailures),
      untrusted(c.lastError, 120),
    ]);
    const signals = status.clusters.flatMap((c) => Object.entries(c.signalProblems).map(([signal, problem]) => `- ${c.cluster} (${signal} signal): ${problem}`));
    const text = status.clusters.length ? table(['cluster', 'state', 'last_success', 'age', 'calls', 'duration', 'failures', 'last_error'], rows) : 'no cluster has been synced yet';
    return {
      structured: { clusters: status.clusters as unknown as Array<Record<string, unknown>> },
      text: signals.length ? `${text}\nchange signals missing:\n${signals.join('\n')}` : text,
    };
  },
});
