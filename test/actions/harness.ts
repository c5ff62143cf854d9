/**
 * The action queue as `serve` wires it (src/main.ts startActions), without the daemon around it:
 * the simulator over HTTPS, the real HTTP client pinned to its certificate, a real SQLite file
 * synced once, a private redis-server, the BullMQ queue and worker, and refreshes through the
 * cluster sync's refreshGuest. Counting is the simulator's write log, never our own record.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { createActionQueue, startActionWorker, type ActionQueue, type ActionWorker } from '../../src/actions/queue.js';
import type { WorkerSettings } from '../../src/actions/queue.js';
import type { ActionKindName } from '../../src/actions/catalogue.js';
import { checkRequest, submitAction, type Requester, type Submitted } from '../../src/actions/submit.js';
import { createLogger, type Logger } from '../../src/log.js';
import type { ProxmoxClient } from '../../src/proxmox/client.js';
import { createHttpProxmoxClient } from '../../src/proxmox/http-client.js';
import { redisConnection } from '../../src/queue/redis.js';
import { Secret } from '../../src/secret.js';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/sim/server.js';
import type { SimGuest } from '../../src/sim/state.js';
import type { WriteRecord } from '../../src/sim/write-log.js';
import { FINAL_STATES, getAction, type ActionRow } from '../../src/store/actions.js';
import { openStore, type Store } from '../../src/store/db.js';
import { createClusterSync, DEFAULT_SYNC_SETTINGS, type ClusterSync } from '../../src/sync/cycle.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';

/** The token secret every harness simulator uses: a canary that must never leave the client. */
export const SECRET_CANARY = 'canary-5ecret-7f3e91d2-do-not-leak';

export const CLUSTER = 'lab';

export const REQUESTER: Requester = { transport: 'mcp-http', client: 'vitest/1.0', principal: 'ops' };

export interface HarnessOptions extends SimulatorOptions {
  ttlMs?: number;
  /** A Redis to use instead of a fresh one (a test that starts it later or shares it). */
  redis?: TestRedis;
  taskTimeoutMs?: number;
}

export interface ActionHarness {
  sim: Simulator;
  client: ProxmoxClient;
  store: Store;
  dbPath: string;
  sync: ClusterSync;
  redis: TestRedis;
  /** Each harness has its own BullMQ prefix, so a test's keys are its own. */
  prefix: string;
  queue: ActionQueue;
  log: Logger;
  /** Every log line written so far (JSON text). */
  logText(): string;
  startWorker(settings?: Partial<WorkerSettings>, extra?: { taskTimeoutMs?: number }): ActionWorker;
  submit(
    kind: ActionKindName,
    vmid: number,
    params?: Record<string, unknown>,
    options?: { queue?: ActionQueue | undefined; ttlMs?: number; answerBeforeJob?: boolean },
  ): Promise<Submitted>;
  waitFinal(id: string, timeoutMs?: number): Promise<ActionRow>;
  /** A guest no other test of this file took: not a template, unlocked, not HA-managed. */
  take(type: 'qemu' | 'lxc', status: 'running' | 'stopped', node?: string): SimGuest;
  /** The write requests the simulator received for this guest (accepted or refused). */
  writesFor(vmid: number): WriteRecord[];
  /** The events of one action and its guest, oldest first. */
  eventsOf(action: ActionRow): Array<{ type: string; data: Record<string, unknown> }>;
  guestStatus(vmid: number): string | undefined;
  close(): Promise<void>;
}

let prefixes = 0;

export async function startActionHarness(options: HarnessOptions = {}): Promise<ActionHarness> {
  const { ttlMs = 300_000, redis: givenRedis, taskTimeoutMs, ...simOptions } = options;
  const sim = await startSimulator({
    tls: true,
    taskDelayMs: 20,
    ...simOptions,
    tokenSecrets: { full: SECRET_CANARY },
  });
  const client = createHttpProxmoxClient({
    cluster: CLUSTER,
    url: sim.url,
    tokenId: sim.tokens.full.id,
    tokenSecret: new Secret(sim.tokens.full.secret),
    tls: { fingerprint: sim.fingerprint },
    retries: 0,
    timeoutMs: 5_000,
  });
  const dbPath = join(mkdtempSync(join(tmpdir(), 'pi-actions-')), 'inventory.db');
  const store = openStore(dbPath);
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const log = createLogger({ level: 'debug', destination: sink });
  const sync = createClusterSync({
    store,
    client,
    cluster: CLUSTER,
    settings: { ...DEFAULT_SYNC_SETTINGS, sweepEveryMs: 0 },
    log,
  });
  await sync.runCycle();
  const redis = givenRedis ?? (await startTestRedis());
  const prefix = `t${process.pid}-${++prefixes}`;
  const queue = createActionQueue(redisConnection(redis.url, 'queue'), prefix);
  const workers: ActionWorker[] = [];
  const used = new Set<number>();

  const harness: ActionHarness = {
    sim,
    client,
    store,
    dbPath,
    sync,
    redis,
    prefix,
    queue,
    log,
    logText: () => lines.join(''),
    startWorker(settings = {}, extra = {}) {
      const worker = startActionWorker({
        store,
        client: (cluster) => (cluster === CLUSTER ? client : undefined),
        tokenId: () => sim.tokens.full.id,
        refresh: async (_cluster, vmid, why) => {
          await sync.refreshGuest(vmid, why);
        },
        log,
        now: Date.now,
        connection: redisConnection(redis.url, 'worker'),
        prefix,
        settings: { reconcileEveryMs: 1_000, stopGraceMs: 2_000, ...settings },
        taskTimeoutMs: extra.taskTimeoutMs ?? taskTimeoutMs,
        findTaskForMs: 2_000,
      });
      workers.push(worker);
      return worker;
    },
    async submit(kind, vmid, params = {}, submitOptions = {}) {
      const checked = checkRequest(store, { kind, vmid, params }, Date.now());
      const target = 'queue' in submitOptions ? submitOptions.queue : queue;
      return submitAction(
        {
          store,
          queue: target,
          settings: { ttlMs: submitOptions.ttlMs ?? ttlMs, perMinute: 1_000_000 },
          now: Date.now,
          log,
        },
        checked,
        REQUESTER,
        { answerBeforeJob: submitOptions.answerBeforeJob },
      );
    },
    async waitFinal(id, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const row = getAction(store, id);
        if (row && FINAL_STATES.includes(row.state)) return row;
        if (Date.now() > deadline)
          throw new Error(
            `action ${id} still ${row?.state ?? 'missing'} after ${timeoutMs} ms: ${JSON.stringify(row)}`,
          );
        await sleep(20);
      }
    },
    take(type, status, node) {
      const g = [...sim.cluster.guests.values()].find(
        (x) =>
          x.type === type &&
          x.status === status &&
          !x.values.lock &&
          x.values.template !== '1' &&
          !x.ha &&
          (node === undefined || x.node === node) &&
          !used.has(x.vmid),
      );
      if (!g) throw new Error(`no free ${status} ${type} guest left`);
      used.add(g.vmid);
      return g;
    },
    writesFor: (vmid) => sim.writes().filter((w) => new RegExp(`/(qemu|lxc)/${vmid}(/|$)`).test(w.path)),
    eventsOf: (action) =>
      (
        store.sqlite
          .prepare(
            `SELECT type, data FROM events
             WHERE (subject_kind = 'action' AND subject_id = ?) OR (subject_kind = 'guest' AND subject_id = ?)
             ORDER BY seq`,
          )
          .all(action.id, `${action.cluster}/${action.vmid}`) as Array<{ type: string; data: string }>
      ).map((e) => ({ type: e.type, data: JSON.parse(e.data) as Record<string, unknown> })),
    guestStatus: (vmid) =>
      (
        store.sqlite.prepare('SELECT status FROM guests WHERE cluster = ? AND vmid = ?').get(CLUSTER, vmid) as
          { status: string } | undefined
      )?.status,
    async close() {
      for (const w of workers) await w.stop().catch(() => undefined);
      await queue.close().catch(() => undefined);
      await client.close();
      await sim.close();
      store.close();
      if (!givenRedis) await redis.stop();
    },
  };
  return harness;
}
