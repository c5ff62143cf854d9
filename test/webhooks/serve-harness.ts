/**
 * `serve` as an operator runs it, for the webhook end-to-end and fault tests: simulated clusters in
 * this process (plain HTTP on loopback), a config file naming them, and the daemon spawned as its
 * own process on a DATA_DIR whose inventory this process also opens, to add subscriptions and read
 * deliveries. Receivers reach it through WEBHOOK_ALLOW_CIDRS=127.0.0.1/32, as the README says.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/sim/server.js';
import { openStore, type Store } from '../../src/store/db.js';
import { type DeliveryRow } from '../../src/store/webhooks.js';
import { subscribe } from './subscriptions.js';

const CLI = ['--import', 'tsx', 'src/cli.ts'];

export interface ClusterSpec extends SimulatorOptions {
  name: string;
}

export interface ServeProcess {
  child: ChildProcess;
  /** Everything it wrote to stderr (JSON log lines) so far. */
  log(): string;
  /** Resolves once a log line contains `text`. */
  waitForLog(text: string, timeoutMs?: number): Promise<void>;
  /** Sends the signal and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface Subscribed {
  id: string;
  secret: string;
}

export interface ServeHarness {
  dataDir: string;
  /** The environment serve runs with (DATA_DIR, the config file): other commands take it too. */
  env: Record<string, string>;
  sims: Record<string, Simulator>;
  /** The inventory serve writes, opened by the test too (WAL: both may use it at once). */
  store: Store;
  serve(env?: Record<string, string>): Promise<ServeProcess>;
  /** Runs a command of the CLI with serve's environment (`action stop 101 --yes`), as an operator beside it would. */
  cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
  subscribe(url: string, events: string[], filters?: { cluster?: string; tag?: string; secret?: string }): Subscribed;
  deliveries(subscriptionId: string): DeliveryRow[];
  /** Committed events of these types (SQL LIKE patterns) after `afterSeq`, oldest first. */
  events(afterSeq: number, like?: string): Array<{ seq: number; id: string; type: string; cluster: string | null }>;
  close(): Promise<void>;
}

/** What every serve of these tests runs with: a sync a second, no snapshots, webhooks to loopback. */
const BASE_ENV: Record<string, string> = {
  SYNC_INTERVAL_SECONDS: '1',
  SYNC_SWEEP_EVERY_SECONDS: '0',
  SYNC_NODE_STATUS_MINUTES: '0',
  SNAPSHOT_SCHEDULE: 'off',
  MCP_HTTP: 'off',
  WEBHOOK_ALLOW_CIDRS: '127.0.0.1/32',
  LOG_LEVEL: 'info',
};

export async function startServeHarness(
  clusters: ClusterSpec[],
  env: Record<string, string> = {},
): Promise<ServeHarness> {
  const dir = mkdtempSync(join(tmpdir(), 'pi-webhooks-e2e-'));
  const dataDir = join(dir, 'data');
  const sims: Record<string, Simulator> = {};
  for (const { name, ...options } of clusters)
    sims[name] = await startSimulator({ tls: false, taskDelayMs: 20, clusterName: name, ...options });
  const configFile = join(dir, 'config.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      clusters: Object.entries(sims).map(([name, sim]) => ({
        name,
        url: sim.url,
        tokenId: sim.tokens.full.id,
        tokenSecret: sim.tokens.full.secret,
      })),
    }),
    { mode: 0o600 },
  );
  const baseEnv = { ...BASE_ENV, ...env, DATA_DIR: dataDir, PROXMOX_INVENTORY_CONFIG: configFile };
  const store = openStore(join(dataDir, 'inventory.db'));
  const processes: ServeProcess[] = [];

  return {
    dataDir,
    env: baseEnv,
    sims,
    store,
    async serve(extra = {}) {
      const p = spawnServe({ ...baseEnv, ...extra });
      processes.push(p);
      await p.waitForLog('proxmox-inventory serving', 60_000);
      return p;
    },
    cli(args) {
      return new Promise((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
          env: { PATH: process.env.PATH ?? '', ...baseEnv },
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d));
        child.stderr.on('data', (d: Buffer) => (stderr += d));
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      });
    },
    subscribe: (url, events, filters = {}) => subscribe(store, url, { events, ...filters }),
    deliveries: (subscriptionId) =>
      store.sqlite
        .prepare('SELECT * FROM webhook_deliveries WHERE subscription_id = ? ORDER BY rowid')
        .all(subscriptionId)
        .map((r) => camel(r as Record<string, unknown>) as DeliveryRow),
    events: (afterSeq, like = '%') =>
      store.sqlite
        .prepare('SELECT seq, id, type, cluster FROM events WHERE seq > ? AND type LIKE ? ORDER BY seq')
        .all(afterSeq, like) as Array<{ seq: number; id: string; type: string; cluster: string | null }>,
    async close() {
      for (const p of processes) await p.kill('SIGTERM');
      store.close();
      for (const sim of Object.values(sims)) await sim.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const camel = (row: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(row).map(([k, v]) => [k.replace(/_(\w)/g, (_, c: string) => c.toUpperCase()), v]));

function spawnServe(env: Record<string, string>): ServeProcess {
  const child = spawn(process.execPath, [...CLI, 'serve'], {
    env: { PATH: process.env.PATH ?? '', ...env },
    cwd: process.cwd(),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const gone = (): boolean => child.exitCode !== null || child.signalCode !== null;
  return {
    child,
    log: () => stderr,
    async waitForLog(text, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (!stderr.includes(text)) {
        if (gone())
          throw new Error(`serve exited (${child.exitCode ?? child.signalCode}) before "${text}":\n${stderr}`);
        if (Date.now() > deadline) throw new Error(`serve did not log "${text}" within ${timeoutMs} ms:\n${stderr}`);
        await sleep(50);
      }
    },
    async kill(signal = 'SIGTERM') {
      if (gone()) return;
      child.kill(signal);
      await exited;
    },
  };
}

/** Polls until `probe` answers something truthy. */
export async function until<T>(what: string, probe: () => T | undefined | false, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
