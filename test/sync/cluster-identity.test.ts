/**
 * A different cluster behind the same URL is refused, never diffed: restarting the simulator as
 * another cluster at the same address produces no guest event, one cluster.identity_changed,
 * a flagged cluster in sync_status; `cluster reset` (resetCluster) accepts the new one with one
 * cluster.reset event, and the next cycle is a first sync of it. Members joining or leaving one
 * at a time are the same cluster.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { createHttpProxmoxClient } from '../../src/proxmox/http-client.js';
import type { ProxmoxClient } from '../../src/proxmox/client.js';
import { Secret } from '../../src/secret.js';
import { startSimulator, type Simulator } from '../../src/sim/server.js';
import { openStore, type Store } from '../../src/store/db.js';
import { syncStatus } from '../../src/store/queries.js';
import { resetCluster } from '../../src/store/sync-state.js';
import { createClusterSync, DEFAULT_SYNC_SETTINGS, type ClusterSync } from '../../src/sync/cycle.js';
import { identityOf, sameCluster } from '../../src/sync/identity.js';

const SECRETS = { full: 'full-secret-for-identity-test', auditor: 'auditor-secret-for-identity-test' };
let sim: Simulator | undefined;
let client: ProxmoxClient;
let store: Store;
let sync: ClusterSync;

afterEach(async () => {
  await client?.close();
  await sim?.close();
  store?.close();
});

async function start(clusterName: string, seed: number, port = 0): Promise<void> {
  sim = await startSimulator({
    tls: false,
    guests: 40,
    nodes: 3,
    seed,
    clusterName,
    port,
    taskDelayMs: 5,
    tokenSecrets: SECRETS,
  });
}

/** A store and a sync of cluster `lab` reading the simulator's URL (retries: the restart closes kept-alive sockets). */
function syncFromSimulator(): void {
  client = createHttpProxmoxClient({
    cluster: 'lab',
    url: sim!.url,
    tokenId: sim!.tokens.full.id,
    tokenSecret: new Secret(SECRETS.full),
    tls: {},
    retries: 2,
    retryBaseMs: 10,
  });
  store = openStore(join(mkdtempSync(join(tmpdir(), 'pi-ident-')), 'inventory.db'));
  sync = createClusterSync({
    store,
    client,
    cluster: 'lab',
    settings: { ...DEFAULT_SYNC_SETTINGS, sweepEveryMs: 0 },
    log: createLogger({ level: 'silent' }),
  });
}

/** Syncs cluster "alpha", then restarts the simulator as cluster "beta" at the same port; returns the port. */
async function syncAlphaThenAnswerAsBeta(): Promise<number> {
  await start('alpha', 1);
  const port = Number(new URL(sim!.url).port);
  syncFromSimulator();
  expect((await sync.runCycle()).ok).toBe(true);
  await sim!.close();
  await start('beta', 2, port);
  return port;
}

const events = (type?: string): string[] =>
  (store.sqlite.prepare('SELECT type FROM events ORDER BY seq').pluck().all() as string[]).filter(
    (t) => !type || t === type,
  );

describe('a different cluster behind the same URL', () => {
  it('is refused: no guest event, one identity_changed, flagged until reset; reset starts over with one event', async () => {
    await start('alpha', 1);
    const port = Number(new URL(sim!.url).port);
    syncFromSimulator();
    expect((await sync.runCycle()).ok).toBe(true);
    const before = store.sqlite.prepare('SELECT max(seq) FROM events').pluck().get() as number;

    await sim!.close();
    await start('beta', 2, port);
    for (let i = 0; i < 3; i++) {
      const cycle = await sync.runCycle();
      expect(cycle.ok).toBe(false);
      expect(cycle.error).toMatch(
        /now answers as cluster "beta" \(pve1, pve2, pve3\), not cluster "alpha" \(pve1, pve2, pve3\).*proxmox-inventory cluster reset lab/,
      );
    }
    const after = store.sqlite
      .prepare('SELECT type FROM events WHERE seq > ? ORDER BY seq')
      .pluck()
      .all(before) as string[];
    expect(after).toEqual(['cluster.identity_changed']);
    expect(
      store.sqlite.prepare("SELECT count(*) FROM guests WHERE name LIKE '%' AND deleted_at IS NULL").pluck().get(),
    ).toBe(40); // alpha's, kept
    const status = syncStatus(store).clusters[0]!;
    expect(status).toMatchObject({
      stale: true,
      identityChanged: { expected: 'cluster "alpha" (pve1, pve2, pve3)', seen: 'cluster "beta" (pve1, pve2, pve3)' },
    });

    expect(resetCluster(store, 'lab', Date.now())).toEqual({ guestsTombstoned: 40, nodesRemoved: 3 });
    expect(events('cluster.reset')).toHaveLength(1);
    const first = await sync.runCycle(); // the kept state predates the reset: this cycle notices and reloads
    const next = first.ok ? first : await sync.runCycle();
    expect(next).toMatchObject({ ok: true, guests: 40, configsFetched: 40 });
    expect(syncStatus(store).clusters[0]).toMatchObject({ stale: false, identityChanged: null, clusterName: 'beta' });
    const fromReset = store.sqlite
      .prepare(
        "SELECT type, count(*) AS n FROM events WHERE seq > (SELECT seq FROM events WHERE type = 'cluster.reset') GROUP BY type",
      )
      .all();
    // The new cluster's first read is an import: a summary, and its guests' events marked initial.
    expect(fromReset).toEqual([
      { type: 'cluster.imported', n: 1 },
      { type: 'guest.created', n: 40 },
    ]);
    expect(events('guest.migrated')).toEqual([]);
  });

  it('the old cluster answering again clears the flag, with nothing lost', async () => {
    const port = await syncAlphaThenAnswerAsBeta();
    expect((await sync.runCycle()).ok).toBe(false);
    await sim!.close();
    await start('alpha', 1, port);
    const back = await sync.runCycle();
    expect(back.ok).toBe(true);
    expect(back.changes).toEqual({ 'cluster.sync_recovered': 1 });
    expect(syncStatus(store).clusters[0]!.identityChanged).toBeNull();
  });
});

describe('sameCluster', () => {
  const id = (
    clusterName: string | null,
    nodes: Record<string, number | null>,
  ): { clusterName: string | null; nodes: Record<string, number | null> } => ({ clusterName, nodes });
  it('members joining and leaving one at a time, and a standalone node becoming a cluster, are the same cluster', () => {
    expect(sameCluster(id('prod', { pve1: 1, pve2: 2 }), id('prod', { pve1: 1, pve2: 2, pve3: 3 }))).toBe(true);
    expect(sameCluster(id('prod', { pve1: 1, pve2: 2 }), id('prod', { pve2: 2, pve4: 4 }))).toBe(true);
    expect(sameCluster(id(null, { solo: null }), id('home', { solo: 1, other: 2 }))).toBe(true);
  });
  it('a standalone node (nodeid 0) that forms a cluster (nodeid 1) is the same, read as Proxmox reports both', () => {
    const standalone = identityOf({ nodes: [{ name: 'pve', nodeid: 0, online: true, local: true }] }, []);
    const clustered = identityOf(
      {
        cluster: { name: 'home', quorate: true },
        nodes: [
          { name: 'pve', nodeid: 1, online: true, local: true },
          { name: 'pve2', nodeid: 2, online: true, local: false },
        ],
      },
      [],
    );
    expect(sameCluster(standalone, clustered)).toBe(true);
  });

  it('another name, or no member in common, is another cluster', () => {
    expect(sameCluster(id('prod', { pve1: 1 }), id('lab', { pve1: 1 }))).toBe(false);
    expect(sameCluster(id('prod', { pve1: 1, pve2: 2 }), id('prod', { hv1: 1, hv2: 2 }))).toBe(false);
    expect(sameCluster(id('prod', { pve1: 1, pve2: 2 }), id('prod', { pve1: 2, pve2: 1 }))).toBe(false); // same names, other corosync ids
    expect(sameCluster(id(null, { solo: null }), id(null, { other: null }))).toBe(false);
  });
});

describe('where an operator sees it', () => {
  it('sync_status and the overview say ANOTHER CLUSTER with both identities and the command', async () => {
    const { createMcpServer } = await import('../../src/mcp/server.js');
    const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
    const { InMemoryTransport } = await import('@modelcontextprotocol/sdk/inMemory.js');
    await syncAlphaThenAnswerAsBeta();
    await sync.runCycle();
    const server = createMcpServer({
      store,
      now: Date.now,
      staleAfterMs: Infinity,
      log: createLogger({ level: 'silent' }),
      version: 'test',
    });
    const [a, b] = InMemoryTransport.createLinkedPair();
    await server.connect(a);
    const mcp = new Client({ name: 't', version: '1' });
    await mcp.connect(b);
    const answer = await mcp.callTool({ name: 'sync_status', arguments: {} });
    const text = (answer.content as Array<{ text: string }>)[0]!.text;
    expect(text).toMatch(/^lab\s+OTHER CLUSTER/m);
    expect(text).toContain('- lab: ANOTHER CLUSTER answers at its URL since ');
    expect(text).toContain('cluster "beta" (pve1, pve2, pve3), not cluster "alpha" (pve1, pve2, pve3)');
    expect(text).toContain('`proxmox-inventory cluster reset lab`');
    const overview = await mcp.callTool({ name: 'inventory_overview', arguments: {} });
    const overviewText = (overview.content as Array<{ text: string }>)[0]!.text;
    expect(overviewText).toContain(
      'cluster lab: ANOTHER CLUSTER answers at its URL (cluster "beta" (pve1, pve2, pve3), not cluster "alpha" (pve1, pve2, pve3))',
    );
    expect(overviewText).not.toMatch(/sync of lab failing/);
    await mcp.close();
  });

  it('/readyz of a serving daemon fails naming both identities, until the old cluster answers again', async () => {
    const { startServing } = await import('../../src/main.js');
    const { loadConfig } = await import('../../src/config.js');
    await start('alpha', 1);
    const port = Number(new URL(sim!.url).port);
    const config = loadConfig({
      env: {
        PVE_URL: sim!.url,
        PVE_TOKEN_ID: sim!.tokens.full.id,
        PVE_TOKEN_SECRET: SECRETS.full,
        PVE_CLUSTER_NAME: 'lab',
        DATA_DIR: mkdtempSync(join(tmpdir(), 'pi-ident-serve-')),
        SYNC_INTERVAL_SECONDS: '1',
        SNAPSHOT_SCHEDULE: 'off',
        MCP_HTTP_PORT: '0',
        LOG_LEVEL: 'fatal',
      },
    });
    const serving = await startServing(config, { log: createLogger({ level: 'silent' }) });
    const readyz = async (): Promise<{ status: number; body: { clusters: Array<Record<string, unknown>> } }> => {
      const res = await fetch(serving.mcpUrl!.replace(/mcp$/, 'readyz'));
      return { status: res.status, body: (await res.json()) as { clusters: Array<Record<string, unknown>> } };
    };
    const until = async (
      want: (r: Awaited<ReturnType<typeof readyz>>) => boolean,
    ): Promise<Awaited<ReturnType<typeof readyz>>> => {
      let last = await readyz();
      for (const deadline = Date.now() + 20_000; !want(last) && Date.now() < deadline;) {
        await new Promise((r) => setTimeout(r, 100));
        last = await readyz();
      }
      return last;
    };
    try {
      expect((await until((r) => r.status === 200)).status).toBe(200);
      await sim!.close();
      await start('beta', 2, port);
      const refused = await until((r) => r.body.clusters[0]?.identityChanged !== undefined);
      expect(refused.status).toBe(503);
      expect(refused.body.clusters[0]).toMatchObject({
        ready: false,
        identityChanged: { expected: 'cluster "alpha" (pve1, pve2, pve3)', seen: 'cluster "beta" (pve1, pve2, pve3)' },
      });
      await sim!.close();
      await start('alpha', 1, port);
      expect((await until((r) => r.status === 200)).body.clusters[0]!.identityChanged).toBeUndefined();
    } finally {
      await serving.close();
    }
  }, 60_000);
});
