/**
 * The daemon's schedules (croner): a sync cycle per cluster every `intervalSeconds`, and inventory
 * snapshots on a cron pattern with a retention policy. `stop()` waits for work in flight: a cycle
 * that has not reached its write skips it, one that has finishes it (the write is one
 * synchronous transaction), so the database is never left half-written.
 */
import { Cron } from 'croner';
import type { Logger } from '../log.js';
import type { Store } from '../store/db.js';
import { takeSnapshotWithRetention } from '../store/snapshots.js';
import type { ClusterSync, CycleSummary } from './cycle.js';

export interface SchedulerDeps {
  syncs: ClusterSync[];
  store: Store;
  /** Seconds between cycles; 0: no sync schedule. */
  intervalSeconds: number;
  snapshots: { schedule: string; keep: number; maxAgeDays: number };
  log: Logger;
  /** Told about every finished cycle (the daemon logs and counts them). */
  onCycle?: (summary: CycleSummary) => void;
  /** Progress of a cycle's config reads (shown for the first sync of a big cluster). */
  progress?: (cluster: string) => (done: number, total: number) => void;
}

export interface Scheduler {
  /** Runs one cycle of every cluster now (also what the schedule calls). */
  syncNow(): Promise<CycleSummary[]>;
  snapshotNow(label?: string): void;
  stop(): Promise<void>;
}

export function startScheduler(deps: SchedulerDeps): Scheduler {
  const { syncs, store, log } = deps;
  const controller = new AbortController();
  const inFlight = new Set<Promise<unknown>>();
  const running = new Set<string>();
  const jobs: Cron[] = [];

  const track = <T>(p: Promise<T>): Promise<T> => {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p)).catch(() => {});
    return p;
  };

  async function cycle(sync: ClusterSync): Promise<CycleSummary | undefined> {
    // A cycle slower than the interval delays the next one instead of overlapping it.
    if (running.has(sync.cluster) || controller.signal.aborted) return undefined;
    running.add(sync.cluster);
    try {
      const summary = await sync.runCycle({ signal: controller.signal, onProgress: deps.progress?.(sync.cluster) });
      deps.onCycle?.(summary);
      return summary;
    } catch (err) {
      log.error({ cluster: sync.cluster, err }, 'sync cycle crashed');
      return undefined;
    } finally {
      running.delete(sync.cluster);
    }
  }

  const scheduler: Scheduler = {
    async syncNow() {
      const results = await Promise.all(syncs.map((s) => track(cycle(s))));
      return results.filter((r): r is CycleSummary => r !== undefined);
    },
    snapshotNow(label) {
      const { info, pruned } = takeSnapshotWithRetention(store, label, deps.snapshots);
      log.info({ snapshot: info.id, guests: info.guests, pruned }, 'inventory snapshot taken');
    },
    async stop() {
      for (const job of jobs) job.stop();
      controller.abort(new Error('shutting down'));
      await Promise.allSettled([...inFlight]);
    },
  };

  if (deps.intervalSeconds > 0) {
    for (const sync of syncs) {
      // The first cycle starts at once; the schedule takes over one interval later.
      void track(cycle(sync));
      const startAt = new Date(Date.now() + deps.intervalSeconds * 1000);
      jobs.push(new Cron('* * * * * *', { name: `sync:${sync.cluster}`, interval: deps.intervalSeconds, startAt, protect: true }, async () => {
        await track(cycle(sync));
      }));
    }
  }
  if (deps.snapshots.schedule !== 'off') {
    jobs.push(new Cron(deps.snapshots.schedule, { name: 'snapshots', protect: true }, () => {
      try {
        scheduler.snapshotNow();
      } catch (err) {
        log.error({ err }, 'inventory snapshot failed');
      }
    }));
  }
  return scheduler;
}
