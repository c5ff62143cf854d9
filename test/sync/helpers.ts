/** A simulator, the real client over HTTP, a real SQLite file and a cluster sync, for sync tests. */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, type Logger } from '../../src/log.js';
import { createHttpProxmoxClient } from '../../src/proxmox/http-client.js';
import type { ProxmoxClient } from '../../src/proxmox/client.js';
import { Secret } from '../../src/secret.js';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/sim/server.js';
import { openStore, type Store } from '../../src/store/db.js';
import { createClusterSync, DEFAULT_SYNC_SETTINGS, type ClusterSync, type SyncSettings } from '../../src/sync/cycle.js';

export interface SyncHarness {
  sim: Simulator;
  client: ProxmoxClient;
  store: Store;
  sync: ClusterSync;
  dbPath: string;
  log: Logger;
  /** Events written after `seq`, as [type, subject id] pairs, oldest first. */
  eventsSince(seq: number): Array<{ seq: number; type: string; subject: string; data: Record<string, unknown> }>;
  lastSeq(): number;
  close(): Promise<void>;
}

export async function startHarness(
  options: SimulatorOptions & { settings?: Partial<SyncSettings>; timeoutMs?: number } = {},
): Promise<SyncHarness> {
  const sim = await startSimulator({ tls: false, taskDelayMs: 5, ...options });
  const client = createHttpProxmoxClient({
    cluster: 'lab',
    url: sim.url,
    tokenId: sim.tokens.full.id,
    tokenSecret: new Secret(sim.tokens.full.secret),
    tls: {},
    retries: 0,
    timeoutMs: options.timeoutMs ?? 3_000,
  });
  const dbPath = join(mkdtempSync(join(tmpdir(), 'pi-sync-')), 'inventory.db');
  const store = openStore(dbPath);
  const log = createLogger({ level: 'silent' });
  const sync = createClusterSync({
    store,
    client,
    cluster: 'lab',
    settings: { ...DEFAULT_SYNC_SETTINGS, sweepEveryMs: 0, ...options.settings },
    log,
  });
  return {
    sim,
    client,
    store,
    sync,
    dbPath,
    log,
    eventsSince: (seq) =>
      (
        store.sqlite
          .prepare('SELECT seq, type, subject_id AS subject, data FROM events WHERE seq > ? ORDER BY seq')
          .all(seq) as Array<{ seq: number; type: string; subject: string; data: string }>
      ).map((e) => ({ ...e, data: JSON.parse(e.data) as Record<string, unknown> })),
    lastSeq: () => (store.sqlite.prepare('SELECT coalesce(max(seq), 0) AS s FROM events').get() as { s: number }).s,
    close: async () => {
      await client.close();
      await sim.close();
      store.close();
    },
  };
}

/** Stops a child process as a supervisor would: SIGTERM, then SIGKILL if it has not exited within 10 s. */
export async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
