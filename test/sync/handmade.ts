/**
 * A hand-made Proxmox VE peer for cases the simulator does not produce (odd or partial answers,
 * bodies that trickle in): a real HTTP server whose answers the test sets per path, the real
 * client, a real SQLite file and a cluster sync.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../src/log.js';
import type { ProxmoxClient } from '../../src/proxmox/client.js';
import { createHttpProxmoxClient } from '../../src/proxmox/http-client.js';
import { Secret } from '../../src/secret.js';
import { openStore, type Store } from '../../src/store/db.js';
import { createClusterSync, DEFAULT_SYNC_SETTINGS, type ClusterSync, type SyncSettings } from '../../src/sync/cycle.js';

export const guest = (vmid: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  id: `qemu/${vmid}`,
  type: 'qemu',
  vmid,
  node: 'pve1',
  status: 'running',
  name: `vm${vmid}`,
  maxmem: 2 ** 30,
  mem: 2 ** 29,
  maxcpu: 1,
  maxdisk: 2 ** 33,
  ...extra,
});
export const node = (name: string, status = 'online'): Record<string, unknown> => ({
  id: `node/${name}`,
  type: 'node',
  node: name,
  status,
  maxcpu: 8,
  maxmem: 2 ** 34,
});
export const clusterEntry = (quorate: number | undefined, nodes = 2): Record<string, unknown> => ({
  type: 'cluster',
  id: 'cluster',
  name: 'hand',
  nodes,
  version: 3,
  ...(quorate === undefined ? {} : { quorate }),
});
export const memberEntry = (name: string, nodeid: number): Record<string, unknown> => ({
  type: 'node',
  id: `node/${name}`,
  name,
  nodeid,
  online: 1,
  local: nodeid === 1 ? 1 : 0,
  ip: `192.0.2.${nodeid}`,
});

/** What the peer answers: `data` for /api2/json paths (a function gets the request), or a raw handler. */
export type Answer = unknown | ((req: IncomingMessage, res: ServerResponse) => void);

export interface Handmade {
  /** Answers by path without /api2/json; a path not listed answers `{ data: [] }`. */
  answers: Map<string, Answer>;
  resources: unknown[];
  status: unknown[];
  tasks: unknown[];
  /** Requests served, by path. */
  requests: Map<string, number>;
  client: ProxmoxClient;
  store: Store;
  sync: ClusterSync;
  count(sql: string, ...args: unknown[]): unknown;
  events(type?: string): Array<{ type: string; subject: string; data: Record<string, unknown> }>;
  newSync(settings: Partial<SyncSettings>): ClusterSync;
  close(): Promise<void>;
}

export async function startHandmade(
  options: { settings?: Partial<SyncSettings>; timeoutMs?: number } = {},
): Promise<Handmade> {
  const h = {
    answers: new Map<string, Answer>(),
    resources: [] as unknown[],
    status: [] as unknown[],
    tasks: [] as unknown[],
    requests: new Map<string, number>(),
  };
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url!, 'http://x').pathname.replace('/api2/json', '');
    h.requests.set(path, (h.requests.get(path) ?? 0) + 1);
    const answer =
      h.answers.get(path) ??
      (/\/config$/.test(path) ? { data: { name: 'x', memory: '1024', digest: 'c'.repeat(40) } } : undefined);
    if (typeof answer === 'function')
      return void (answer as (req: IncomingMessage, res: ServerResponse) => void)(req, res);
    let body: unknown = answer ?? { data: [] };
    if (answer === undefined && path === '/cluster/resources') body = { data: h.resources };
    if (answer === undefined && path === '/cluster/status') body = { data: h.status };
    if (answer === undefined && path === '/cluster/tasks') body = { data: h.tasks };
    if (answer === undefined && path === '/version') body = { data: { version: '9.1.1', release: '9.1' } };
    if (answer === undefined && path === '/access/permissions')
      body = { data: { '/': { 'Sys.Audit': 1, 'Sys.Syslog': 1, 'VM.Audit': 1 } } };
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const client = createHttpProxmoxClient({
    cluster: 'hand',
    url: `http://127.0.0.1:${port}`,
    tokenId: 'a@pve!b',
    tokenSecret: new Secret('s'),
    tls: {},
    retries: 0,
    timeoutMs: options.timeoutMs ?? 3_000,
  });
  const store = openStore(join(mkdtempSync(join(tmpdir(), 'pi-hand-')), 'inventory.db'));
  const log = createLogger({ level: 'silent' });
  const newSync = (settings: Partial<SyncSettings>): ClusterSync =>
    createClusterSync({
      store,
      client,
      cluster: 'hand',
      settings: { ...DEFAULT_SYNC_SETTINGS, sweepEveryMs: 0, ...settings },
      log,
    });
  return Object.assign(h, {
    client,
    store,
    sync: newSync(options.settings ?? {}),
    newSync,
    count: (sql: string, ...args: unknown[]) => store.sqlite.prepare(sql).get(...args),
    events: (type?: string) =>
      (
        store.sqlite.prepare('SELECT type, subject_id AS subject, data FROM events ORDER BY seq').all() as Array<{
          type: string;
          subject: string;
          data: string;
        }>
      )
        .filter((e) => type === undefined || e.type === type)
        .map((e) => ({ ...e, data: JSON.parse(e.data) as Record<string, unknown> })),
    close: async () => {
      await client.close();
      store.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  });
}
