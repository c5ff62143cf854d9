/**
 * The BullMQ side of actions: a queue that carries only action ids (the row in SQLite holds
 * everything else, and no secret ever enters Redis), the worker that runs them within the limits,
 * the reconciler that puts back what Redis lost and expires what waited too long, and a canary
 * job that proves the worker still takes jobs (BullMQ workers have been known to stop taking jobs
 * after a Redis outage without an error).
 */
import { Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { redisTroubleLog } from '../queue/trouble.js';
import { recordActionFinished, recordActionRunning, recordCanary } from '../metrics.js';
import { expireDue, getAction, unfinishedActions } from '../store/actions.js';
import { hasLiveJob } from '../queue/jobs.js';
import { KeyedLimiter } from './limits.js';
import { runAction, type RunDeps } from './run-action.js';

export const ACTIONS_QUEUE = 'actions';
const CANARY = 'canary';

export interface ActionQueue {
  /** Adds the action's job; throws while Redis cannot be reached (the row stays queued). */
  enqueue(actionId: string): Promise<void>;
  /** Whether the connection to Redis is up now: an enqueue will all but surely land. */
  connected(): boolean;
  /** Waits for the enqueues still on their way, then closes the connection. */
  close(): Promise<void>;
}

/** An action's job: its id is the action's, so adding it again while it is queued does nothing. */
const actionJob = (actionId: string) =>
  ['action', { actionId }, { jobId: actionId, removeOnComplete: true, removeOnFail: 1000 }] as const;

/** How long enqueue() waits for a Redis this queue has not reached yet. */
export const ENQUEUE_TIMEOUT_MS = 2_000;

export function createActionQueue(
  connection: ConnectionOptions,
  prefix?: string,
  { timeoutMs = ENQUEUE_TIMEOUT_MS }: { timeoutMs?: number } = {},
): ActionQueue {
  const queue = new Queue(ACTIONS_QUEUE, { connection, prefix });
  // While Redis is down each reconnect attempt emits an error that BullMQ would print raw to
  // stderr; the caller hears of it from enqueue(), which throws (submitAction says what happens next).
  queue.on('error', () => undefined);
  // BullMQ's client, once it first connected; until then the connection counts as down.
  let redis: { status: string } | undefined;
  queue.getBackend().client.then(
    (client) => (redis = client),
    () => undefined,
  );
  const inFlight = new Set<Promise<void>>();
  async function enqueue(actionId: string): Promise<void> {
    // Without an offline queue a lost connection fails add() at once, but a connection that never
    // came up (the process started while Redis was down) makes add() wait for it without end.
    const added = queue.add(...actionJob(actionId));
    added.catch(() => undefined); // after the timeout nobody waits for it; a late add is harmless (same job id)
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Redis did not answer within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([added, late]);
    } finally {
      clearTimeout(timer);
    }
  }
  return {
    enqueue(actionId) {
      const sent = enqueue(actionId);
      const settled = sent.catch(() => undefined);
      inFlight.add(settled);
      void settled.then(() => inFlight.delete(settled));
      return sent;
    },
    connected: () => redis?.status === 'ready',
    async close() {
      await Promise.all(inFlight);
      await queue.close();
    },
  };
}

export interface WorkerSettings {
  /** Actions running at once, over all nodes. */
  concurrency: number;
  perNode: number;
  /** How often the reconciler and the canary run. */
  reconcileEveryMs: number;
  /** On stop, how long running actions are waited for before the process leaves them to the next start. */
  stopGraceMs: number;
  /**
   * How long a job stays claimed by a worker that stopped renewing it (BullMQ's lock; a live
   * worker renews it every half of this): a killed daemon's running actions resume after the next
   * start within about twice this.
   */
  lockMs: number;
}

export const DEFAULT_WORKER_SETTINGS: WorkerSettings = {
  concurrency: 16,
  perNode: 4,
  reconcileEveryMs: 30_000,
  stopGraceMs: 30_000,
  lockMs: 30_000,
};

export interface ActionWorker {
  /** The last time the canary went through the worker (epoch ms), or undefined before the first. */
  canaryAt(): number | undefined;
  /** Whether the worker took a job (the canary or an action) within three periods, or is busy on all its slots. */
  healthy(): boolean;
  /** One reconciler pass now (also what the timer runs). */
  reconcile(): Promise<void>;
  stop(): Promise<void>;
}

export interface WorkerDeps extends Omit<RunDeps, 'signal'> {
  connection: ConnectionOptions;
  prefix?: string;
  /**
   * No other worker takes jobs under this prefix (serve holds the data directory's lock, and the
   * prefix is the inventory's): at start, an action job left active is a dead daemon's, and is
   * taken back at once rather than after BullMQ's stalled check.
   */
  soleWorker?: boolean;
  settings?: Partial<WorkerSettings>;
}

export function startActionWorker(deps: WorkerDeps): ActionWorker {
  const settings = { ...DEFAULT_WORKER_SETTINGS, ...deps.settings };
  const { store, log } = deps;
  const perNode = new KeyedLimiter(settings.perNode);
  const perGuest = new KeyedLimiter(1);
  const inProcess = new Set<string>();
  const stopping = new AbortController();
  let canaryAt: number | undefined;
  let tookJobAt: number | undefined;
  let busySlots = 0;
  const startedAt = deps.now();

  const processor = async (job: Job<{ actionId?: string }>): Promise<void> => {
    tookJobAt = deps.now();
    if (job.name === CANARY) {
      canaryAt = tookJobAt;
      recordCanary(canaryAt);
      return;
    }
    const id = job.data.actionId;
    if (!id) return;
    busySlots++;
    try {
      await runLimited(id);
    } finally {
      busySlots--;
    }
  };

  /** Runs one action within the node and guest limits; the row says which node and guest. */
  async function runLimited(id: string): Promise<void> {
    if (inProcess.has(id)) return;
    inProcess.add(id);
    try {
      const row = getAction(store, id);
      if (!row || (row.state !== 'queued' && row.state !== 'running')) return;
      const releaseGuest = await perGuest.acquire(`${row.cluster}/${row.vmid}`);
      const releaseNode = await perNode.acquire(`${row.cluster}/${row.node}`);
      recordActionRunning(1);
      try {
        await runAction({ ...deps, signal: stopping.signal }, id);
        recordIfFinished(id);
      } finally {
        recordActionRunning(-1);
        releaseNode();
        releaseGuest();
      }
    } finally {
      inProcess.delete(id);
    }
  }

  /** Counts the action's final state; one left running (a stop, a task still waited on) is counted when it ends. */
  function recordIfFinished(id: string): void {
    const row = getAction(store, id);
    if (row && row.state !== 'queued' && row.state !== 'running') recordActionFinished(row.kind, row.state);
  }

  const worker = new Worker(ACTIONS_QUEUE, processor, {
    connection: deps.connection,
    prefix: deps.prefix,
    concurrency: settings.concurrency,
    lockDuration: settings.lockMs,
    stalledInterval: settings.lockMs,
    // An action's own state is in SQLite: a job that failed is put back by the reconciler, not retried blind.
    maxStalledCount: 10,
  });
  worker.on('error', redisTroubleLog(log, 'action worker: Redis error (jobs resume when it is back)'));
  const queue = new Queue(ACTIONS_QUEUE, {
    connection: { ...deps.connection, enableOfflineQueue: false },
    prefix: deps.prefix,
  });
  queue.on('error', () => undefined); // reported by the worker's handler and the reconciler

  let firstPass = true;
  async function reconcile(): Promise<void> {
    const expired = expireDue(store, deps.now());
    for (const row of expired) {
      log.info({ action: row.id, kind: row.kind, vmid: row.vmid }, 'action expired before it started');
      recordActionFinished(row.kind, 'expired');
    }
    try {
      // At the head of the queue: behind a backlog of actions it would come late and say the worker is stuck.
      await queue.add(CANARY, {}, { lifo: true, removeOnComplete: true, removeOnFail: true });
      for (const row of unfinishedActions(store)) {
        if (inProcess.has(row.id)) continue;
        // Redis lost it (or it ended there without ending here): the row is the truth.
        const { live, was } = await hasLiveJob(queue, row.id, firstPass && deps.soleWorker ? worker.id : undefined);
        if (live) continue;
        await queue.add(...actionJob(row.id));
        log.info({ action: row.id, state: row.state, was }, 'action job put back on the queue');
      }
      firstPass = false;
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'action reconciler: Redis unreachable; queued actions wait in SQLite');
    }
  }

  // Passes run one after another, none after stop, and stop waits for the one under way: closing
  // the queue under it made a clean shutdown log "Redis unreachable". A pass asked for while one
  // runs follows it, so it sees what changed since; the timer adds none while one waits.
  let passes = Promise.resolve();
  let waiting = 0;
  let stopped = false;
  function reconcileNext(): Promise<void> {
    waiting++;
    const next = passes.then(async () => {
      waiting--;
      if (!stopped) await reconcile();
    });
    passes = next.catch(() => undefined);
    return next;
  }

  const timer = setInterval(() => {
    if (waiting === 0) void reconcileNext();
  }, settings.reconcileEveryMs);
  timer.unref();
  void reconcileNext();

  return {
    canaryAt: () => canaryAt,
    // Any job taken proves the worker takes jobs as well as the canary does; with every slot on a
    // long task it cannot take the canary, and is busy rather than stuck.
    healthy: () =>
      busySlots >= settings.concurrency || deps.now() - (tookJobAt ?? startedAt) < 3 * settings.reconcileEveryMs,
    reconcile: reconcileNext,
    async stop() {
      stopped = true;
      clearInterval(timer);
      // Bounded: over a Redis that holds the connection but never answers, the pass would never end;
      // a pass takes milliseconds otherwise.
      const passWait = Math.min(settings.stopGraceMs, 2_000);
      await Promise.race([passes, new Promise((r) => setTimeout(r, passWait).unref())]);
      // With nothing running there is nothing to wait for; a plain close would wait on Redis, and
      // with Redis down that is the whole shutdown deadline.
      const closing = busySlots === 0 ? worker.close(true) : worker.close();
      const graced = await Promise.race([
        closing.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), settings.stopGraceMs).unref()),
      ]);
      if (!graced) {
        // Left running: their rows keep their UPIDs, and the next start waits on those tasks again.
        stopping.abort(new Error('stopping'));
        await worker.close(true);
      }
      await queue.close();
    },
  };
}
