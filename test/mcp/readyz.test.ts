/**
 * /readyz of the real daemon: `serve` in its own process against the simulator, syncing every
 * second with a 2 s readiness window. http.test.ts covers the endpoint with a stub; this covers the
 * readiness main.ts wires to it, fed by the scheduler and the store. Not ready while no sync has
 * succeeded, ready once one has, not ready (naming the cluster) when /cluster/resources fails for
 * longer than the window, and ready again once it answers. Every wait polls for its condition.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../src/sim/server.js';
import { stopChild } from '../sync/helpers.js';

const WINDOW_SECONDS = 2;
const RESOURCES = 'GET /cluster/resources';

interface Readiness {
  ready: boolean;
  clusters: Array<{
    cluster: string;
    lastSuccessAt: string | null;
    ageMs: number | null;
    ready: boolean;
    error?: string;
    cycle?: unknown;
  }>;
}
interface Answer {
  status: number;
  body: Readiness;
}

let sim: Simulator;
let daemon: ChildProcess;
let base: string;
let log = '';

/** A port nothing listens on: the kernel picks one, and it is given back at once. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function get(path: string): Promise<Answer | undefined> {
  try {
    const res = await fetch(`${base}${path}`);
    return { status: res.status, body: (await res.json()) as Readiness };
  } catch {
    return undefined; // not listening yet
  }
}

/** Polls until `want` holds and answers what satisfied it; fails with the last answer and the daemon's log. */
async function until<T>(what: string, probe: () => Promise<T>, want: (value: T) => boolean, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: T | undefined;
  while (Date.now() < deadline) {
    if (daemon.exitCode !== null)
      throw new Error(
        `the daemon exited with ${daemon.exitCode} while waiting for ${what}; its log:\n${log.slice(-3000)}`,
      );
    last = await probe();
    if (want(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no ${what} within ${ms} ms; last: ${JSON.stringify(last)}; daemon log:\n${log.slice(-3000)}`);
}

const readyz = (): Promise<Answer | undefined> => get('/readyz');
const resourceReads = (): number => sim.counters().byEndpoint[RESOURCES] ?? 0;

beforeAll(async () => {
  sim = await startSimulator({ tls: false, guests: 20, nodes: 2, seed: 71, taskDelayMs: 5 });
  // No sync can succeed until the first test lets /cluster/resources answer.
  sim.setFaults({ errorRate: 1, errorStatus: 500, endpoint: RESOURCES });
  base = `http://127.0.0.1:${await freePort()}`;
  daemon = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve'], {
    env: {
      PATH: process.env.PATH ?? '',
      PVE_URL: sim.url,
      PVE_TOKEN_ID: sim.tokens.full.id,
      PVE_TOKEN_SECRET: sim.tokens.full.secret,
      PVE_CLUSTER_NAME: 'lab',
      DATA_DIR: mkdtempSync(join(tmpdir(), 'pi-readyz-')),
      SYNC_INTERVAL_SECONDS: '1',
      SNAPSHOT_SCHEDULE: 'off',
      MCP_HTTP_PORT: base.split(':').at(-1)!,
      MCP_READY_MAX_AGE_SECONDS: String(WINDOW_SECONDS),
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  daemon.stderr!.on('data', (d: Buffer) => (log += d));
});

afterAll(async () => {
  await stopChild(daemon);
  await sim?.close();
});

describe('/readyz of the real daemon', () => {
  it('is 503 while no sync has succeeded, with the cluster never synced; /healthz is 200', async () => {
    await until('/readyz answer', readyz, (r) => r !== undefined);
    await until(
      'two failed reads of /cluster/resources',
      async () => resourceReads(),
      (n) => n >= 2,
    );
    const r = (await readyz())!;
    expect(r.status).toBe(503);
    // Not ready says why: the last failure (and the cycle running at that moment, if one is).
    const { cycle: _running, ...lab } = r.body.clusters[0]!;
    expect(r.body).toMatchObject({ ready: false, clusters: [expect.any(Object)] });
    expect(lab).toEqual({
      cluster: 'lab',
      lastSuccessAt: null,
      ageMs: null,
      ready: false,
      error: expect.stringContaining('GET /cluster/resources') as string,
    });
    expect((await get('/healthz'))?.status).toBe(200);
  }, 60_000);

  it('is 200 once a sync has succeeded', async () => {
    sim.setFaults({});
    const r = (await until('200 from /readyz', readyz, (a) => a?.status === 200))!;
    expect(r.body).toEqual({
      ready: true,
      clusters: [
        {
          cluster: 'lab',
          lastSuccessAt: expect.any(String) as string,
          ageMs: expect.any(Number) as number,
          ready: true,
        },
      ],
    });
    expect(r.body.clusters[0]!.ageMs).toBeLessThanOrEqual(WINDOW_SECONDS * 1000);
  }, 60_000);

  it('turns 503, naming the cluster, when /cluster/resources fails for longer than the window', async () => {
    sim.setFaults({ errorRate: 1, errorStatus: 500, endpoint: RESOURCES });
    const r = (await until('503 from /readyz', readyz, (a) => a?.status === 503))!;
    const { cycle: _running, ...lab } = r.body.clusters[0]!;
    expect(r.body).toMatchObject({ ready: false, clusters: [expect.any(Object)] });
    expect(lab).toEqual({
      cluster: 'lab',
      lastSuccessAt: expect.any(String) as string,
      ageMs: expect.any(Number) as number,
      ready: false,
      error: expect.stringContaining('GET /cluster/resources') as string,
    });
    const { lastSuccessAt, ageMs } = r.body.clusters[0]!;
    expect(ageMs!).toBeGreaterThan(WINDOW_SECONDS * 1000);
    // The daemon is still syncing, and failing: the last success stays where it was.
    const reads = resourceReads();
    await until(
      'another failed read of /cluster/resources',
      async () => resourceReads(),
      (n) => n > reads,
    );
    const again = (await readyz())!;
    expect(again.status).toBe(503);
    expect(again.body.clusters[0]).toMatchObject({ cluster: 'lab', lastSuccessAt, ready: false });
    expect(again.body.clusters[0]!.ageMs!).toBeGreaterThan(ageMs!);
    expect((await get('/healthz'))?.status).toBe(200); // up, only not ready
  }, 60_000);

  it('is 200 again once the cluster answers', async () => {
    sim.setFaults({});
    const r = (await until('200 from /readyz', readyz, (a) => a?.status === 200))!;
    expect(r.body.clusters).toEqual([expect.objectContaining({ cluster: 'lab', ready: true })]);
  }, 60_000);
});
