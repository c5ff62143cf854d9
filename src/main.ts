/**
 * The composition root: the only place that builds loggers, clients, the store and servers and
 * wires them together (the daemon, `serve`'s schedules and HTTP endpoint), and installs the
 * process's signal and fault handlers. Each command in src/commands/ runs one of these.
 */
import { createHash } from 'node:crypto';
import { createMetrics } from './metrics.js';
import { resolve } from 'node:path';
import { ConfigError, type ClusterConfig, type Config } from './config.js';
import { createLogger, type Logger } from './log.js';
import { createHttpProxmoxClient } from './proxmox/http-client.js';
import { startMcpHttp, type McpHttpEndpoint, type Readiness } from './mcp/http.js';
import { createMcpServer } from './mcp/server.js';
import { runningCycle } from './mcp/tool.js';
import { listClusters } from './store/queries.js';
import { createProgress } from './progress.js';
import type { ProxmoxClient } from './proxmox/client.js';
import { openStore, type Store } from './store/db.js';
import { findLooseModes } from './store/files.js';
import { acquireDataDirLock, type DataDirLock } from './store/lock.js';
import { createClusterSync, type ClusterSync, type SyncSettings } from './sync/cycle.js';
import { trackRequests, type RequestTracker } from './sync/counting-client.js';
import { startScheduler, type LiveClusterStatus, type Scheduler } from './sync/scheduler.js';
import { Redis } from 'ioredis';
import { createActionQueue, startActionWorker, type ActionQueue, type ActionWorker } from './actions/queue.js';
import type { ActionKindName } from './actions/catalogue.js';
import type { SubmitDeps } from './actions/submit.js';
import type { ActionsContext, Caller } from './mcp/tool.js';
import { checkRedisSettings, describeRedisTarget, redisConnection, type RedisTarget } from './queue/redis.js';
import { embeddedRedisPaths, superviseEmbeddedRedis, type SupervisedRedis } from './queue/embedded-redis.js';
import { existsSync } from 'node:fs';
import { listSubscriptions, oldestNeededSeq } from './store/webhooks.js';
import { startWebhooks, type Webhooks } from './webhooks/service.js';
import { createAddressPolicy, createWebhookAgent } from './webhooks/ssrf.js';
import { syncConfigSubscriptions } from './webhooks/config-subscriptions.js';
import { localPrincipal } from './principal.js';
import { EXIT_FATAL, packageVersion } from './version.js';

export { EXIT_FATAL, packageVersion };

function syncSettings(config: Config): SyncSettings {
  const s = config.sync;
  return {
    missingThreshold: s.missingThreshold,
    configConcurrency: s.configConcurrency,
    configBudget: s.configBudget,
    sweepPeriodMs: s.sweepPeriodMinutes * 60_000,
    sweepEveryMs: s.sweepEverySeconds * 1000,
    nodeStatusPeriodMs: s.nodeStatusMinutes * 60_000,
    clusterLog: s.clusterLog,
    cycleTimeoutMs: s.cycleTimeoutSeconds * 1000,
  };
}

export function createClient(cluster: ClusterConfig, log: Logger): ProxmoxClient {
  return createHttpProxmoxClient({
    cluster: cluster.name,
    url: cluster.url,
    tokenId: cluster.tokenId,
    tokenSecret: cluster.tokenSecret,
    tls: cluster.tls,
    timeoutMs: cluster.timeoutMs,
    concurrency: cluster.concurrency,
    onWarning: (message, fields) => log.warn(fields, message),
  });
}

export interface Daemon {
  config: Config;
  log: Logger;
  store: Store;
  clients: ProxmoxClient[];
  /** The client actions use per cluster: its action token's, else the sync's. */
  actionClients: Map<string, ProxmoxClient>;
  syncs: ClusterSync[];
  /** A cluster's requests waiting for Proxmox now (what a hung cycle waits on). */
  requestsInFlight(cluster: string): ReturnType<RequestTracker['inFlight']>;
  close(): Promise<void>;
}

/** logger → store → clients → syncs; `close` undoes it in reverse order. */
export function createDaemon(config: Config, log: Logger = createLogger(config.log)): Daemon {
  const store = openStore(config.dbPath);
  for (const loose of findLooseModes(config.dbPath)) log.warn({ path: loose.path, mode: loose.mode }, loose.message);
  // The client's warnings name their cluster themselves: a child logger binding it too wrote the key twice.
  const clients = config.clusters.map((c) => createClient(c, log));
  const trackers = new Map(config.clusters.map((c, i) => [c.name, trackRequests(clients[i]!)]));
  // A cluster with its own action token gets a second client; the others act with the sync's.
  const actionClients = new Map(
    config.clusters.map((c, i) => [
      c.name,
      c.actionToken ? createClient({ ...c, ...c.actionToken }, log.child({ module: 'actions' })) : clients[i]!,
    ]),
  );
  const syncs = config.clusters.map((c) =>
    createClusterSync({
      store,
      client: trackers.get(c.name)!.client,
      cluster: c.name,
      settings: syncSettings(config),
      log: log.child({ module: 'sync' }),
    }),
  );
  return {
    config,
    log,
    store,
    clients,
    actionClients,
    syncs,
    requestsInFlight: (cluster) => trackers.get(cluster)?.inFlight() ?? [],
    async close() {
      const own = [...actionClients.values()].filter((c) => !clients.includes(c));
      for (const client of [...own, ...clients.reverse()]) {
        try {
          await client.close();
        } catch (err) {
          log.warn({ err }, 'closing a Proxmox client failed');
        }
      }
      store.close();
    },
  };
}

export interface Serving {
  log: Logger;
  store: Store;
  scheduler: Scheduler;
  lock: DataDirLock;
  /** The MCP endpoint's URL, when MCP_HTTP is on. */
  mcpUrl: string | undefined;
  /** The action queue and worker, when ACTIONS enables any kind. */
  actions: Actions | undefined;
  close(): Promise<void>;
}

export interface Actions {
  redis: RedisTarget;
  queue: ActionQueue;
  worker: ActionWorker;
  submit: SubmitDeps;
  close(): Promise<void>;
}

/**
 * The BullMQ key prefix of this inventory: two daemons on one REDIS_URL (two data directories)
 * must not take each other's jobs; every process on the same inventory file computes the same one.
 */
export function queuePrefix(config: Config): string {
  return `proxmox-inventory:${createHash('sha256').update(resolve(config.dbPath)).digest('hex').slice(0, 12)}`;
}

/** One Redis for the action queue and webhooks, connected (or started) when the first of them needs it. */
export interface SharedRedis {
  target(): Promise<RedisTarget>;
  stop(): Promise<void>;
}

export function sharedRedis(config: Config, log: Logger): SharedRedis {
  let connected: Promise<{ target: RedisTarget; embedded?: SupervisedRedis }> | undefined;
  return {
    target: async () => (await (connected ??= connectRedis(config, log))).target,
    async stop() {
      const c = await connected?.catch(() => undefined);
      await c?.embedded?.stop();
    },
  };
}

/**
 * Webhook delivery for `serve`: started when a subscription exists (from the config file or the
 * CLI), and looked for again every 30 s, so `webhooks add` beside a running daemon needs no restart.
 */
function webhookRuntime(
  daemon: Daemon,
  redis: SharedRedis,
): { startIfSubscribed(): Promise<void>; stop(): Promise<void> } {
  const { config, store, log } = daemon;
  let running: Webhooks | undefined;
  let starting: Promise<void> | undefined;
  const policy = createAddressPolicy(config.webhooks.allowCidrs);
  if (config.webhooks.allowCidrs.length)
    log.warn(
      { allowCidrs: config.webhooks.allowCidrs },
      'webhooks may reach these private ranges (WEBHOOK_ALLOW_CIDRS)',
    );
  syncConfigSubscriptions(store, config.webhooks.subscriptions, Date.now(), {
    rotationGraceMs: config.webhooks.rotationGraceMs,
  });
  const start = async (): Promise<void> => {
    if (running || !listSubscriptions(store).length) return;
    const agent = createWebhookAgent({
      policy,
      onRefused: (refused) => log.warn({ err: refused.message }, 'webhook target refused (SSRF guard)'),
    });
    running = startWebhooks({
      store,
      prefix: queuePrefix(config),
      soleWorker: true, // serve holds the data directory's lock
      connection: redisConnection(await redis.target(), 'worker'),
      agent,
      log: log.child({ module: 'webhooks' }),
      now: Date.now,
      settings: {
        timeoutMs: config.webhooks.timeoutMs,
        schedule: config.webhooks.schedule,
        disableAfterMs: config.webhooks.disableAfterMs,
      },
    });
    log.info({ subscriptions: listSubscriptions(store).length }, 'webhook delivery started');
  };
  const look = (): void => {
    starting ??= start()
      .catch((err: unknown) => log.warn({ err: String(err) }, 'starting webhook delivery failed; retried in 30 s'))
      .finally(() => (starting = undefined));
  };
  const timer = setInterval(look, 30_000);
  timer.unref();
  return {
    startIfSubscribed: start,
    async stop() {
      clearInterval(timer);
      await starting;
      await running?.stop();
    },
  };
}

/** The settings every transport submits with (src/actions/submit.ts). */
export function submitSettings(config: Config): SubmitDeps['settings'] {
  return { ttlMs: config.actions.ttlMs, perMinute: config.actions.perMinute };
}

/**
 * The Redis the queue uses: REDIS_URL (its AOF and eviction settings checked, warnings only), or a
 * private redis-server this process starts in DATA_DIR and stops on close.
 */
async function connectRedis(config: Config, log: Logger): Promise<{ target: RedisTarget; embedded?: SupervisedRedis }> {
  if (config.redis.url) {
    const target = config.redis.url;
    const probe = new Redis({ ...redisConnection(target, 'worker'), lazyConnect: true });
    // checkRedisSettings reports an unreachable Redis in one line; without a listener ioredis would
    // also print "Unhandled error event" with a stack for every reconnection attempt.
    probe.on('error', () => undefined);
    try {
      // Not awaited: a Redis that takes the connection and never answers holds connect() for ever,
      // and the start with it; the check waits a few seconds for it to be ready and says so.
      probe.connect().catch(() => undefined);
      await checkRedisSettings(probe, log);
    } finally {
      probe.disconnect();
    }
    log.info({ redis: describeRedisTarget(target) }, 'action queue on the given Redis');
    return { target };
  }
  const embedded = await superviseEmbeddedRedis({ dataDir: config.dataDir, log: log.child({ module: 'redis' }) });
  log.info({ redis: embedded.path, pid: embedded.pid }, 'action queue on a private redis-server');
  return { target: embedded.path, embedded };
}

/** Redis → queue → worker, for `serve` when ACTIONS enables any kind; close stops them in reverse. */
export async function startActions(daemon: Daemon, target: RedisTarget): Promise<Actions> {
  const { config, log, store } = daemon;
  const queue = createActionQueue(redisConnection(target, 'queue'), queuePrefix(config));
  const syncs = new Map(daemon.syncs.map((s) => [s.cluster, s]));
  const worker = startActionWorker({
    store,
    prefix: queuePrefix(config),
    soleWorker: true, // serve holds the data directory's lock
    client: (cluster) => daemon.actionClients.get(cluster),
    tokenId: (cluster) => {
      const c = config.clusters.find((x) => x.name === cluster);
      return c && (c.actionToken?.tokenId ?? c.tokenId);
    },
    refresh: async (cluster, vmid, why) => {
      await syncs.get(cluster)?.refreshGuest(vmid, why);
    },
    log: log.child({ module: 'actions' }),
    now: Date.now,
    connection: redisConnection(target, 'worker'),
    settings: { concurrency: config.actions.concurrency, perNode: config.actions.perNode },
  });
  return {
    redis: target,
    queue,
    worker,
    submit: { store, queue, settings: submitSettings(config), now: Date.now, log: log.child({ module: 'actions' }) },
    async close() {
      await worker.stop();
      await queue.close();
    },
  };
}

/**
 * The action queue on the daemon's Redis, for a process beside `serve` (the stdio `mcp`, the
 * `action` command): REDIS_URL, or the embedded one's socket while `serve` runs it; undefined
 * without either (rows then wait in SQLite for `serve`).
 */
export function daemonQueue(config: Config): ActionQueue | undefined {
  const socket = embeddedRedisPaths(config.dataDir).socket;
  const target: RedisTarget | undefined = config.redis.url ?? (existsSync(socket) ? socket : undefined);
  return target ? createActionQueue(redisConnection(target, 'queue'), queuePrefix(config)) : undefined;
}

/**
 * For the stdio `mcp` process: a writable store for action rows and a queue on the daemon's Redis
 * (REDIS_URL, or the embedded one's socket when `serve` runs it); without either, rows wait in
 * SQLite for `serve`.
 */
export function stdioActions(config: Config, log: Logger): ActionsContext | undefined {
  if (!config.actions.kinds.length) return undefined;
  let store: Store | undefined;
  const queue = daemonQueue(config);
  if (!queue) log.info('no Redis found for actions: action rows wait in the inventory for serve');
  return {
    submit: {
      get store() {
        return (store ??= openStore(config.dbPath));
      },
      queue,
      settings: submitSettings(config),
      now: Date.now,
      log,
    },
    waitMaxSeconds: config.actions.waitMaxSeconds,
    confirmTtlMs: 5 * 60_000,
  };
}

export function stdioCaller(config: Config): Caller {
  return {
    transport: 'mcp-stdio',
    client: null,
    principal: localPrincipal(),
    kinds: new Set<ActionKindName>(config.actions.kinds),
  };
}

/**
 * What `serve` runs: the data directory's lock (a second `serve` on it is refused, naming the
 * first), the daemon, its schedules and the HTTP endpoint. `close` stops them in reverse order
 * and removes the lock.
 */
export async function startServing(config: Config, options: { log?: Logger } = {}): Promise<Serving> {
  const log = options.log ?? createLogger(config.log);
  const lock = acquireDataDirLock(config.dataDir);
  if (lock.tookOver) {
    const { holder, reason } = lock.tookOver;
    log.warn(
      { lock: lock.path, pid: holder.pid, host: holder.host, since: holder.startedAt, reason },
      'took over the lock of a serve that did not stop cleanly',
    );
  }
  let daemon: Daemon;
  try {
    daemon = createDaemon(config, log);
  } catch (err) {
    lock.release();
    throw err;
  }
  const scheduler = startScheduler({
    syncs: daemon.syncs,
    store: daemon.store,
    intervalSeconds: config.sync.intervalSeconds,
    snapshots: config.snapshots,
    // Events a webhook delivery still needs stay, whatever their age.
    retention: { ...config.retention, keepEventsFromSeq: () => oldestNeededSeq(daemon.store) },
    log,
    progress: (cluster) => createProgress(process.stderr, log, cluster),
    requestsInFlight: daemon.requestsInFlight,
    onCycle: (s) => {
      const fields = {
        cluster: s.cluster,
        ms: s.durationMs,
        calls: s.callsTotal,
        guests: s.guests,
        changes: s.changes,
        phases: s.phases,
      };
      if (s.aborted) log.debug(fields, 'sync cycle stopped by shutdown before its write');
      else if (!s.ok)
        log.warn({ ...fields, err: s.error, ...(s.recorded === false ? { recorded: false } : {}) }, 'sync failed');
      else if (Object.keys(s.changes).length) log.info(fields, 'sync: changes');
      else log.debug(fields, 'sync');
    },
  });
  let http: McpHttpEndpoint | undefined;
  let actions: Actions | undefined;
  const redis = sharedRedis(config, log);
  const webhooks = webhookRuntime(daemon, redis);
  try {
    actions = config.actions.kinds.length ? await startActions(daemon, await redis.target()) : undefined;
    await webhooks.startIfSubscribed();
    http = config.mcp.http.enabled ? await startHttp(daemon, () => scheduler.liveStatus(), actions) : undefined;
  } catch (err) {
    await actions?.close();
    await webhooks.stop();
    await redis.stop();
    await scheduler.stop();
    await daemon.close();
    lock.release();
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EADDRINUSE' && code !== 'EADDRNOTAVAIL') throw err;
    throw new ConfigError([
      `MCP_HTTP_HOST/MCP_HTTP_PORT (mcp.http): cannot listen on ${config.mcp.http.host}:${config.mcp.http.port} (${code}); choose another port with MCP_HTTP_PORT, or MCP_HTTP=off`,
    ]);
  }
  log.info(
    {
      clusters: config.clusters.map((c) => c.name),
      db: config.dbPath,
      lock: lock.path,
      intervalSeconds: config.sync.intervalSeconds,
      snapshots: config.snapshots.schedule,
      mcp: http?.url,
      actions: config.actions.kinds.length ? config.actions.kinds : 'off (read-only)',
    },
    'proxmox-inventory serving',
  );
  return {
    log,
    store: daemon.store,
    scheduler,
    lock,
    mcpUrl: http?.url,
    actions,
    async close() {
      try {
        await http?.close();
        await actions?.close();
        await webhooks.stop();
        await redis.stop();
        await scheduler.stop();
        await daemon.close();
      } finally {
        lock.release();
      }
    },
  };
}

/**
 * Ready when every configured cluster has synced within the window and its latest failure, if
 * any, reached the store. A cluster that is not ready says why: the error, the failures the store
 * could not record, the cycle running now.
 */
function readiness(daemon: Daemon, live: LiveClusterStatus[], now: number, actions?: Actions): Readiness {
  const maxAgeMs = daemon.config.mcp.http.readyMaxAgeSeconds * 1000;
  const known = new Map(listClusters(daemon.store, now).map((c) => [c.cluster, c]));
  const running = new Map(live.map((l) => [l.cluster, l]));
  const clusters = daemon.config.clusters.map((c) => {
    const s = known.get(c.name);
    const l = running.get(c.name);
    const ageMs = s?.ageMs ?? null;
    const unrecorded = l?.lastFailure != null && !l.lastFailure.recorded;
    // Another cluster answering at this URL: the copy is of a cluster that is not there.
    const ready = ageMs !== null && ageMs <= maxAgeMs && !unrecorded && !s?.identityChanged;
    const error = l?.lastFailure?.error ?? s?.lastError ?? undefined;
    const cycle = !ready && l?.cycle ? runningCycle(l.cycle, now) : undefined;
    return {
      cluster: c.name,
      lastSuccessAt: s?.lastSuccessAt ?? null,
      ageMs,
      ready,
      ...(error ? { error } : {}),
      ...(l?.unrecordedFailures ? { unrecordedFailures: l.unrecordedFailures } : {}),
      ...(cycle ? { cycle } : {}),
      ...(s?.identityChanged ? { identityChanged: s.identityChanged } : {}),
    };
  });
  if (!actions) return { ready: clusters.every((c) => c.ready), clusters };
  // A worker that stopped taking jobs (the canary did not come through) is not ready, whatever the sync says.
  const canaryAt = actions.worker.canaryAt();
  const worker = {
    healthy: actions.worker.healthy(),
    lastCanaryAt: canaryAt === undefined ? null : new Date(canaryAt).toISOString(),
  };
  return Object.assign({ ready: clusters.every((c) => c.ready) && worker.healthy, clusters }, { actionWorker: worker });
}

/** The MCP endpoint; `live` is what the running daemon knows beyond its store (/readyz and sync_status show it). */
export function startHttp(
  daemon: Daemon,
  live: () => LiveClusterStatus[],
  actions?: Actions,
): Promise<McpHttpEndpoint> {
  const log = daemon.log.child({ module: 'mcp' });
  const version = packageVersion();
  const context: ActionsContext | undefined = actions && {
    submit: actions.submit,
    waitMaxSeconds: daemon.config.actions.waitMaxSeconds,
    confirmTtlMs: 5 * 60_000,
  };
  return startMcpHttp(daemon.config.mcp.http, {
    createServer: (caller?: Caller) =>
      createMcpServer({
        caller,
        actions: context,
        store: daemon.store,
        now: Date.now,
        staleAfterMs: daemon.config.mcp.http.readyMaxAgeSeconds * 1000,
        log,
        version,
        live,
        toolsets: daemon.config.mcp.toolsets,
      }),
    readiness: () => readiness(daemon, live(), Date.now(), actions),
    metrics: createMetrics(daemon.store, { syncIntervalSeconds: daemon.config.sync.intervalSeconds }),
    log,
    version,
  });
}
