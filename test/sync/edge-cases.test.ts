/**
 * The cases an independent review found: reads that are partial in quiet ways, the sweep while a
 * node is down, lock-only changes, the cluster log's per-node numbering, and two writers.
 */
import { createServer, type Server } from 'node:http';
import { Writable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { createHttpProxmoxClient } from '../../src/proxmox/http-client.js';
import type { ClusterLogEntry } from '../../src/proxmox/types.js';
import { Secret } from '../../src/secret.js';
import { openStore, type Store } from '../../src/store/db.js';
import { createClusterSync, DEFAULT_SYNC_SETTINGS, type ClusterSync, type CycleSummary } from '../../src/sync/cycle.js';
import { logSignals } from '../../src/sync/plan.js';
import { startScheduler } from '../../src/sync/scheduler.js';
import { startHarness, type SyncHarness } from './helpers.js';

const log = createLogger({ level: 'silent' });

describe('reads that are partial in quiet ways (hand-made responses)', () => {
  const guest = (vmid: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    id: `qemu/${vmid}`,
    type: 'qemu',
    vmid,
    node: 'pve1',
    status: 'running',
    name: `vm${vmid}`,
    maxmem: 2 ** 30,
    maxcpu: 1,
    maxdisk: 2 ** 33,
    ...extra,
  });
  const node = (name: string): Record<string, unknown> => ({
    id: `node/${name}`,
    type: 'node',
    node: name,
    status: 'online',
    maxcpu: 8,
    maxmem: 2 ** 34,
  });
  let resources: unknown[] = [];
  let server: Server;
  let store: Store;
  let sync: ClusterSync;
  const bodies = (path: string): unknown => {
    if (path === '/cluster/resources') return { data: resources };
    if (path === '/cluster/status')
      return { data: [{ type: 'cluster', id: 'cluster', name: 'q', nodes: 2, quorate: 1 }] };
    if (path === '/version') return { data: { version: '9.1.1', release: '9.1' } };
    if (/\/config$/.test(path)) return { data: { name: 'x', memory: '1024', digest: 'c'.repeat(40) } };
    return { data: [] };
  };
  const count = (sql: string): unknown => store.sqlite.prepare(sql).get();

  beforeAll(async () => {
    server = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(bodies(new URL(req.url!, 'http://x').pathname.replace('/api2/json', ''))));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const client = createHttpProxmoxClient({
      cluster: 'q',
      url: `http://127.0.0.1:${port}`,
      tokenId: 'a@pve!b',
      tokenSecret: new Secret('s'),
      tls: {},
      retries: 0,
    });
    store = openStore(join(mkdtempSync(join(tmpdir(), 'pi-edge-')), 'inventory.db'));
    sync = createClusterSync({
      store,
      client,
      cluster: 'q',
      settings: { ...DEFAULT_SYNC_SETTINGS, sweepEveryMs: 0 },
      log,
    });
    resources = [
      guest(100),
      guest(101),
      guest(102, { name: undefined, maxdisk: undefined }),
      node('pve1'),
      node('pve2'),
    ];
    expect((await sync.runCycle()).ok).toBe(true);
  });
  afterAll(async () => {
    store.close();
    await new Promise((r) => server.close(r));
  });

  it('a guest entry missing fields does not cause a config read every cycle', async () => {
    const cycle = await sync.runCycle();
    expect(cycle.configsFetched).toBe(0);
    expect(cycle.callsTotal).toBe(4);
  });

  it('a guest whose entry cannot be read is not missing: no tombstone however long it lasts', async () => {
    resources = [
      guest(100),
      guest(101, { node: undefined }),
      guest(102, { name: undefined, maxdisk: undefined }),
      node('pve1'),
      node('pve2'),
    ];
    for (let i = 0; i < 4; i++) expect((await sync.runCycle()).ok).toBe(true);
    expect(count('SELECT missing_count, deleted_at FROM guests WHERE vmid = 101')).toEqual({
      missing_count: 0,
      deleted_at: null,
    });
    expect(count("SELECT count(*) AS n FROM events WHERE type = 'guest.deleted'")).toEqual({ n: 0 });
  });

  it('an entry so broken its vmid is lost makes the whole read partial: nobody is counted missing', async () => {
    resources = [guest(100), { id: 'qemu/???', type: 'qemu' }, node('pve1'), node('pve2')];
    for (let i = 0; i < 3; i++) await sync.runCycle();
    expect(count("SELECT count(*) AS n FROM events WHERE type = 'guest.deleted'")).toEqual({ n: 0 });
    expect(count('SELECT max(missing_count) AS m FROM guests')).toEqual({ m: 0 });
  });

  it('a read listing no guest at all while a node is offline deletes nothing (the last guests really going is in partial-reads.test.ts)', async () => {
    resources = [node('pve1'), { ...node('pve2'), status: 'offline' }];
    for (let i = 0; i < 3; i++) await sync.runCycle();
    expect(count('SELECT count(*) AS n FROM guests WHERE deleted_at IS NOT NULL')).toEqual({ n: 0 });
    expect(count('SELECT count(*) AS n FROM guests WHERE stale = 0')).toEqual({ n: 0 });
    resources = [
      guest(100),
      guest(101),
      guest(102, { name: undefined, maxdisk: undefined }),
      node('pve1'),
      node('pve2'),
    ];
    expect((await sync.runCycle()).ok).toBe(true);
    expect(count('SELECT count(*) AS n FROM guests WHERE stale = 1 OR missing_count > 0')).toEqual({ n: 0 });
  });

  it('a node no longer listed is marked missing and stale, with one event', async () => {
    const before = (count('SELECT max(seq) AS s FROM events') as { s: number }).s;
    resources = [guest(100), guest(101), guest(102, { name: undefined, maxdisk: undefined }), node('pve1')];
    for (let i = 0; i < 3; i++) await sync.runCycle();
    expect(count("SELECT status, online, stale FROM nodes WHERE node = 'pve2'")).toEqual({
      status: 'missing',
      online: 0,
      stale: 1,
    });
    expect(store.sqlite.prepare('SELECT type, data FROM events WHERE seq > ?').all(before)).toEqual([
      { type: 'node.status_changed', data: '{"node":"pve2","from":"online","to":"missing"}' },
    ]);
  });
});

describe('the cluster log, numbered per node', () => {
  const line = (node: string, uid: number, msg: string, time = 2_000_000_000): ClusterLogEntry => ({
    uid,
    time,
    node,
    msg,
  });

  it('keeps a cursor per node, so a node with lower numbers is not ignored', () => {
    const first = logSignals([line('pve1', 5000, 'x'), line('pve2', 10, 'y')], undefined, undefined);
    expect(first).toEqual({ vmids: new Set(), cursors: { pve1: 5000, pve2: 10 }, gap: false });
    const next = logSignals(
      [line('pve1', 5000, 'x'), line('pve2', 10, 'y'), line('pve2', 11, 'update VM 101: -name a')],
      first.cursors,
      1_000,
    );
    expect(next.vmids).toEqual(new Set([101]));
    expect(next.cursors).toEqual({ pve1: 5000, pve2: 11 });
  });

  it('treats a node whose numbers went down as restarted: its lines since the last read are new', () => {
    const after = logSignals(
      [
        line('pve1', 3, 'update VM 104: -cores 2', 1_700_000_100),
        line('pve1', 2, 'update VM 105: -cores 2', 1_699_999_000),
      ],
      { pve1: 9_000 },
      1_700_000_000_000,
    );
    expect(after.vmids).toEqual(new Set([104]));
    expect(after.cursors).toEqual({ pve1: 3 });
    expect(after.gap).toBe(false);
  });

  it('reports a gap when lines between two reads were lost', () => {
    expect(logSignals([line('pve1', 700, 'a'), line('pve1', 701, 'b')], { pve1: 100 }, 0).gap).toBe(true);
    expect(logSignals([line('pve1', 101, 'a'), line('pve1', 102, 'b')], { pve1: 100 }, 0).gap).toBe(false);
  });
});

describe('against the simulator', () => {
  let h: SyncHarness;
  beforeAll(async () => {
    // A sweep batch every cycle, of 3 guests (30 guests × 1 ms / 10 ms).
    h = await startHarness({ guests: 30, nodes: 3, seed: 37, settings: { sweepEveryMs: 1, sweepPeriodMs: 10 } });
    await h.sync.runCycle();
  });
  afterAll(() => h.close());

  it('the sweep keeps reading configs while a node is offline, and finds a silent edit', async () => {
    h.sim.setNodeOnline('pve3', false);
    const target = [...h.sim.cluster.guests.values()].find(
      (g) => g.node !== 'pve3' && g.type === 'lxc' && !g.values.lock && g.values.template !== '1',
    )!;
    h.sim.updateGuest(target.vmid, { config: { description: 'edited by hand' }, silent: true });
    const before = h.lastSeq();
    let found = false;
    for (let i = 0; i < 12 && !found; i++) {
      const cycle = await h.sync.runCycle();
      expect(cycle.configsFetched).toBe(3);
      found = h.eventsSince(before).some((e) => e.type === 'guest.updated' && e.subject === `lab/${target.vmid}`);
    }
    expect(found).toBe(true);
    h.sim.setNodeOnline('pve3', true);
  });

  it('a lock that comes and goes is reported without reading the config', async () => {
    const harness = await startHarness({ guests: 20, nodes: 2, seed: 41 });
    try {
      await harness.sync.runCycle();
      const g = [...harness.sim.cluster.guests.values()].find((x) => !x.values.lock)!;
      harness.sim.updateGuest(g.vmid, { lock: 'backup', silent: true });
      const before = harness.lastSeq();
      harness.sim.resetCounters();
      const cycle = await harness.sync.runCycle();
      expect(cycle.configsFetched).toBe(0);
      expect(harness.sim.counters().total).toBe(4);
      expect(harness.eventsSince(before).map((e) => [e.type, e.data.changes])).toEqual([
        ['guest.updated', { lock: { from: null, to: 'backup' } }],
      ]);
    } finally {
      await harness.close();
    }
  });

  it('two writers on one store never apply the same change twice', async () => {
    const harness = await startHarness({ guests: 20, nodes: 2, seed: 43 });
    try {
      const other = createClusterSync({
        store: harness.store,
        client: harness.client,
        cluster: 'lab',
        settings: { ...DEFAULT_SYNC_SETTINGS, sweepEveryMs: 0 },
        log,
      });
      await harness.sync.runCycle();
      await other.runCycle(); // reads the state from the store, writes run 2
      const vmid = [...harness.sim.cluster.guests.keys()][0]!;
      harness.sim.updateGuest(vmid, { name: 'changed-once' });
      const refused = await harness.sync.runCycle(); // its kept state predates run 2
      expect(refused.ok).toBe(false);
      expect(refused.error).toMatch(/another process synced cluster lab meanwhile/);
      expect((await harness.sync.runCycle()).changes).toEqual({ 'guest.updated': 1 });
      expect((await other.runCycle()).ok).toBe(false);
      expect((await other.runCycle()).changes).toEqual({});
      expect(harness.eventsSince(0).filter((e) => e.type === 'guest.updated')).toHaveLength(1);
    } finally {
      await harness.close();
    }
  });

  it('a guest already missing keeps its last-seen time through a failed read; a revived one keeps its first-seen time', async () => {
    const harness = await startHarness({ guests: 20, nodes: 2, seed: 47, timeoutMs: 300 });
    try {
      await harness.sync.runCycle();
      const vmid = [...harness.sim.cluster.guests.keys()][3]!;
      const seen = (
        harness.store.sqlite.prepare('SELECT first_seen_at AS first FROM guests WHERE vmid = ?').get(vmid) as {
          first: number;
        }
      ).first;
      await harness.sync.runCycle();
      const lastSeen = (
        harness.store.sqlite.prepare("SELECT last_success_at AS t FROM clusters WHERE name = 'lab'").get() as {
          t: number;
        }
      ).t;
      const original = harness.sim.cluster.guests.get(vmid)!;
      harness.sim.deleteGuest(vmid, true); // no destroy task: only absence tells
      await harness.sync.runCycle(); // first miss
      harness.sim.setFaults({ hang: true });
      expect((await harness.sync.runCycle()).ok).toBe(false);
      harness.sim.setFaults({});
      expect(
        harness.store.sqlite.prepare('SELECT last_seen_at AS t, stale FROM guests WHERE vmid = ?').get(vmid),
      ).toEqual({ t: lastSeen, stale: 1 });
      await harness.sync.runCycle(); // second miss: tombstone
      expect(harness.eventsSince(0).find((e) => e.type === 'guest.deleted')!.data.lastSeenAt).toBe(
        new Date(lastSeen).toISOString(),
      );
      expect(harness.store.sqlite.prepare('SELECT count(*) AS n FROM guest_metrics WHERE vmid = ?').get(vmid)).toEqual({
        n: 0,
      }); // live metrics go with the tombstone
      harness.sim.cluster.addGuest(original); // the same guest, same config, comes back
      await harness.sync.runCycle();
      expect(
        harness.store.sqlite
          .prepare('SELECT first_seen_at AS first, deleted_at, incarnation FROM guests WHERE vmid = ?')
          .get(vmid),
      ).toEqual({ first: seen, deleted_at: null, incarnation: 1 });
    } finally {
      await harness.close();
    }
  });

  /** The cycles a 1-second schedule runs over 6.5 s: about 7 when each tick runs one. */
  async function scheduledCycles(harness: SyncHarness, logger: typeof log): Promise<CycleSummary[]> {
    const summaries: CycleSummary[] = [];
    const scheduler = startScheduler({
      syncs: [harness.sync],
      store: harness.store,
      intervalSeconds: 1,
      snapshots: { schedule: 'off', keep: 0, maxAgeDays: 0 },
      log: logger,
      onCycle: (s) => summaries.push(s),
    });
    await new Promise((r) => setTimeout(r, 6_500));
    await scheduler.stop();
    return summaries;
  }

  // A full disk before the first sync committed: every tick read every guest's config again
  // (10,000 GETs a minute at 10,000 guests) for as long as the disk stayed full.
  it('a first sync that fails after its config reads is retried less and less often, not every tick', async () => {
    const harness = await startHarness({ guests: 40, nodes: 2, seed: 59 });
    try {
      const { sqlite } = harness.store;
      sqlite.pragma(`max_page_count = ${sqlite.pragma('page_count', { simple: true }) as number}`);
      const warnings: string[] = [];
      const sink = new Writable({
        write(chunk: Buffer, _enc, done) {
          warnings.push(chunk.toString());
          done();
        },
      });
      const summaries = await scheduledCycles(harness, createLogger({ level: 'warn', destination: sink }));
      // A tick a second would have made about 7 attempts; waits of 2 s, then 4 s, leave 2 or 3.
      expect(summaries.length).toBeGreaterThanOrEqual(2);
      expect(summaries.length).toBeLessThanOrEqual(3);
      for (const s of summaries) expect(s).toMatchObject({ ok: false, neverSynced: true, configsFetched: 40 });
      expect(summaries[0]!.error).toMatch(/database or disk is full/);
      expect(warnings.join('')).toContain('the first sync failed after reading guest configs');
      const configReads = Object.entries(harness.sim.counters().byEndpoint)
        .filter(([endpoint]) => endpoint.endsWith('/config'))
        .reduce((n, [, count]) => n + count, 0);
      expect(configReads).toBe(40 * summaries.length);
    } finally {
      await harness.close();
    }
  }, 30_000);

  it('so is one whose deadline cuts its config reads short', async () => {
    const harness = await startHarness({
      guests: 40,
      nodes: 2,
      seed: 61,
      lxcRatio: 0,
      settings: { cycleTimeoutMs: 600, configConcurrency: 4 },
    });
    try {
      // 40 reads, 4 at a time, 200 ms each: about 2 s, past the 600 ms deadline.
      harness.sim.setFaults({ latencyMs: 200, endpoint: 'GET /nodes/{node}/qemu/{vmid}/config' });
      const summaries = await scheduledCycles(harness, log);
      expect(summaries.length).toBeGreaterThanOrEqual(2);
      expect(summaries.length).toBeLessThanOrEqual(3);
      for (const s of summaries) expect(s).toMatchObject({ ok: false, neverSynced: true });
      expect(summaries[0]!.configsFetched).toBeGreaterThan(0);
      expect(summaries[0]!.error).toMatch(/deadline|took longer/);
    } finally {
      harness.sim.setFaults({});
      await harness.close();
    }
  }, 30_000);

  it('stopping the scheduler during a hung read returns at once, without a failure recorded', async () => {
    const harness = await startHarness({ guests: 10, nodes: 1, seed: 53, timeoutMs: 10_000 });
    try {
      harness.sim.setFaults({ hang: true });
      const summaries: Array<{ aborted?: boolean }> = [];
      const scheduler = startScheduler({
        syncs: [harness.sync],
        store: harness.store,
        intervalSeconds: 60,
        snapshots: { schedule: 'off', keep: 0, maxAgeDays: 0 },
        log,
        onCycle: (s) => summaries.push(s),
      });
      // Stop once the cycle is waiting on the hung cluster (timeout 10 s): returning well before
      // the timeout shows stop() abandons the read instead of waiting it out.
      for (const deadline = Date.now() + 10_000; harness.sim.counters().total === 0 && Date.now() < deadline;)
        await new Promise((r) => setTimeout(r, 10));
      const started = Date.now();
      await scheduler.stop();
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(summaries).toEqual([expect.objectContaining({ aborted: true })]);
      expect(harness.store.sqlite.prepare('SELECT count(*) AS n FROM sync_runs').get()).toEqual({ n: 0 });
    } finally {
      harness.sim.setFaults({});
      await harness.close();
    }
  });
});
