/**
 * What the daemon knows beyond its store, on every status surface (issue 8, "Partial failures"):
 *
 * - A store that cannot be written. `serve` runs in-process (startServing, the code `serve` runs)
 *   against the simulator, and its own store connection gets SQLite's `PRAGMA max_page_count`
 *   capped at the file's size: SQLite then answers SQLITE_FULL, "database or disk is full", for
 *   whatever needs a new page, as on a full disk. Once even the failure cannot be recorded,
 *   /readyz, sync_status over the daemon's HTTP endpoint and the log say so; the stdio `mcp`
 *   process, which reads only the file, sees the last attempt overdue.
 * - The same with a real full filesystem, where one can be mounted (a user and mount namespace
 *   with a small tmpfs as DATA_DIR; skipped where `unshare` may not): `serve` in its own process.
 * - A cycle that hangs. `serve` in its own process; the simulator holds GET /cluster/resources
 *   unanswered. sync_status over HTTP says what the cycle waits on, and the cluster turns stale
 *   when its data passes the freshness window, with no failure at all.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startServing, type Serving } from '../../src/main.js';
import { createHttpProxmoxClient } from '../../src/proxmox/http-client.js';
import { Secret } from '../../src/secret.js';
import { startSimulator, type Simulator } from '../../src/sim/server.js';
import { syncStatus } from '../../src/store/queries.js';
import { trackRequests } from '../../src/sync/counting-client.js';
import { stopChild } from './helpers.js';

const RESOURCES = 'GET /cluster/resources';

interface ReadyCluster {
  cluster: string;
  lastSuccessAt: string | null;
  ageMs: number | null;
  ready: boolean;
  error?: string;
  unrecordedFailures?: number;
  cycle?: {
    startedAt: string;
    runningForMs: number;
    phase: string;
    waitingOn: Array<{ request: string; count: number; forMs: number }>;
  };
}
interface Readyz {
  status: number;
  body: { ready: boolean; clusters: ReadyCluster[] };
}
interface StatusRow {
  cluster: string;
  stale: boolean;
  overdue: boolean;
  consecutiveFailures: number;
  lastError: string | null;
  lastSuccessAt: string | null;
  ageMs: number | null;
  unrecordedFailures?: number;
  cycle?: ReadyCluster['cycle'] | null;
}

/** Polls until `want` holds and answers what satisfied it; `context` adds what to show on failure. */
async function until<T>(
  what: string,
  probe: () => Promise<T>,
  want: (value: T) => boolean,
  context: () => string = () => '',
  ms = 30_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await probe();
    if (want(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no ${what} within ${ms} ms; last: ${JSON.stringify(last)}\n${context()}`);
}

async function readyz(base: string): Promise<Readyz | undefined> {
  try {
    const res = await fetch(`${base}/readyz`);
    return { status: res.status, body: (await res.json()) as Readyz['body'] };
  } catch {
    return undefined; // not listening yet
  }
}

async function httpClient(url: string): Promise<Client> {
  const client = new Client({ name: 'live-status-test', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

async function call(client: Client, name: string, args: Record<string, unknown> = {}): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}
const textOf = (r: CallToolResult): string => (r.content[0] as { text: string }).text;
const rowsOf = (r: CallToolResult): StatusRow[] => (r.structuredContent as { clusters: StatusRow[] }).clusters;

function simEnv(sim: Simulator): Record<string, string> {
  return {
    PVE_URL: sim.url,
    PVE_TOKEN_ID: sim.tokens.full.id,
    PVE_TOKEN_SECRET: sim.tokens.full.secret,
    PVE_CLUSTER_NAME: 'lab',
  };
}

describe('requests in flight', () => {
  it('are what the client waits on now, grouped by endpoint, the longest-waiting first, and gone once answered', async () => {
    const sim = await startSimulator({ tls: false, guests: 10, nodes: 2, seed: 79, taskDelayMs: 5 });
    const inner = createHttpProxmoxClient({
      cluster: 'lab',
      url: sim.url,
      tokenId: sim.tokens.full.id,
      tokenSecret: new Secret(sim.tokens.full.secret),
      tls: {},
      timeoutMs: 30_000,
    });
    const tracker = trackRequests(inner);
    try {
      sim.setFaults({ hang: true });
      const first = tracker.client.clusterStatus();
      await new Promise((r) => setTimeout(r, 20));
      const calls = [first, tracker.client.clusterResources(), tracker.client.clusterResources()];
      const waiting = tracker.inFlight();
      expect(waiting.map(({ request, count }) => ({ request, count }))).toEqual([
        { request: 'GET /cluster/status', count: 1 },
        { request: RESOURCES, count: 2 },
      ]);
      expect(waiting[0]!.since).toBeLessThan(waiting[1]!.since);
      sim.setFaults({}); // the held requests are dropped and retried
      await Promise.all(calls);
      expect(tracker.inFlight()).toEqual([]);
    } finally {
      await inner.close();
      await sim.close();
    }
  });
});

describe('a store that cannot be written (database or disk is full)', () => {
  const WINDOW_SECONDS = 3;
  let sim: Simulator;
  let serving: Serving;
  let client: Client;
  let base: string;
  const dataDir = mkdtempSync(join(tmpdir(), 'pi-full-'));
  const lines: Array<{ level: number; msg: string; cluster?: string; err?: string; recorded?: boolean }> = [];
  const logText = (): string =>
    lines
      .slice(-30)
      .map((l) => JSON.stringify(l))
      .join('\n');
  const errors = (): typeof lines => lines.filter((l) => l.level >= 50);
  const status = async (): Promise<{ result: CallToolResult; lab: StatusRow }> => {
    const result = await call(client, 'sync_status');
    return { result, lab: rowsOf(result).find((c) => c.cluster === 'lab')! };
  };

  beforeAll(async () => {
    sim = await startSimulator({ tls: false, guests: 30, nodes: 2, seed: 83, taskDelayMs: 5 });
    const config = loadConfig({
      env: {
        ...simEnv(sim),
        DATA_DIR: dataDir,
        SYNC_INTERVAL_SECONDS: '1',
        SNAPSHOT_SCHEDULE: 'off',
        MCP_HTTP_PORT: '0',
        MCP_READY_MAX_AGE_SECONDS: String(WINDOW_SECONDS),
      },
    });
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean))
          lines.push(JSON.parse(line) as (typeof lines)[number]);
        done();
      },
    });
    serving = await startServing(config, { log: createLogger({ level: 'info', destination: sink }) });
    base = serving.mcpUrl!.replace(/\/mcp$/, '');
    client = await httpClient(serving.mcpUrl!);
  }, 30_000);

  afterAll(async () => {
    await client?.close();
    await serving?.close();
    await sim?.close();
  });

  it('SQLite itself answers "database or disk is full" once the store connection may not grow', async () => {
    await until(
      'a first sync (200 from /readyz)',
      () => readyz(base),
      (r) => r?.status === 200,
      logText,
    );
    const { sqlite } = serving.store;
    sqlite.exec('CREATE TABLE test_filler (b BLOB)');
    sqlite.pragma(`max_page_count = ${sqlite.pragma('page_count', { simple: true }) as number}`);
    // The free pages go to the filler; what is left is the room inside pages already in use.
    let full: unknown;
    try {
      for (let i = 0; i < 100_000; i++) sqlite.prepare('INSERT INTO test_filler VALUES (randomblob(3000))').run();
    } catch (err) {
      full = err;
    }
    expect(full).toMatchObject({ code: 'SQLITE_FULL', message: 'database or disk is full' });
  }, 60_000);

  it('fails cycles the store cannot record: /readyz is 503 with the error, sync_status from the daemon counts them, the file does not', async () => {
    const recordedBefore = syncStatus(serving.store, Date.now()).clusters[0]!.consecutiveFailures;
    // New guests make each cycle's write bigger; failures that still fit are recorded and use up
    // the last room, until not even a failure fits. Cycles run now, besides the schedule's.
    await until(
      'two failures the store could not record',
      async () => {
        for (let i = 0; i < 3; i++) sim.createGuest({ type: 'lxc', node: 'pve1' });
        await serving.scheduler.syncNow();
        return status();
      },
      ({ lab }) => (lab.unrecordedFailures ?? 0) >= 2,
      logText,
      60_000,
    );
    const { result, lab } = await status();
    expect(lab).toMatchObject({
      stale: true,
      overdue: false,
      lastError: expect.stringContaining('database or disk is full') as string,
    });
    expect(lab.consecutiveFailures).toBeGreaterThanOrEqual(recordedBefore + lab.unrecordedFailures!);
    const text = textOf(result);
    expect(text).toMatch(/^lab STALE \S+ \d+s \d+ \d+ \d+ms \d+ "[^"]*database or disk is full"$/m);
    expect(text).toMatch(
      new RegExp(
        `^- lab: \\d+ failed syncs since the last success could not be recorded in the store \\(the inventory file does not show them\\)$`,
        'm',
      ),
    );

    // The file alone misses these failures: it counts only those recorded before the room ran out.
    const stored = syncStatus(serving.store, Date.now()).clusters[0]!;
    expect(stored.consecutiveFailures + lab.unrecordedFailures!).toBe(lab.consecutiveFailures);

    const r = (await readyz(base))!;
    expect(r.status).toBe(503);
    expect(r.body.clusters).toEqual([
      expect.objectContaining({
        cluster: 'lab',
        ready: false,
        error: expect.stringContaining('database or disk is full') as string,
        unrecordedFailures: expect.any(Number) as number,
      }),
    ]);
  }, 90_000);

  it('logs the streak once at error level, each failed cycle at warn', async () => {
    const { lab } = await status();
    await until(
      'a further unrecorded failure',
      status,
      (s) => (s.lab.unrecordedFailures ?? 0) > lab.unrecordedFailures!,
      logText,
    );
    const streak = errors().filter((l) => l.msg.startsWith('sync failed and the store could not record the failure'));
    expect(streak).toHaveLength(1);
    expect(streak[0]).toMatchObject({
      cluster: 'lab',
      err: expect.stringContaining('database or disk is full') as string,
    });
    expect(errors()).toHaveLength(1); // nothing else at error level, however many cycles fail
    expect(lines.filter((l) => l.msg === 'sync failed' && l.recorded === false).length).toBeGreaterThanOrEqual(3);
  }, 60_000);

  it('the stdio mcp process, reading only the file, finds the last attempt overdue', async () => {
    const stdio = new Client({ name: 'stdio-test', version: '1' });
    await stdio.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: ['--import', 'tsx', 'src/cli.ts', 'mcp'],
        env: {
          PATH: process.env.PATH ?? '',
          DATA_DIR: dataDir,
          LOG_LEVEL: 'error',
          MCP_READY_MAX_AGE_SECONDS: String(WINDOW_SECONDS),
        },
        stderr: 'ignore',
      }),
    );
    try {
      const r = await until(
        'OVERDUE from the stdio sync_status',
        () => call(stdio, 'sync_status'),
        (res) => rowsOf(res)[0]?.overdue === true,
        logText,
        30_000,
      );
      expect(textOf(r)).toMatch(/^lab OVERDUE /m);
      expect(
        (r.structuredContent as { freshness: { overdue: boolean; staleClusters: string[] } }).freshness,
      ).toMatchObject({ overdue: true, staleClusters: ['lab'] });
      expect(textOf(r)).toContain('is `proxmox-inventory serve` running?');
    } finally {
      await stdio.close();
    }
  }, 60_000);

  it('once the store can grow again, the next cycle is written: ready, no unrecorded failures, an info line', async () => {
    serving.store.sqlite.pragma('max_page_count = 1073741823');
    const r = await until(
      '200 from /readyz',
      () => readyz(base),
      (a) => a?.status === 200,
      logText,
    );
    expect(r!.body.clusters).toEqual([
      { cluster: 'lab', lastSuccessAt: expect.any(String) as string, ageMs: expect.any(Number) as number, ready: true },
    ]);
    const { lab } = await status();
    expect(lab).toMatchObject({
      stale: false,
      overdue: false,
      consecutiveFailures: 0,
      lastError: null,
      unrecordedFailures: 0,
    });
    expect(lines.some((l) => l.level === 30 && l.msg === 'sync succeeded and was written to the store again')).toBe(
      true,
    );
    expect(errors()).toHaveLength(1);
  }, 60_000);
});

/** Whether this machine lets an unprivileged process mount a tmpfs of its own (user + mount namespace). */
function canMountTmpfs(): boolean {
  const dir = mkdtempSync(join(tmpdir(), 'pi-tmpfs-probe-'));
  const r = spawnSync(
    'unshare',
    ['--user', '--map-root-user', '--mount', 'sh', '-c', 'mount -t tmpfs -o size=64k tmpfs "$0"', dir],
    { stdio: 'ignore' },
  );
  rmSync(dir, { recursive: true, force: true });
  return r.status === 0;
}

describe.skipIf(!canMountTmpfs())('a full filesystem under the real daemon (DATA_DIR on a small tmpfs)', () => {
  let sim: Simulator;
  let daemon: ChildProcess;
  let base: string;
  let client: Client;
  let log = '';
  const dataDir = mkdtempSync(join(tmpdir(), 'pi-tmpfs-'));
  const daemonLog = (): string => `daemon log:\n${log.slice(-3000)}`;
  /** The tmpfs as the daemon sees it: only its mount namespace has it. */
  const inside = (file: string): string => `/proc/${daemon.pid}/root${join(dataDir, file)}`;

  beforeAll(async () => {
    sim = await startSimulator({ tls: false, guests: 30, nodes: 2, seed: 101, taskDelayMs: 5 });
    base = `http://127.0.0.1:${await freePort()}`;
    daemon = spawn(
      'unshare',
      [
        '--user',
        '--map-root-user',
        '--mount',
        'sh',
        '-c',
        'mount -t tmpfs -o size=8m tmpfs "$0" && exec "$1" --import tsx src/cli.ts serve',
        dataDir,
        process.execPath,
      ],
      {
        env: {
          PATH: process.env.PATH ?? '',
          ...simEnv(sim),
          DATA_DIR: dataDir,
          SYNC_INTERVAL_SECONDS: '1',
          SNAPSHOT_SCHEDULE: 'off',
          MCP_HTTP_PORT: base.split(':').at(-1)!,
          MCP_READY_MAX_AGE_SECONDS: '60',
          LOG_LEVEL: 'warn',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    daemon.stderr!.on('data', (d: Buffer) => (log += d));
    await until(
      'a first sync (200 from /readyz)',
      () => readyz(base),
      (r) => r?.status === 200,
      daemonLog,
    );
    client = await httpClient(`${base}/mcp`);
  }, 60_000);

  afterAll(async () => {
    await client?.close();
    await stopChild(daemon);
    await sim?.close();
  });

  it('reports the failures the store cannot record on /readyz, sync_status and the log, and recovers once there is room', async () => {
    // Fill the filesystem: the next write of the database or its WAL gets ENOSPC.
    const chunk = Buffer.alloc(64 * 1024);
    let bytes = 0;
    for (;;) {
      try {
        writeFileSync(inside('filler'), chunk, { flag: 'a' });
        bytes += chunk.length;
      } catch (err) {
        expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
        break;
      }
    }
    expect(bytes).toBeGreaterThan(0);
    let guests = 0;
    const r = await until(
      '503 from /readyz with failures the store could not record',
      async () => {
        if (guests++ < 200) sim.createGuest({ type: 'lxc', node: 'pve1' }); // something to write each cycle
        return readyz(base);
      },
      (a) => a?.status === 503 && (a.body.clusters[0]?.unrecordedFailures ?? 0) >= 2,
      daemonLog,
      60_000,
    );
    expect(r!.body.clusters[0]).toMatchObject({
      cluster: 'lab',
      ready: false,
      error: expect.stringContaining('database or disk is full') as string,
    });

    const row = rowsOf(await call(client, 'sync_status'))[0]!;
    expect(row).toMatchObject({
      stale: true,
      lastError: expect.stringContaining('database or disk is full') as string,
    });
    expect(row.unrecordedFailures).toBeGreaterThanOrEqual(2);
    const streaks = log
      .split('\n')
      .filter((l) => l.includes('"msg":"sync failed and the store could not record the failure'));
    expect(streaks).toHaveLength(1);
    expect(JSON.parse(streaks[0]!)).toMatchObject({
      level: 50,
      cluster: 'lab',
      err: expect.stringContaining('database or disk is full') as string,
    });

    rmSync(inside('filler'));
    const back = await until(
      '200 from /readyz',
      () => readyz(base),
      (a) => a?.status === 200,
      daemonLog,
      30_000,
    );
    expect(back!.body.clusters).toEqual([
      { cluster: 'lab', lastSuccessAt: expect.any(String) as string, ageMs: expect.any(Number) as number, ready: true },
    ]);
    expect(rowsOf(await call(client, 'sync_status'))[0]).toMatchObject({
      stale: false,
      consecutiveFailures: 0,
      unrecordedFailures: 0,
    });
  }, 120_000);
});

/** A port nothing listens on: the kernel picks one, and it is given back at once. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('a cycle that hangs, in the real daemon', () => {
  const WINDOW_SECONDS = 2;
  let sim: Simulator;
  let daemon: ChildProcess;
  let base: string;
  let client: Client;
  let log = '';
  const daemonLog = (): string => `daemon log:\n${log.slice(-3000)}`;

  beforeAll(async () => {
    sim = await startSimulator({ tls: false, guests: 20, nodes: 2, seed: 89, taskDelayMs: 5 });
    base = `http://127.0.0.1:${await freePort()}`;
    daemon = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve'], {
      env: {
        PATH: process.env.PATH ?? '',
        ...simEnv(sim),
        DATA_DIR: mkdtempSync(join(tmpdir(), 'pi-hang-')),
        SYNC_INTERVAL_SECONDS: '1',
        SNAPSHOT_SCHEDULE: 'off',
        MCP_HTTP_PORT: base.split(':').at(-1)!,
        MCP_READY_MAX_AGE_SECONDS: String(WINDOW_SECONDS),
        PVE_TIMEOUT_MS: '60000',
        SYNC_CYCLE_TIMEOUT_SECONDS: '60',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    daemon.stderr!.on('data', (d: Buffer) => (log += d));
    await until(
      'a first sync (200 from /readyz)',
      () => readyz(base),
      (r) => r?.status === 200,
      daemonLog,
    );
    client = await httpClient(`${base}/mcp`);
  }, 60_000);

  afterAll(async () => {
    await client?.close();
    await stopChild(daemon);
    await sim?.close();
  });

  it('sync_status says what the cycle waits on, and calls the cluster stale once its data passes the window', async () => {
    sim.setFaults({ hang: true, endpoint: RESOURCES });
    const lab = async (): Promise<{ result: CallToolResult; lab: StatusRow }> => {
      const result = await call(client, 'sync_status');
      return { result, lab: rowsOf(result)[0]! };
    };
    // Past the window by the data's age, with a cycle running (not a failure, not overdue).
    const { result, lab: row } = await until(
      'a hung cycle past the window',
      lab,
      (s) => (s.lab.cycle?.runningForMs ?? 0) > WINDOW_SECONDS * 1000 && (s.lab.ageMs ?? 0) > WINDOW_SECONDS * 1000,
      daemonLog,
    );
    expect(row).toMatchObject({
      stale: true,
      overdue: false,
      consecutiveFailures: 0,
      lastError: null,
      cycle: {
        phase: 'reading the cluster',
        waitingOn: [{ request: RESOURCES, count: 1, forMs: expect.any(Number) as number }],
      },
    });
    const text = textOf(result);
    expect(text).toMatch(/^lab STALE \S+ \d+s \d+ \d+ \d+ms 0 -$/m);
    expect(text).toMatch(/^- lab: cycle running for \d+ s, reading the cluster: waiting on GET \/cluster\/resources$/m);
    // The daemon answering is running: the freshness line calls the cluster stale, not overdue.
    expect(
      (result.structuredContent as { freshness: { overdue: boolean; staleClusters: string[] } }).freshness,
    ).toMatchObject({ overdue: false, staleClusters: ['lab'] });
    expect(text).not.toContain('is `proxmox-inventory serve` running?');
    const seconds = Number(/cycle running for (\d+) s/.exec(text)![1]);
    expect(seconds).toBeGreaterThanOrEqual(WINDOW_SECONDS);

    // Every other answer's freshness calls the cluster stale too.
    const guests = await call(client, 'list_guests', { limit: 1 });
    expect((guests.structuredContent as { freshness: { staleClusters: string[] } }).freshness.staleClusters).toEqual([
      'lab',
    ]);

    const r = (await readyz(base))!;
    expect(r.status).toBe(503);
    expect(r.body.clusters[0]).toMatchObject({
      cluster: 'lab',
      ready: false,
      cycle: {
        phase: 'reading the cluster',
        runningForMs: expect.any(Number) as number,
        waitingOn: [{ request: RESOURCES, count: 1 }],
      },
    });
    expect(r.body.clusters[0]!.error).toBeUndefined();
  }, 60_000);

  it('once the cluster answers, the cycle finishes and the cluster is ready again', async () => {
    sim.setFaults({}); // the held requests are dropped; the client retries them
    const r = await until(
      '200 from /readyz',
      () => readyz(base),
      (a) => a?.status === 200,
      daemonLog,
    );
    expect(r!.body.clusters).toEqual([
      { cluster: 'lab', lastSuccessAt: expect.any(String) as string, ageMs: expect.any(Number) as number, ready: true },
    ]);
    const row = rowsOf(await call(client, 'sync_status'))[0]!;
    expect(row).toMatchObject({ stale: false, overdue: false, consecutiveFailures: 0 });
  }, 60_000);
});
