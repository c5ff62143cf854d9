/**
 * A private redis-server for one test file: its own temporary directory, its own unix socket (or a
 * free TCP port with `tcp: true`), so files that vitest runs in parallel never share a server.
 * `kill()` and `restart()` (same directory, so the same AOF, and the same socket or port) are for
 * fault tests. Whatever a test forgets to stop is SIGKILLed when the test process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';

export interface TestRedisOptions {
  /** `yes` (the default, fsynced every second as the embedded one) or `no`. */
  appendonly?: 'yes' | 'no';
  maxmemoryPolicy?: string;
  /** requirepass: the URL then carries it. */
  password?: string;
  /** Listen on a free 127.0.0.1 port instead of a unix socket. */
  tcp?: boolean;
  /** More redis-server arguments, e.g. ['--rename-command', 'CONFIG', '']. */
  args?: string[];
}

export interface TestRedis {
  /** What redisConnection() takes: the socket path, or redis://[:password@]127.0.0.1:port. */
  url: string;
  /** The server's directory (AOF, log). */
  dir: string;
  pid(): number;
  /** SIGKILL by default, as a crash; resolves once it has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same directory, socket or port; resolves once it answers. */
  restart(): Promise<void>;
  /** Stops it (SIGTERM) and removes its directory. */
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export async function startTestRedis(options: TestRedisOptions = {}): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'pi-redis-'));
  const socket = join(dir, 'redis.sock');
  const port = options.tcp ? await freePort() : 0;
  const url = options.tcp
    ? `redis://${options.password ? `:${encodeURIComponent(options.password)}@` : ''}127.0.0.1:${port}`
    : socket;
  const args = [
    ...['--port', String(port)],
    ...(options.tcp ? ['--bind', '127.0.0.1'] : ['--unixsocket', socket, '--unixsocketperm', '700']),
    ...['--dir', dir],
    ...['--appendonly', options.appendonly ?? 'yes'],
    ...['--appendfsync', 'everysec'],
    ...['--maxmemory-policy', options.maxmemoryPolicy ?? 'noeviction'],
    ...['--save', ''],
    ...['--logfile', join(dir, 'redis.log')],
    ...(options.password ? ['--requirepass', options.password] : []),
    ...(options.args ?? []),
  ];
  const connectOptions = options.tcp
    ? { host: '127.0.0.1', port, ...(options.password ? { password: options.password } : {}) }
    : { path: socket };

  let child = await launch(args, dir, connectOptions);
  const exited = (c: ChildProcess): Promise<void> =>
    c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise((r) => c.once('exit', () => r()));
  return {
    url,
    dir,
    pid: () => child.pid!,
    async kill(signal = 'SIGKILL') {
      child.kill(signal);
      await exited(child);
    },
    async restart() {
      await exited(child);
      child = await launch(args, dir, connectOptions);
    },
    async stop() {
      child.kill('SIGTERM');
      await exited(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function launch(
  args: string[],
  dir: string,
  connectOptions: { path: string } | { host: string; port: number },
): Promise<ChildProcess> {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`test redis-server exited ${child.exitCode}: ${stderr} (log in ${dir})`);
    if (await answers(connectOptions)) return child;
    if (Date.now() > deadline) throw new Error(`test redis-server did not answer within 10 s (log in ${dir})`);
    await sleep(25);
  }
}

async function answers(connectOptions: object): Promise<boolean> {
  const client = new Redis({
    ...connectOptions,
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}
