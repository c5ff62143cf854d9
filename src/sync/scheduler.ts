/**
 * The daemon's schedules (croner): a sync cycle per cluster every `intervalSeconds`, inventory
 * snapshots on a cron pattern with a retention policy, and history retention (old sync runs and
 * events, store/retention.ts) a minute after start and then hourly. `stop()` waits for work in
 * flight: a cycle that has not reached its write skips it, one that has finishes it (the write is
 * one synchronous transaction), and retention stops after its current batch, so the database is
 * never left half-written.
 */
import { Cron } from 'croner';
import type { Logger } from '../log.js';
import type { Store } from '../store/db.js';
import { pruneHistory, type PruneResult } from '../store/retention.js';
import { takeSnapshotWithRetention } from '../store/snapshots.js';
import type { ClusterSync, CycleSummary } from './cycle.js';

export interface SchedulerDeps {
  syncs: ClusterSync[];
  store: Store;
  /** Seconds between cycles; 0: no sync schedule. */
  intervalSeconds: number;
  snapshots: { schedule: string; keep: number; maxAgeDays: number };
  /** History retention; absent, or both windows 0: none. */
  retention?: RetentionSchedule;
  log: Logger;
  /** Told about every finished cycle (the daemon logs and counts them). */
  onCycle?: (summary: CycleSummary) => void;
  /** Progress of a cycle's config reads (shown for the first sync of a big cluster). */
  progress?: (cluster: string) => (done: number, total: number) => void;
}

export interface RetentionSchedule {
  /** Days of sync_runs kept (each cluster's latest and latest successful run always); 0: forever. */
  syncRunsDays: number;
  /** Days of events kept; 0: forever. */
  eventsDays: number;
  /**
   * The seq of the oldest event still needed, read before each run: the webhook relay's oldest
   * undelivered event. Events from it on are kept whatever their age.
   */
  keepEventsFromSeq?: () => number | null | undefined;
  /** The first run, after the first sync has had its turn (60 s). */
  firstAfterMs?: number;
  /** Between runs (an hour). */
  everyMs?: number;
}

export interface Scheduler {
  /** Runs one cycle of every cluster now (also what the schedule calls). */
  syncNow(): Promise<CycleSummary[]>;
  snapshotNow(label?: string): void;
  /**
   * Prunes old history now (also what the schedule calls) and logs the counts; undefined when
   * retention is off, a run is already going, or it failed (logged, retried at the next run).
   */
  pruneNow(): Promise<PruneResult | undefined>;
  stop(): Promise<void>;
}

export function startScheduler(deps: SchedulerDeps): Scheduler {
  const { syncs, store, log } = deps;
  const controller = new AbortController();
  const inFlight = new Set<Promise<unknown>>();
  const running = new Set<string>();
  const jobs: Cron[] = [];
  const timers: Array<ReturnType<typeof setTimeout>> = [];
  let pruning = false;

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

  async function prune(): Promise<PruneResult | undefined> {
    const r = deps.retention;
    if (!r || pruning || controller.signal.aborted) return undefined;
    pruning = true;
    const started = Date.now();
    try {
      const policy = { syncRunsDays: r.syncRunsDays, eventsDays: r.eventsDays, keepEventsFromSeq: r.keepEventsFromSeq?.() };
      const result = await pruneHistory(store, policy, started, { signal: controller.signal });
      const fields = { ...result, ms: Date.now() - started, syncRunsDays: r.syncRunsDays, eventsDays: r.eventsDays, keepEventsFromSeq: policy.keepEventsFromSeq ?? undefined };
      if (result.syncRuns || result.events) log.info(fields, 'old history pruned');
      else log.debug(fields, 'history retention: nothing old enough');
      return result;
    } catch (err) {
      log.error({ err }, 'history retention failed; it runs again at the next interval');
      return undefined;
    } finally {
      pruning = false;
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
    pruneNow: () => track(prune()),
    async stop() {
      for (const job of jobs) job.stop();
      for (const timer of timers) clearTimeout(timer);
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
  const retention = deps.retention;
  if (retention && (retention.syncRunsDays > 0 || retention.eventsDays > 0)) {
    // Timers, not cron: "a minute after start, then hourly" is not a calendar pattern. unref: they never keep the process alive.
    const every = retention.everyMs ?? 3_600_000;
    timers.push(setTimeout(() => {
      void scheduler.pruneNow();
      timers.push(setInterval(() => void scheduler.pruneNow(), every).unref());
    }, retention.firstAfterMs ?? 60_000).unref());
  }
  return scheduler;
}
