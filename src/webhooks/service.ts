/**
 * Webhooks at run time: the relay (committed events → delivery rows, cursor moved in the same
 * transaction → a BullMQ job per delivery), the delivery worker (one signed attempt per job; the
 * outcome recorded; a retry is a delayed job of its own), and a reconciler that gives every pending
 * delivery a job again after Redis lost them. SQLite holds the truth, Redis the timers.
 */
import { DelayedError, Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Dispatcher } from 'undici';
import type { Logger } from '../log.js';
import { recordDeliveryAttempt } from '../metrics.js';
import type { Store } from '../store/db.js';
import {
  deliveryContext,
  disableSubscription,
  failingSince,
  pendingDeliveries,
  recordAttempts,
  type AttemptRecord,
  relayCursor,
  relayEvents,
  type DeliveryContext,
  type DeliveryRow,
} from '../store/webhooks.js';
import { hasLiveJob } from '../queue/jobs.js';
import { redisTroubleLog } from '../queue/trouble.js';
import { deliver, type DeliveryOutcome } from './deliver.js';
import { envelopeBody } from './envelope.js';
import { retryDelayMs } from './schedule.js';
import { signingSecrets } from './secret.js';

export const WEBHOOKS_QUEUE = 'webhooks';

/**
 * How long an attempt's outcome waits for others to share its transaction: a commit (an fsync
 * under `synchronous = FULL`) costs a few milliseconds, so one per delivery capped the service
 * at a few hundred a second.
 */
const OUTCOME_BATCH_MS = 10;

export interface WebhookSettings {
  /** How often the relay looks for new events. */
  relayEveryMs: number;
  /** Deliveries in flight at once. */
  concurrency: number;
  /**
   * Deliveries in flight at once to one subscription: a slow receiver with a backlog holds this
   * many slots, never all of them, so the other subscriptions' deliveries keep going.
   */
  perSubscription: number;
  /**
   * How long a delivery is put back when its subscription already holds half of the worker's
   * slots (`perSubscription` sending, the rest waiting for one of those).
   */
  busyDelayMs: number;
  timeoutMs: number;
  /** Delay before attempt 1, 2, …; its length is the number of attempts. */
  schedule?: readonly number[];
  /** A subscription failing this long with no success is disabled. */
  disableAfterMs: number;
  reconcileEveryMs: number;
}

export const DEFAULT_WEBHOOK_SETTINGS: WebhookSettings = {
  relayEveryMs: 250,
  concurrency: 16,
  perSubscription: 4,
  busyDelayMs: 1_000,
  timeoutMs: 15_000,
  disableAfterMs: 5 * 86_400_000,
  reconcileEveryMs: 30_000,
};

export interface WebhookDeps {
  store: Store;
  connection: ConnectionOptions;
  prefix?: string;
  /** The SSRF-guarded dispatcher (ssrf.ts createWebhookAgent). */
  agent: Dispatcher;
  log: Logger;
  now: () => number;
  settings?: Partial<WebhookSettings>;
  /**
   * No other worker delivers under this prefix (serve holds the data directory's lock): at start, a
   * delivery job left active is a killed daemon's, and is taken back at once rather than after
   * BullMQ's stalled check.
   */
  soleWorker?: boolean;
}

export interface Webhooks {
  /** One relay step now (also what the timer runs); answers how many deliveries it made. */
  relay(): Promise<number>;
  reconcile(): Promise<void>;
  stop(): Promise<void>;
}

const jobId = (d: Pick<DeliveryRow, 'id' | 'attempts'>): string => `${d.id}-${d.attempts}`;

export function startWebhooks(deps: WebhookDeps): Webhooks {
  const settings = { ...DEFAULT_WEBHOOK_SETTINGS, ...deps.settings };
  const { store, log } = deps;
  const queue = new Queue(WEBHOOKS_QUEUE, {
    connection: { ...deps.connection, enableOfflineQueue: false },
    prefix: deps.prefix,
  });
  queue.on('error', () => undefined); // the worker's handler and the reconciler report Redis trouble

  const job = (d: Pick<DeliveryRow, 'id' | 'attempts'>, delay = 0) => ({
    name: 'deliver',
    data: { deliveryId: d.id },
    opts: { jobId: jobId(d), delay, removeOnComplete: true, removeOnFail: 1000 },
  });
  async function enqueue(d: Pick<DeliveryRow, 'id' | 'attempts'>, delay = 0): Promise<void> {
    const { name, data, opts } = job(d, delay);
    await queue.add(name, data, opts);
  }

  let relaying = false;
  async function relay(): Promise<number> {
    if (relaying) return 0;
    relaying = true;
    try {
      // A read first: the write lock is taken only when there is something to relay.
      const newest = store.sqlite.prepare('SELECT max(seq) FROM events').pluck().get() as number | null;
      if (newest === null || newest <= relayCursor(store)) return 0;
      let made = 0;
      for (;;) {
        const batch = relayEvents(store, deps.now());
        made += batch.length;
        // One round trip for the batch; jobs lost here (Redis away) are added by the reconciler.
        if (batch.length) await queue.addBulk(batch.map((d) => job(d))).catch(() => undefined);
        if (!batch.length || relayCursor(store) >= newest) return made;
      }
    } finally {
      relaying = false;
    }
  }

  const slots = subscriptionSlots(settings);
  const outcomes = batchedOutcomes(store, deps.now);

  async function attempt(job: Job<{ deliveryId: string }>, token?: string): Promise<void> {
    const context = deliveryContext(store, job.data.deliveryId);
    if (!context || context.delivery.state !== 'pending') return;
    const { subscription } = context;
    if (!subscription.enabled) return; // kept pending: delivered after `webhooks enable`
    const release = await slots.take(subscription.id);
    if (!release) {
      // The slot goes back to the other subscriptions; this job comes back later, unchanged.
      await job.moveToDelayed(Date.now() + settings.busyDelayMs, token);
      throw new DelayedError();
    }
    try {
      await send(context);
    } finally {
      release();
    }
  }

  async function send({ delivery, subscription, event }: DeliveryContext): Promise<void> {
    const now = deps.now();
    const outcome = await deliver({
      url: subscription.url,
      body: envelopeBody(event),
      id: event.id,
      timestamp: Math.floor(now / 1000),
      secrets: signingSecrets(subscription, now),
      agent: deps.agent,
      timeoutMs: settings.timeoutMs,
      now: deps.now,
    });
    await record(delivery, outcome);
  }

  async function record(d: DeliveryRow, o: DeliveryOutcome): Promise<void> {
    recordDeliveryAttempt(o.kind);
    const now = deps.now();
    const attempts = d.attempts + 1;
    const retryable =
      o.kind === 'retry' || o.kind === 'timeout' || o.kind === 'error' || o.kind === 'refused' || o.kind === 'redirect';
    const delay = retryable
      ? retryDelayMs(attempts, { schedule: settings.schedule, retryAfterMs: o.retryAfterMs })
      : undefined;
    const state = o.kind === 'success' ? 'succeeded' : delay === undefined ? 'failed' : 'pending';
    const row = await outcomes.record(d.id, {
      state,
      status: o.status ?? null,
      error: o.error ?? null,
      response: o.responseText ?? null,
      nextAttemptAt: state === 'pending' ? now + delay! : null,
    });
    if (!row) return;
    if (o.kind === 'gone') {
      disableSubscription(store, d.subscriptionId, 'the receiver answered 410 Gone', now);
      log.warn({ subscription: d.subscriptionId }, 'webhook subscription disabled: the receiver answered 410 Gone');
    }
    if (state === 'pending') await enqueue(row, delay);
    else if (state === 'failed')
      log.warn(
        { subscription: d.subscriptionId, delivery: d.id, event: d.eventId, status: o.status, error: o.error },
        'webhook delivery failed for good (dead letter; replayable)',
      );
  }

  const worker = new Worker(WEBHOOKS_QUEUE, attempt, {
    connection: { ...deps.connection, maxRetriesPerRequest: null },
    prefix: deps.prefix,
    concurrency: settings.concurrency,
  });
  worker.on('error', redisTroubleLog(log, 'webhook worker: Redis error (deliveries resume when it is back)'));

  let firstPass = true;
  async function reconcile(): Promise<void> {
    const now = deps.now();
    for (const s of failingSince(store, now - settings.disableAfterMs)) {
      const days = Math.round(settings.disableAfterMs / 86_400_000);
      disableSubscription(store, s.id, `no successful delivery for ${days} days`, now);
      log.warn({ subscription: s.id }, 'webhook subscription disabled: failing without a success for days');
    }
    try {
      for (const d of pendingDeliveries(store)) {
        // A job that ended in Redis while its row stayed pending (it threw before recording) is
        // replaced: left in the failed list, its delivery would wait for good. At start, one a
        // killed daemon left active is taken back at once (see WebhookDeps.soleWorker).
        const { live } = await hasLiveJob(queue, jobId(d), firstPass && deps.soleWorker ? worker.id : undefined);
        if (live) continue;
        await enqueue(d, Math.max(0, (d.nextAttemptAt ?? now) - now));
      }
      firstPass = false;
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'webhook reconciler: Redis unreachable; deliveries wait in SQLite');
    }
  }

  const relayTimer = setInterval(
    () => void relay().catch((err: unknown) => log.warn({ err: String(err) }, 'webhook relay failed')),
    settings.relayEveryMs,
  );
  const reconcileTimer = setInterval(() => void reconcile(), settings.reconcileEveryMs);
  relayTimer.unref();
  reconcileTimer.unref();
  void reconcile();

  return {
    relay,
    reconcile,
    async stop() {
      clearInterval(relayTimer);
      clearInterval(reconcileTimer);
      await worker.close();
      await queue.close();
    },
  };
}

/**
 * Attempt outcomes recorded together: those that end within OUTCOME_BATCH_MS of each other share
 * one transaction, so a busy service commits once per batch rather than once per delivery.
 * Each caller waits for its row, so a job completes only after its outcome is on disk.
 */
function batchedOutcomes(store: Store, now: () => number) {
  type Waiting = {
    id: string;
    attempt: AttemptRecord;
    resolve: (row: DeliveryRow | undefined) => void;
    reject: (err: unknown) => void;
  };
  let waiting: Waiting[] = [];
  function flush(): void {
    const batch = waiting;
    waiting = [];
    try {
      const rows = recordAttempts(store, batch, now());
      batch.forEach((w, i) => w.resolve(rows[i]));
    } catch (err) {
      for (const w of batch) w.reject(err);
    }
  }
  return {
    record(id: string, attempt: AttemptRecord): Promise<DeliveryRow | undefined> {
      return new Promise((resolve, reject) => {
        if (!waiting.length) setTimeout(flush, OUTCOME_BATCH_MS);
        waiting.push({ id, attempt, resolve, reject });
      });
    },
  };
}

/**
 * Per-subscription slots: at most `perSubscription` deliveries to one subscription are sent at
 * once; the next few wait in the process for one of those slots (a millisecond on a fast receiver,
 * where putting the job back in Redis for a second cost a round trip and a second of latency).
 * A subscription never holds more than half of the worker's slots, sending and waiting together,
 * so a slow receiver with a backlog leaves the other half to the other subscriptions; past that,
 * `take` answers undefined and the job goes back to the queue.
 */
function subscriptionSlots(settings: Pick<WebhookSettings, 'concurrency' | 'perSubscription'>) {
  const most = Math.max(settings.perSubscription, Math.floor(settings.concurrency / 2));
  const held = new Map<string, { sending: number; waiting: Array<() => void> }>();
  function release(id: string): void {
    const h = held.get(id)!;
    const next = h.waiting.shift();
    if (next) return next(); // the slot passes straight to a waiting delivery
    h.sending--;
    if (h.sending === 0) held.delete(id);
  }
  return {
    async take(id: string): Promise<(() => void) | undefined> {
      let h = held.get(id);
      if (!h) held.set(id, (h = { sending: 0, waiting: [] }));
      if (h.sending < settings.perSubscription) h.sending++;
      else if (h.sending + h.waiting.length >= most) return undefined;
      else await new Promise<void>((resolve) => h.waiting.push(resolve));
      return () => release(id);
    },
  };
}
