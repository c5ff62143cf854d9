import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { embeddedRedisPaths, exitedProcess } from '../../src/queue/embedded-redis.js';
import {
  checkRedisSettings,
  describeRedisTarget,
  redisConnection,
  RedisError,
  startEmbeddedRedis,
  type EmbeddedRedis,
} from '../../src/queue/redis.js';
import { Secret } from '../../src/secret.js';
import { processAlive } from '../../src/store/lock.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

function capturedLogger(): { log: ReturnType<typeof createLogger>; lines: LogLine[]; text: () => string } {
  const lines: LogLine[] = [];
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        raw.push(line);
        lines.push(JSON.parse(line) as LogLine);
      }
      done();
    },
  });
  return { log: createLogger({ level: 'debug', destination: sink }), lines, text: () => raw.join('\n') };
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err as Error,
  );
}

const WARN = 40;
const ERROR = 50;
const temps: string[] = [];
const started: EmbeddedRedis[] = [];
const clients: Redis[] = [];
/** Servers a test left outside any handle (an orphan whose replacement failed): detached, so nothing else stops them. */
const strays: number[] = [];

function tempDir(prefix = 'pi-emb-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

async function embedded(dataDir: string, log = capturedLogger().log): Promise<EmbeddedRedis> {
  const redis = await startEmbeddedRedis({ dataDir, log });
  started.push(redis);
  return redis;
}

/** A queue connection refuses commands until it is ready (no offline queue), so this waits for that. */
async function client(target: string, role: 'queue' | 'worker' = 'queue'): Promise<Redis> {
  const c = new Redis(redisConnection(target, role));
  c.on('error', () => {});
  clients.push(c);
  if (role === 'queue') await once(c, 'ready');
  return c;
}

/** A queue connection as BullMQ gets it: not yet ready. */
function fresh(target: string): Redis {
  const c = new Redis(redisConnection(target, 'queue'));
  c.on('error', () => {});
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  for (const r of started.splice(0)) await r.stop();
  for (const pid of strays.splice(0)) if (processAlive(pid)) process.kill(pid, 'SIGKILL');
});

afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

const configValue = async (c: Redis, name: string): Promise<string> => ((await c.config('GET', name)) as string[])[1]!;

describe('startEmbeddedRedis', () => {
  it('listens on a private socket in DATA_DIR only, with AOF every second and no eviction, and stops cleanly', async () => {
    const dataDir = tempDir();
    const { log, lines } = capturedLogger();
    const redis = await embedded(dataDir, log);
    const paths = embeddedRedisPaths(dataDir);

    expect(redis.path).toBe(join(dataDir, 'redis', 'redis.sock'));
    expect(statSync(redis.path).isSocket()).toBe(true);
    expect(statSync(redis.path).mode & 0o777).toBe(0o700);
    expect(statSync(paths.dir).mode & 0o777).toBe(0o700);

    const c = await client(redis.path);
    expect(await configValue(c, 'port')).toBe('0');
    expect(await configValue(c, 'appendonly')).toBe('yes');
    expect(await configValue(c, 'appendfsync')).toBe('everysec');
    expect(await configValue(c, 'maxmemory-policy')).toBe('noeviction');
    expect(await configValue(c, 'save')).toBe('');
    expect(await configValue(c, 'dir')).toBe(paths.dir);
    expect(existsSync(join(paths.dir, 'appendonlydir'))).toBe(true);
    c.disconnect();

    await redis.stop();
    expect(await redis.exited).toEqual({ code: 0, signal: null });
    expect(processAlive(redis.pid)).toBe(false);
    expect(existsSync(redis.path)).toBe(false);
    expect(existsSync(paths.pidFile)).toBe(false);
    expect(lines.filter((l) => l.level >= WARN)).toEqual([]);
  });

  it('carries a BullMQ job from a queue to a worker with the role options', async () => {
    const redis = await embedded(tempDir());
    const queue = new Queue('redis-test', { connection: redisConnection(redis.path, 'queue') });
    const done = new Promise<unknown>((resolveDone) => {
      const worker: Worker = new Worker('redis-test', async (job) => ({ doubled: (job.data as { n: number }).n * 2 }), {
        connection: redisConnection(redis.path, 'worker'),
      });
      worker.on('completed', (_job, result) => void worker.close().then(() => resolveDone(result)));
    });
    await queue.add('double', { n: 21 }, { jobId: 'act_test1' });
    expect(await done).toEqual({ doubled: 42 });
    await queue.close();
  });

  it('keeps what was written a second before redis-server was SIGKILLed, and the next start takes over its stale files', async () => {
    const dataDir = tempDir();
    const { log, lines } = capturedLogger();
    const first = await embedded(dataDir, log);
    const c = await client(first.path);
    await c.set('act_1', 'queued');
    await sleep(1_500); // appendfsync everysec
    process.kill(first.pid, 'SIGKILL');
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
    c.disconnect();
    // The pid file and the socket are left behind, as after a power cut.
    expect(existsSync(embeddedRedisPaths(dataDir).pidFile)).toBe(true);
    expect(lines.some((l) => l.level === ERROR && l.msg.includes('exited unexpectedly (signal SIGKILL)'))).toBe(true);

    const second = await embedded(dataDir);
    expect(await (await client(second.path)).get('act_1')).toBe('queued');
  });

  it('stops a redis-server left running by a SIGKILLed daemon, keeping its data, before starting its own', async () => {
    const dataDir = tempDir();
    const daemon = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `
          import { Redis } from 'ioredis';
          import { createLogger } from './src/log.ts';
          import { redisConnection, startEmbeddedRedis } from './src/queue/redis.ts';
          const redis = await startEmbeddedRedis({ dataDir: ${JSON.stringify(dataDir)}, log: createLogger({ level: 'silent' }) });
          const c = new Redis(redisConnection(redis.path, 'worker'));
          await c.set('act_2', 'queued');
          process.stdout.write(JSON.stringify({ pid: redis.pid }) + '\\n');
          setInterval(() => {}, 1000);
        `,
      ],
      { cwd: join(import.meta.dirname, '../..'), stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const orphanPid = await new Promise<number>((resolvePid, reject) => {
      daemon.stdout.once('data', (chunk: Buffer) => resolvePid((JSON.parse(chunk.toString()) as { pid: number }).pid));
      daemon.once('exit', (code) => reject(new Error(`the daemon exited ${code} before it said its Redis's pid`)));
    });
    strays.push(orphanPid);
    daemon.kill('SIGKILL');
    await new Promise((r) => daemon.once('exit', r));
    expect(processAlive(orphanPid)).toBe(true); // its own process group: the daemon's death does not reach it

    const { log, lines } = capturedLogger();
    const redis = await embedded(dataDir, log);
    expect(exitedProcess(orphanPid)).toBe(true);
    expect(redis.pid).not.toBe(orphanPid);
    // SIGTERM made the orphan fsync its AOF, so even the last write survives without waiting a second.
    expect(await (await client(redis.path)).get('act_2')).toBe('queued');
    expect(lines.filter((l) => l.level === WARN).map((l) => [l.msg, l.pid])).toEqual([
      [expect.stringContaining('left running by an earlier serve'), orphanPid],
    ]);
  });

  it('never signals a live process that is not its Redis when the pid file names one', async () => {
    const dataDir = tempDir();
    const paths = embeddedRedisPaths(dataDir);
    mkdirSync(paths.dir, { recursive: true });
    writeFileSync(paths.pidFile, `${process.pid}\n`); // a pid reused by another process: this test's own
    writeFileSync(paths.socket, ''); // and a stale socket file
    const { log, lines } = capturedLogger();
    const redis = await embedded(dataDir, log);
    expect(await (await client(redis.path)).ping()).toBe('PONG');
    expect(lines.filter((l) => l.level >= WARN)).toEqual([]);
  });

  it('says what to install when redis-server is not on PATH', async () => {
    const dataDir = tempDir();
    const error = await startEmbeddedRedis({
      dataDir,
      log: capturedLogger().log,
      env: { PATH: tempDir('pi-nobin-') },
    }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(RedisError);
    expect((error as Error).message).toBe(
      'redis-server is not installed (it is not on PATH), and the action queue needs a Redis: install it (apt-get install redis-server), or set REDIS_URL to an existing Redis.',
    );
  });

  it('refuses a DATA_DIR too long for a unix socket, naming it and the limit, before creating anything', async () => {
    const dataDir = join(tempDir(), 'd'.repeat(100));
    const error = await startEmbeddedRedis({ dataDir, log: capturedLogger().log }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(RedisError);
    expect((error as Error).message).toMatch(
      /^DATA_DIR \/\S+ is too long for the embedded Redis's unix socket \(\S+redis\.sock is 1\d\d bytes, the limit is 107\): use a DATA_DIR of at most 90 bytes, or set REDIS_URL to a Redis of your own\.$/,
    );
    expect(existsSync(dataDir)).toBe(false);
  });

  describe('a redis-server that does not come up', () => {
    function fakeRedisServer(body: string): NodeJS.ProcessEnv {
      const bin = tempDir('pi-fakebin-');
      writeFileSync(join(bin, 'redis-server'), `#!/bin/sh\n${body}\n`);
      chmodSync(join(bin, 'redis-server'), 0o755);
      return { PATH: `${bin}:/usr/bin:/bin` };
    }

    it('quotes what it printed when it exits at once', async () => {
      const env = fakeRedisServer(`echo "*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***" >&2; exit 1`);
      const error = await rejection(startEmbeddedRedis({ dataDir: tempDir(), log: capturedLogger().log, env }));
      expect(error).toBeInstanceOf(RedisError);
      expect(error.message).toMatch(
        /^redis-server exited \(code 1\) before it answered on \S+redis\.sock; it said: "\*\*\* FATAL CONFIG FILE ERROR \(Redis 7\.0\.15\) \*\*\*"\.$/,
      );
    });

    it('gives up at the deadline, quoting the end of its log, and kills it', async () => {
      const dataDir = tempDir();
      const env = fakeRedisServer(
        [
          'while [ $# -gt 0 ]; do [ "$1" = --logfile ] && log=$2; shift; done',
          'echo $$ > "$log.pid"',
          `echo "4242:M 01 Dec 2026 00:00:00.000 * Reading RDB base file on AOF loading..." >> "$log"`,
          `echo "4242:M 01 Dec 2026 00:00:00.001 # Can't handle RDB format version 99" >> "$log"`,
          'exec sleep 30',
        ].join('\n'),
      );
      const error = await rejection(
        startEmbeddedRedis({ dataDir, log: capturedLogger().log, env, startTimeoutMs: 700 }),
      );
      expect(error).toBeInstanceOf(RedisError);
      expect(error.message).toMatch(
        /^redis-server did not answer PING on \S+redis\.sock within 0\.7 s; the end of its log: "Reading RDB base file on AOF loading\.\.\." \/ "Can't handle RDB format version 99"\.$/,
      );
      const fakePid = Number(readFileSync(`${embeddedRedisPaths(dataDir).logFile}.pid`, 'utf8'));
      expect(processAlive(fakePid)).toBe(false);
    });
  });
});

describe('redisConnection', () => {
  it('gives workers unlimited retries and makes queue commands fail at once while Redis is down', async () => {
    const socket = join(tempDir(), 'nothing.sock');
    expect(redisConnection(socket, 'worker')).toMatchObject({ path: socket, maxRetriesPerRequest: null });
    const queueClient = fresh(socket);
    const began = Date.now();
    await expect(queueClient.ping()).rejects.toThrow(/enableOfflineQueue/);
    expect(Date.now() - began).toBeLessThan(500);
  });

  it('takes host, port, user, password, database and TLS from a URL, and shows it with the password masked', () => {
    expect(redisConnection('redis://queue:p%40ss%3Aword@redis.example:6380/2', 'queue')).toEqual({
      host: 'redis.example',
      port: 6380,
      username: 'queue',
      password: 'p@ss:word',
      db: 2,
      enableOfflineQueue: false,
      connectionName: 'proxmox-inventory-queue',
    });
    expect(redisConnection(new Secret('rediss://:hunter2@[::1]'), 'worker')).toMatchObject({
      host: '::1',
      port: 6379,
      password: 'hunter2',
      tls: { servername: '::1' },
    });
    expect(describeRedisTarget('redis://queue:p%40ss%3Aword@redis.example:6380/2')).toBe(
      'redis://queue:***@redis.example:6380/2',
    );
    expect(describeRedisTarget(new Secret('rediss://:hunter2@[::1]'))).toBe('rediss://:***@[::1]');
    expect(describeRedisTarget('redis://redis.example')).toBe('redis://redis.example');
    expect(describeRedisTarget('/run/redis/redis.sock')).toBe('/run/redis/redis.sock');
  });

  it.each([
    ['not a url, hunter2', /^REDIS_URL is not a URL: set REDIS_URL to redis:\/\//],
    ['http://user:hunter2@redis.example', /^REDIS_URL has the scheme http: that Redis does not speak: set REDIS_URL/],
    ['redis://user:hunter2@redis.example/zero', /^REDIS_URL names the database "zero", which is not a number/],
  ])('refuses %j in one sentence that does not repeat the password', (text, message) => {
    const error = (() => {
      try {
        redisConnection(text, 'queue');
      } catch (err) {
        return err as Error;
      }
      throw new Error('accepted');
    })();
    expect(error).toBeInstanceOf(RedisError);
    expect(error.message).toMatch(message);
    expect(error.message).not.toContain('hunter2');
  });
});

describe('checkRedisSettings', () => {
  const password = 'canary-hunter2';
  let careless: TestRedis;
  let careful: TestRedis;
  let managed: TestRedis;

  beforeAll(async () => {
    [careless, careful, managed] = await Promise.all([
      startTestRedis({ tcp: true, password, appendonly: 'no', maxmemoryPolicy: 'allkeys-lru' }),
      startTestRedis(),
      startTestRedis({ args: ['--rename-command', 'CONFIG', ''] }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([careless?.stop(), careful?.stop(), managed?.stop()]);
  });

  it('warns once for AOF off and once for an evicting policy, each naming the fix, never the password', async () => {
    const { log, lines, text } = capturedLogger();
    const settings = await checkRedisSettings(fresh(careless.url), log);
    expect(settings).toEqual({ appendonly: 'no', maxmemoryPolicy: 'allkeys-lru' });
    const where = careless.url.replace(`:${password}@`, '');
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      [
        WARN,
        `Redis at ${where} has appendonly no: a Redis restart loses every queued job; set appendonly yes (CONFIG SET appendonly yes, and in redis.conf)`,
      ],
      [
        WARN,
        `Redis at ${where} has maxmemory-policy allkeys-lru: it may evict queued jobs when memory runs short; set maxmemory-policy noeviction (CONFIG SET maxmemory-policy noeviction, and in redis.conf)`,
      ],
    ]);
    expect(text()).not.toContain(password);
  });

  it('says nothing about a Redis with AOF on and no eviction', async () => {
    const { log, lines } = capturedLogger();
    expect(await checkRedisSettings(fresh(careful.url), log)).toEqual({
      appendonly: 'yes',
      maxmemoryPolicy: 'noeviction',
    });
    expect(lines).toEqual([]);
  });

  it('gives one info line when Redis refuses CONFIG, as managed services do', async () => {
    const { log, lines } = capturedLogger();
    expect(await checkRedisSettings(fresh(managed.url), log)).toEqual({ configRefused: true });
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      [
        30,
        `Redis at ${managed.url} refused CONFIG GET, so its persistence could not be checked: make sure it has appendonly yes and maxmemory-policy noeviction, or queued jobs can be lost on a restart or evicted`,
      ],
    ]);
  });

  it('gives up on a Redis that does not answer with one warning, instead of waiting for ever', async () => {
    const { log, lines } = capturedLogger();
    const socket = join(tempDir(), 'nothing.sock');
    expect(await checkRedisSettings(fresh(socket), log, { readyTimeoutMs: 300 })).toEqual({ unreachable: true });
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      [
        WARN,
        expect.stringMatching(
          new RegExp(
            `^Redis at ${socket} did not answer \\(connect ENOENT \\S+, after 0\\.3 s\\), so its persistence settings were not checked; check REDIS_URL and that Redis runs$`,
          ),
        ),
      ],
    ]);
  });
});

describe('test/support/redis', () => {
  it('restarts a SIGKILLed test Redis on the same socket with its AOF', async () => {
    const redis = await startTestRedis();
    try {
      const c = await client(redis.url, 'worker');
      await c.set('k', 'v');
      await sleep(1_200);
      await redis.kill();
      await redis.restart();
      expect(await c.get('k')).toBe('v'); // the worker connection reconnected by itself
    } finally {
      await redis.stop();
    }
  });
});
