/**
 * `serve` with actions on and a REDIS_URL where nothing listens: the daemon keeps serving the
 * inventory and says once, in its own words, that the Redis did not answer; ioredis's own
 * "Unhandled error event" with a stack never reaches the log, and the worker's reconnection
 * attempts are one warning, not one a second. A shutdown with nothing running does not wait on the
 * Redis that is down (it took the whole 10 s deadline, exit 1, the lock left behind).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../src/sim/server.js';
import { stopChild } from '../sync/helpers.js';

let sim: Simulator | undefined;
let daemon: ChildProcess | undefined;
const dir = mkdtempSync(join(tmpdir(), 'pi-redis-unreachable-'));

beforeAll(async () => {
  sim = await startSimulator({ tls: false, guests: 5, nodes: 1, seed: 5, taskDelayMs: 5 });
});

afterAll(async () => {
  if (daemon) await stopChild(daemon);
  await sim?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A port nothing listens on: taken from the system, then given back. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

function serveEnv(redisUrl: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '',
    PVE_URL: sim!.url,
    PVE_TOKEN_ID: sim!.tokens.full.id,
    PVE_TOKEN_SECRET: sim!.tokens.full.secret,
    PVE_CLUSTER_NAME: 'lab',
    DATA_DIR: dir,
    SNAPSHOT_SCHEDULE: 'off',
    MCP_HTTP_PORT: '0',
    ACTIONS: 'power',
    REDIS_URL: redisUrl,
    LOG_LEVEL: 'info',
  };
}

describe('serve with an unreachable REDIS_URL', () => {
  it('logs one line of its own, not ioredis stack traces', async () => {
    let log = '';
    daemon = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve'], {
      env: serveEnv(`redis://127.0.0.1:${await closedPort()}`),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    daemon.stdout!.on('data', (d: Buffer) => (log += d));
    daemon.stderr!.on('data', (d: Buffer) => (log += d));
    const deadline = Date.now() + 30_000;
    while (!/did not answer/.test(log) && Date.now() < deadline && daemon.exitCode === null)
      await new Promise((r) => setTimeout(r, 100));
    expect(log).toMatch(/Redis at redis:\/\/127\.0\.0\.1:\d+ did not answer/);
    await new Promise((r) => setTimeout(r, 4_000)); // reconnection attempts keep coming meanwhile
    expect(log).not.toMatch(/Unhandled error event/);
    expect(log).not.toMatch(/\n\s+at /); // no stack trace
    // ioredis reconnects every second on each worker connection; one warning says it, not one each time.
    expect(log.match(/action worker: Redis error/g)).toHaveLength(1);

    // Nothing is running, so a shutdown does not wait on the Redis that is down: a clean exit, lock released.
    const exited = new Promise<number | null>((resolve) => daemon!.once('exit', (code) => resolve(code)));
    const asked = Date.now();
    daemon.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(Date.now() - asked).toBeLessThan(8_000);
    expect(existsSync(join(dir, 'serve.lock'))).toBe(false);
    daemon = undefined;
  }, 60_000);

  // Node's default ended the start on the spot (143), before the lock and the store were released.
  it('a SIGTERM while the start waits on that Redis: the start finishes, then a clean exit 0', async () => {
    // A Redis that takes the connection and never answers: the start's check waits on it.
    const silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const reached = new Promise((r) => silent.once('connection', r));
    let log = '';
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve'], {
      env: serveEnv(`redis://127.0.0.1:${(silent.address() as { port: number }).port}`),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    daemon = child;
    child.stderr!.on('data', (d: Buffer) => (log += d));
    const exited = new Promise<[number | null, string | null]>((r) => child.once('exit', (c, s) => r([c, s])));
    try {
      await reached;
      child.kill('SIGTERM');
      expect(await exited).toEqual([0, null]);
      expect(log).toMatch(/stopping once the start has finished/);
      expect(existsSync(join(dir, 'serve.lock'))).toBe(false);
      daemon = undefined;
    } finally {
      silent.close();
    }
  }, 60_000);
});
