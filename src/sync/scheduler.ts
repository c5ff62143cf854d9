/**
 * The daemon's schedules (croner): a sync cycle per cluster every `intervalSeconds`, inventory
 * snapshots on a cron pattern with a retention policy, and history retention (old sync runs and
 * events, store/retention.ts) a minute after start and then hourly. `stop()` waits for work in
 * flight: a cycle that has not reached its write skips it, one that has finishes it (the write is
 * one synchronous transaction), and retention stops after its current batch, so the database is
 * never left half-written.
 *
 * It also keeps what the store may not show (`liveStatus()`): the cycle running now (since when,
 * in which phase, waiting on which requests) and the last failure, with how many failures in a
 * row the store could not record (a full disk). A streak of unrecorded failures is logged at error
 * level once, when it starts, and at info when the store records again.
 */
import { Cron } from 'croner';
import type { Logger } from '../log.js';
import { recordCycle, recordCycleCrash } from '../metrics.js';
import type { Store } from '../store/db.js';
import { pruneHistory, type PruneResult } from '../store/retention.js';
import { takeSnapshotWithRetention } from '../store/snapshots.js';
import type { RequestsInFlight } from './counting-client.js';
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
  /** The cluster's requests waiting for Proxmox now (counting-client.ts `trackRequests`), for `liveStatus()`. */
  requestsInFlight?: (cluster: string) => RequestsInFlight[];
}

/** One cluster as the daemon knows it beyond the store. Times are epoch ms. */
export interface LiveClusterStatus {
  cluster: string;
  /** The cycle running now, or null. */
  cycle: { startedAt: number; phase: string; waitingOn: RequestsInFlight[] } | null;
  /** The latest cycle's failure; null once a cycle succeeds (and before the first cycle ends). */
  lastFailure: { at: number; error: string; recorded: boolean } | null;
  /** Failed cycles since the last success that the store could not record: its failure count misses them. */
  unrecordedFailures: number;
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
  /** Every cluster's running cycle and last failure, as this process knows them. */
  liveStatus(): LiveClusterStatus[];
  stop(): Promise<void>;
}

/** The longest wait between attempts at a first sync that keeps failing after reading configs. */
export const FIRST_SYNC_RETRY_MAX_MS = 15 * 60_000;

export function startScheduler(deps: SchedulerDeps): Scheduler {
  const { syncs, store, log } = deps;
  const controller = new AbortController();
  const inFlight = new Set<Promise<unknown>>();
  const running = new Set<string>();
  const jobs: Cron[] = [];
  const timers: Array<ReturnType<typeof setTimeout>> = [];
  let pruning = false;
  const now = (): number => Date.now();
  const live = new Map<
    string,
    {
      cycle: { startedAt: number; phase: string } | null;
      lastFailure: LiveClusterStatus['lastFailure'];
      unrecordedFailures: number;
    }
  >(syncs.map((s) => [s.cluster, { cycle: null, lastFailure: null, unrecordedFailures: 0 }]));

  const track = <T>(p: Promise<T>): Promise<T> => {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p)).catch(() => {});
    return p;
  };

  /**
   * A first sync reads every guest's config; one that fails after asking for them (a full disk, a
   * deadline) would read them all again at every tick, 10,000 GETs a minute at 10,000 guests. The
   * schedule's attempts then wait twice as long each time, up to FIRST_SYNC_RETRY_MAX_MS.
   */
  const firstSyncRetry = new Map<string, { failures: number; at: number }>();

  function noteFirstSyncOutcome(cluster: string, s: CycleSummary): void {
    if (s.ok || !s.neverSynced || s.configsFetched === 0) {
      firstSyncRetry.delete(cluster);
      return;
    }
    const failures = (firstSyncRetry.get(cluster)?.failures ?? 0) + 1;
    const waitMs = Math.min(deps.intervalSeconds * 1000 * 2 ** failures, FIRST_SYNC_RETRY_MAX_MS);
    firstSyncRetry.set(cluster, { failures, at: now() + waitMs });
    log.warn(
      { cluster, configsRead: s.configsFetched, failures, retryInSeconds: Math.round(waitMs / 1000) },
      'the first sync failed after reading guest configs; the next attempt, which reads them all again, waits longer each time',
    );
  }

  async function cycle(sync: ClusterSync, scheduled = false): Promise<CycleSummary | undefined> {
    // A cycle slower than the interval delays the next one instead of overlapping it.
    if (running.has(sync.cluster) || controller.signal.aborted) return undefined;
    if (scheduled && now() < (firstSyncRetry.get(sync.cluster)?.at ?? 0)) return undefined;
    running.add(sync.cluster);
    const state = live.get(sync.cluster)!;
    const cycleNow = { startedAt: now(), phase: 'starting' };
    state.cycle = cycleNow;
    try {
      const summary = await sync.runCycle({
        signal: controller.signal,
        onProgress: deps.progress?.(sync.cluster),
        onPhase: (phase) => (cycleNow.phase = phase),
      });
      if (!summary.aborted) {
        noteOutcome(sync.cluster, summary.ok, summary.error, summary.recorded !== false);
        noteFirstSyncOutcome(sync.cluster, summary);
      }
      recordCycle(summary);
      deps.onCycle?.(summary);
      return summary;
    } catch (err) {
      log.error({ cluster: sync.cluster, err }, 'sync cycle crashed');
      recordCycleCrash(sync.cluster);
      noteOutcome(
        sync.cluster,
        false,
        `the sync cycle crashed: ${err instanceof Error ? err.message : String(err)}`,
        false,
      );
      return undefined;
    } finally {
      state.cycle = null;
      running.delete(sync.cluster);
    }
  }

  /** Keeps the outcome in memory; logs where a streak of failures the store could not record starts and ends. */
  function noteOutcome(cluster: string, ok: boolean, error: string | undefined, recorded: boolean): void {
    const state = live.get(cluster)!;
    const wasUnrecorded = state.lastFailure !== null && !state.lastFailure.recorded;
    if (ok) {
      if (wasUnrecorded)
        log.info(
          { cluster, unrecordedFailures: state.unrecordedFailures },
          'sync succeeded and was written to the store again',
        );
      state.lastFailure = null;
      state.unrecordedFailures = 0;
      return;
    }
    state.lastFailure = { at: now(), error: error ?? 'unknown error', recorded };
    if (recorded) {
      if (wasUnrecorded)
        log.info({ cluster, unrecordedFailures: state.unrecordedFailures }, 'the store records sync failures again');
      return;
    }
    state.unrecordedFailures++;
    if (!wasUnrecorded) {
      log.error(
        { cluster, err: state.lastFailure.error },
        'sync failed and the store could not record the failure, so the inventory file shows neither; /readyz and sync_status from this daemon report it until a sync is written (logged once until then)',
      );
    }
  }

  async function prune(): Promise<PruneResult | undefined> {
    const r = deps.retention;
    if (!r || pruning || controller.signal.aborted) return undefined;
    pruning = true;
    const started = Date.now();
    try {
      const policy = {
        syncRunsDays: r.syncRunsDays,
        eventsDays: r.eventsDays,
        keepEventsFromSeq: r.keepEventsFromSeq?.(),
      };
      const result = await pruneHistory(store, policy, started, { signal: controller.signal });
      const fields = {
        ...result,
        ms: Date.now() - started,
        syncRunsDays: r.syncRunsDays,
        eventsDays: r.eventsDays,
        keepEventsFromSeq: policy.keepEventsFromSeq ?? undefined,
      };
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
    liveStatus() {
      return [...live].map(([cluster, s]) => ({
        cluster,
        cycle: s.cycle ? { ...s.cycle, waitingOn: deps.requestsInFlight?.(cluster) ?? [] } : null,
        lastFailure: s.lastFailure ? { ...s.lastFailure } : null,
        unrecordedFailures: s.unrecordedFailures,
      }));
    },
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
      jobs.push(
        new Cron(
          '* * * * * *',
          { name: `sync:${sync.cluster}`, interval: deps.intervalSeconds, startAt, protect: true },
          async () => {
            await track(cycle(sync, true));
          },
        ),
      );
    }
  }
  if (deps.snapshots.schedule !== 'off') {
    jobs.push(
      new Cron(deps.snapshots.schedule, { name: 'snapshots', protect: true }, () => {
        try {
          scheduler.snapshotNow();
        } catch (err) {
          log.error({ err }, 'inventory snapshot failed');
        }
      }),
    );
  }
  const retention = deps.retention;
  if (retention && (retention.syncRunsDays > 0 || retention.eventsDays > 0)) {
    // Timers, not cron: "a minute after start, then hourly" is not a calendar pattern. unref: they never keep the process alive.
    const every = retention.everyMs ?? 3_600_000;
    timers.push(
      setTimeout(() => {
        void scheduler.pruneNow();
        timers.push(setInterval(() => void scheduler.pruneNow(), every).unref());
      }, retention.firstAfterMs ?? 60_000).unref(),
    );
  }
  return scheduler;
}
