/**
 * The composition root: the only place that builds loggers, clients, the store and servers and
 * wires them together (the daemon, `serve`'s schedules and HTTP endpoint), and installs the
 * process's signal and fault handlers. Each command in src/commands/ runs one of these.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, loadConfig, type ClusterConfig, type Config } from './config.js';
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

/** The exit code after an exception nothing caught (EX_SOFTWARE): a supervisor restarts the daemon. */
export const EXIT_FATAL = 70;

/**
 * Runs until SIGINT/SIGTERM, or until an exception or rejection that nothing caught, then runs
 * `close` once and resolves with the exit code: 0 after a signal, EXIT_FATAL after a fault. A
 * process in a state nobody planned for does not carry on (Node's own advice for
 * `uncaughtException`): it logs the fault, closes the store and its port cleanly, and exits for its
 * supervisor to restart it; a close that hangs past `closeDeadlineMs` exits anyway. A second signal
 * exits at once.
 */
export function runUntilStopped(
  close: () => Promise<void>,
  log: Logger,
  { closeDeadlineMs = 10_000 } = {},
): Promise<number> {
  return new Promise((resolveDone) => {
    let closing = false;
    const stop = (code: number): void => {
      if (closing) return;
      closing = true;
      const deadline = setTimeout(() => {
        log.error({ closeDeadlineMs }, 'shutdown did not finish in time; exiting');
        process.exit(code || 1);
      }, closeDeadlineMs);
      deadline.unref();
      close()
        .catch((err: unknown) => log.error({ err }, 'error during shutdown'))
        .finally(() => {
          clearTimeout(deadline);
          resolveDone(code);
        });
    };
    const onSignal = (signal: NodeJS.Signals): void => {
      if (closing) process.exit(130);
      log.info({ signal }, 'shutting down');
      stop(0);
    };
    const onFault = (err: unknown, origin: string): void => {
      log.fatal({ err, origin }, 'unexpected error; shutting down cleanly so the supervisor can restart the daemon');
      stop(EXIT_FATAL);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    process.on('uncaughtException', onFault);
    process.on('unhandledRejection', (reason) => onFault(reason, 'unhandledRejection'));
  });
}

export function configFromEnv(configPath: string | undefined, clustersOptional = false): Config {
  return loadConfig({ env: process.env, configPath, clustersOptional });
}

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
  syncs: ClusterSync[];
  /** A cluster's requests waiting for Proxmox now (what a hung cycle waits on). */
  requestsInFlight(cluster: string): ReturnType<RequestTracker['inFlight']>;
  close(): Promise<void>;
}

/** logger → store → clients → syncs; `close` undoes it in reverse order. */
export function createDaemon(config: Config, log: Logger = createLogger(config.log)): Daemon {
  const store = openStore(config.dbPath);
  for (const loose of findLooseModes(config.dbPath)) log.warn({ path: loose.path, mode: loose.mode }, loose.message);
  const clients = config.clusters.map((c) => createClient(c, log.child({ cluster: c.name })));
  const trackers = new Map(config.clusters.map((c, i) => [c.name, trackRequests(clients[i]!)]));
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
    syncs,
    requestsInFlight: (cluster) => trackers.get(cluster)?.inFlight() ?? [],
    async close() {
      for (const client of clients.reverse()) {
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
  close(): Promise<void>;
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
    retention: config.retention,
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
  try {
    http = config.mcp.http.enabled ? await startHttp(daemon, () => scheduler.liveStatus()) : undefined;
  } catch (err) {
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
    },
    'proxmox-inventory serving',
  );
  return {
    log,
    store: daemon.store,
    scheduler,
    lock,
    mcpUrl: http?.url,
    async close() {
      try {
        await http?.close();
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
function readiness(daemon: Daemon, live: LiveClusterStatus[], now: number): Readiness {
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
  return { ready: clusters.every((c) => c.ready), clusters };
}

/** The MCP endpoint; `live` is what the running daemon knows beyond its store (/readyz and sync_status show it). */
export function startHttp(daemon: Daemon, live: () => LiveClusterStatus[]): Promise<McpHttpEndpoint> {
  const log = daemon.log.child({ module: 'mcp' });
  const version = packageVersion();
  return startMcpHttp(daemon.config.mcp.http, {
    createServer: () =>
      createMcpServer({
        store: daemon.store,
        now: Date.now,
        staleAfterMs: daemon.config.mcp.http.readyMaxAgeSeconds * 1000,
        log,
        version,
        live,
        toolsets: daemon.config.mcp.toolsets,
      }),
    readiness: () => readiness(daemon, live(), Date.now()),
    log,
  });
}

export function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}
