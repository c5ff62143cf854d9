/**
 * The private `redis-server` that `serve` starts when REDIS_URL is unset: Debian's binary run as a
 * child with arguments only (no config file), listening on a unix socket in DATA_DIR and on no TCP
 * port, with the settings BullMQ needs to keep its jobs (AOF fsynced every second, no eviction).
 * Everything it writes stays in `<dataDir>/redis/` (0700): the socket, the AOF, its pid file, its log.
 *
 * It runs in its own process group, so a Ctrl-C at the terminal reaches the daemon only: the
 * daemon's workers still need Redis while they finish their jobs, and the daemon stops Redis last.
 * The flip side is that a SIGKILLed daemon leaves it running; the next start finds it by its pid
 * file and stops it (its data is kept) before starting its own, because two servers on one AOF
 * directory would overwrite each other's files. serve.lock already keeps two daemons off one DATA_DIR.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, readFileSync, readSync, closeSync, fstatSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log.js';
import { createPrivateDir } from '../store/files.js';
import { processAlive } from '../store/lock.js';
import { RedisError } from './redis-error.js';

/** The longest unix socket path Linux takes: sun_path is 108 bytes, the last one a NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;

export interface EmbeddedRedisOptions {
  dataDir: string;
  log: Logger;
  /** The environment redis-server is looked up in (PATH) and runs with; the daemon's own when absent. */
  env?: NodeJS.ProcessEnv;
  /** How long a start may take, replaying the AOF included. */
  startTimeoutMs?: number;
  /** How long stop() waits after SIGTERM (Redis fsyncs its AOF and exits) before SIGKILL. */
  stopTimeoutMs?: number;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface EmbeddedRedis {
  /** The unix socket it listens on, a RedisTarget for redisConnection(). */
  path: string;
  pid: number;
  /** Settles when the server has exited, however it ended. */
  exited: Promise<ExitStatus>;
  /** SIGTERM (Redis fsyncs the AOF and removes its socket and pid file), SIGKILL after stopTimeoutMs; waits for the exit. */
  stop(): Promise<void>;
}

interface RedisPaths {
  dir: string;
  socket: string;
  pidFile: string;
  logFile: string;
}

/** Where the embedded Redis of a data directory listens: an `mcp` process finds a running daemon's Redis here. */
export function embeddedRedisPaths(dataDir: string): RedisPaths {
  const dir = join(resolve(dataDir), 'redis');
  return {
    dir,
    socket: join(dir, 'redis.sock'),
    pidFile: join(dir, 'redis.pid'),
    logFile: join(dir, 'redis.log'),
  };
}

function redisArguments(paths: RedisPaths): string[] {
  return [
    ...['--port', '0'],
    ...['--unixsocket', paths.socket],
    ...['--unixsocketperm', '700'],
    ...['--dir', paths.dir],
    ...['--appendonly', 'yes'],
    ...['--appendfsync', 'everysec'],
    ...['--maxmemory-policy', 'noeviction'],
    ...['--save', ''],
    ...['--daemonize', 'no'],
    ...['--pidfile', paths.pidFile],
    ...['--logfile', paths.logFile],
  ];
}

/** Starts the data directory's Redis and resolves once it answers PING; throws RedisError with the fix otherwise. */
export async function startEmbeddedRedis(options: EmbeddedRedisOptions): Promise<EmbeddedRedis> {
  const { dataDir, log, env, startTimeoutMs = 15_000, stopTimeoutMs = 10_000 } = options;
  const paths = embeddedRedisPaths(dataDir);
  checkSocketPathLength(paths.socket, dataDir);
  createPrivateDir(paths.dir);
  await stopLeftover(paths, log, stopTimeoutMs);

  const child = await spawnRedis(paths, env);
  const output = keepLastLines(child);
  const exited = new Promise<ExitStatus>((resolveExit) =>
    child.once('exit', (code, signal) => resolveExit({ code, signal })),
  );
  try {
    await waitUntilReady(paths, exited, startTimeoutMs, output);
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    throw err;
  }
  log.info({ socket: paths.socket, pid: child.pid }, 'embedded redis-server started');
  return handleFor(child, paths, exited, log, stopTimeoutMs);
}

/**
 * Stops a redis-server that an earlier process left on this data directory's socket. The demo
 * calls it before it wipes its directory: once the pid file and socket are gone, nothing would
 * find that Redis again, and it would run until the machine stops.
 */
export async function stopLeftoverRedis(dataDir: string, log: Logger, stopTimeoutMs = 10_000): Promise<void> {
  const paths = embeddedRedisPaths(dataDir);
  if (existsSync(paths.dir)) await stopLeftover(paths, log, stopTimeoutMs);
}

export interface SupervisedRedis {
  /** The unix socket, the same across restarts. */
  path: string;
  /** The running redis-server's pid (a new one after a restart). */
  readonly pid: number;
  /** Stops it for good: no restart after this. */
  stop(): Promise<void>;
}

/** The longest pause between two attempts to start redis-server again. */
const MAX_RESTART_DELAY_MS = 30_000;

/**
 * The embedded Redis kept up for as long as `serve` runs: when redis-server exits on its own (the
 * OOM killer, a crash, a stray kill), it is started again on the same socket after a pause that
 * doubles from one second to 30, so the BullMQ connections reconnect by themselves and the queues
 * resume with what the AOF kept (the reconcilers put back the rest from SQLite). Without it, actions
 * and webhook deliveries would wait for the daemon to be restarted.
 */
export async function superviseEmbeddedRedis(
  options: EmbeddedRedisOptions & { firstRestartDelayMs?: number },
): Promise<SupervisedRedis> {
  const { log, firstRestartDelayMs = 1_000 } = options;
  let current = await startEmbeddedRedis(options);
  let stopped = false;
  let restarting: Promise<void> | undefined;
  const abort = new AbortController();

  async function restart(): Promise<void> {
    for (let delay = firstRestartDelayMs; !stopped; delay = Math.min(delay * 2, MAX_RESTART_DELAY_MS)) {
      await sleep(delay, undefined, { signal: abort.signal }).catch(() => undefined);
      if (stopped) return;
      try {
        current = await startEmbeddedRedis(options);
        log.warn({ pid: current.pid, socket: current.path }, 'the embedded redis-server was started again');
        watch(current);
        return;
      } catch (err) {
        log.error(
          { err: (err as Error).message, retryInMs: Math.min(delay * 2, MAX_RESTART_DELAY_MS) },
          'the embedded redis-server could not be started again; trying later',
        );
      }
    }
  }
  function watch(redis: EmbeddedRedis): void {
    void redis.exited.then(() => {
      if (!stopped) restarting = restart();
    });
  }
  watch(current);
  return {
    path: current.path,
    get pid() {
      return current.pid;
    },
    async stop() {
      stopped = true;
      abort.abort();
      await restarting;
      await current.stop();
    },
  };
}

/** A /tmp fallback would live in a namespace other users can squat and tmp cleaners prune, so a long DATA_DIR is refused. */
function checkSocketPathLength(socket: string, dataDir: string): void {
  const bytes = Buffer.byteLength(socket);
  if (bytes <= MAX_SOCKET_PATH_BYTES) return;
  throw new RedisError(
    `DATA_DIR ${dataDir} is too long for the embedded Redis's unix socket (${socket} is ${bytes} bytes, ` +
      `the limit is ${MAX_SOCKET_PATH_BYTES}): use a DATA_DIR of at most ${MAX_SOCKET_PATH_BYTES - (bytes - Buffer.byteLength(resolve(dataDir)))} bytes, or set REDIS_URL to a Redis of your own.`,
  );
}

function spawnRedis(paths: RedisPaths, env: NodeJS.ProcessEnv | undefined): Promise<ChildProcess> {
  const child = spawn('redis-server', redisArguments(paths), {
    cwd: paths.dir,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(env ? { env } : {}),
  });
  return new Promise((resolveChild, reject) => {
    child.once('spawn', () => resolveChild(child));
    child.once('error', (err: NodeJS.ErrnoException) => reject(spawnFailure(err)));
  });
}

function spawnFailure(err: NodeJS.ErrnoException): RedisError {
  if (err.code === 'ENOENT') {
    return new RedisError(
      'redis-server is not installed (it is not on PATH), and the action queue needs a Redis: install it (apt-get install redis-server), or set REDIS_URL to an existing Redis.',
    );
  }
  return new RedisError(
    `redis-server could not be started (${err.code ?? err.message}): check that it is executable by this user, or set REDIS_URL to an existing Redis.`,
  );
}

/** Lines redis-server prints before its log file is open (a bad argument, a directory it cannot write). */
function keepLastLines(child: ChildProcess, keep = 10): () => string[] {
  const lines: string[] = [];
  const take = (chunk: Buffer): void => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim()) lines.push(line.trim());
    }
    lines.splice(0, Math.max(0, lines.length - keep));
  };
  child.stdout?.on('data', take);
  child.stderr?.on('data', take);
  return () => [...lines];
}

async function waitUntilReady(
  paths: RedisPaths,
  exited: Promise<ExitStatus>,
  timeoutMs: number,
  output: () => string[],
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exit: ExitStatus | undefined;
  void exited.then((status) => (exit = status));
  let last: PingAnswer = 'down';
  while (Date.now() < deadline) {
    if (exit) {
      throw new RedisError(
        `redis-server exited (${describeExit(exit)}) before it answered on ${paths.socket}; it said: ${quoteTail(paths, output())}.`,
      );
    }
    last = await pingSocket(paths.socket, Math.min(1_000, Math.max(50, deadline - Date.now())));
    if (last === 'ready') return;
    await sleep(last === 'loading' ? 200 : 50);
  }
  throw new RedisError(
    `redis-server did not answer PING on ${paths.socket} within ${timeoutMs / 1000} s${last === 'loading' ? ' (it was still loading its AOF)' : ''}; ` +
      `the end of its log: ${quoteTail(paths, output())}.`,
  );
}

function describeExit({ code, signal }: ExitStatus): string {
  return signal ? `signal ${signal}` : `code ${code}`;
}

/** The last lines of the log file, or of what it printed before it had one, without the pid/time prefix of each. */
function quoteTail(paths: RedisPaths, printed: string[], lines = 4): string {
  const logged = tailOfFile(paths.logFile)
    .split('\n')
    .map((line) => line.replace(/^\d+:[A-Z] \d{2} \w{3} \d{4} [\d:.]+ [.\-*#] /, '').trim())
    .filter(Boolean);
  const tail = [...printed, ...logged].slice(-lines);
  return tail.length
    ? tail.map((line) => JSON.stringify(line.slice(0, 300))).join(' / ')
    : '(nothing, and no log file)';
}

function tailOfFile(path: string, bytes = 4096): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return '';
  }
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, bytes);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    return buffer.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

function handleFor(
  child: ChildProcess,
  paths: RedisPaths,
  exited: Promise<ExitStatus>,
  log: Logger,
  stopTimeoutMs: number,
): EmbeddedRedis {
  let stopping: Promise<void> | undefined;
  void exited.then((status) => {
    if (stopping) return;
    log.error(
      { socket: paths.socket, pid: child.pid, ...status },
      `the embedded redis-server exited unexpectedly (${describeExit(status)}); the end of its log: ${quoteTail(paths, [])}`,
    );
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    if (await settlesWithin(exited, stopTimeoutMs)) return;
    log.warn({ pid: child.pid, stopTimeoutMs }, 'the embedded redis-server did not stop after SIGTERM; killing it');
    child.kill('SIGKILL');
    await exited;
  };
  return {
    path: paths.socket,
    pid: child.pid!,
    exited,
    stop: () => (stopping ??= stop()),
  };
}

async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const timeout = new AbortController();
  const settled = await Promise.race([promise.then(() => true), sleep(ms, false, { signal: timeout.signal })]);
  timeout.abort();
  return settled;
}

/**
 * A redis-server left on this data directory by a daemon that was SIGKILLed: found by its pid file
 * (and proven ours by the socket in its process title, so a reused pid is never signalled), or
 * by an answer on the socket. It gets SIGTERM (or SHUTDOWN over the socket), which fsyncs its AOF,
 * so nothing it acknowledged is lost.
 */
async function stopLeftover(paths: RedisPaths, log: Logger, stopTimeoutMs: number): Promise<void> {
  const pid = leftoverPid(paths);
  if (pid !== undefined) {
    log.warn(
      { pid, socket: paths.socket },
      'a redis-server left running by an earlier serve holds this data directory; stopping it (its data is kept) to start a fresh one',
    );
    await signalUntilGone(pid, stopTimeoutMs);
  } else if ((await pingSocket(paths.socket, 500)) !== 'down') {
    log.warn(
      { socket: paths.socket },
      'a Redis answers on the data directory socket; shutting it down to start a fresh one',
    );
    await shutdownOverSocket(paths.socket, stopTimeoutMs);
  }
  // Redis replaces its pid file and unlinks a socket before binding; removing them is for a start that then fails.
  rmSync(paths.pidFile, { force: true });
  if (existsSync(paths.socket)) rmSync(paths.socket, { force: true });
}

function leftoverPid(paths: RedisPaths): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(paths.pidFile, 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 1 || !processAlive(pid)) return undefined;
  return isRedisOnSocket(pid, paths.socket) ? pid : undefined;
}

/** Redis titles its process `redis-server unixsocket:<path>` when it listens on a socket only. */
function isRedisOnSocket(pid: number, socket: string): boolean {
  try {
    const name = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    const title = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return name === 'redis-server' && title.includes(`unixsocket:${socket}`);
  } catch {
    return false;
  }
}

/** Gone, or a zombie: an orphan's new parent (a container's pid 1 that is not an init) may never reap it. */
export function exitedProcess(pid: number): boolean {
  if (!processAlive(pid)) return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

async function signalUntilGone(pid: number, timeoutMs: number): Promise<void> {
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    try {
      process.kill(pid, signal);
    } catch {
      return; // gone already
    }
    const deadline = Date.now() + timeoutMs;
    while (!exitedProcess(pid) && Date.now() < deadline) await sleep(25);
    if (exitedProcess(pid)) return;
  }
  throw new RedisError(
    `a redis-server left running (pid ${pid}) does not stop even on SIGKILL: stop it by hand, then start again.`,
  );
}

async function shutdownOverSocket(socket: string, timeoutMs: number): Promise<void> {
  await new Promise<void>((resolveSent) => {
    const client = connect(socket, () => client.end('*1\r\n$8\r\nSHUTDOWN\r\n'));
    client.on('close', () => resolveSent());
    client.on('error', () => resolveSent());
    client.resume();
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await pingSocket(socket, 500)) === 'down') return;
    await sleep(50);
  }
  throw new RedisError(
    `a Redis on ${socket} did not shut down: stop the redis-server using that socket by hand, then start again.`,
  );
}

export type PingAnswer = 'ready' | 'loading' | 'down';

/**
 * One PING over a fresh unix-socket connection, outside ioredis (whose reconnecting would hide a
 * server that is not there): `ready` on PONG, `loading` while Redis replays its AOF, `down` when
 * nothing answers within `timeoutMs`.
 */
export function pingSocket(path: string, timeoutMs = 1_000): Promise<PingAnswer> {
  return new Promise((resolveAnswer) => {
    const socket = connect(path);
    let reply = '';
    const done = (answer: PingAnswer): void => {
      clearTimeout(timer);
      socket.destroy();
      resolveAnswer(answer);
    };
    const timer = setTimeout(() => done('down'), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write('*1\r\n$4\r\nPING\r\n'));
    socket.on('data', (chunk: string) => {
      reply += chunk;
      if (!reply.includes('\r\n')) return;
      done(reply.startsWith('+PONG') ? 'ready' : reply.startsWith('-LOADING') ? 'loading' : 'down');
    });
    socket.on('error', () => done('down'));
    socket.on('close', () => done('down'));
  });
}
