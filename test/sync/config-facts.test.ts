/**
 * The config read models (guest_disks, guest_nics, guest_addresses, guest_facets and its counts) match the guest
 * rows after every cycle of churn: config edits of disks, NICs, addresses, protection and
 * snapshots, tags, power and moves, an offline node, a failed read, tombstones and a guest coming
 * back, a cluster reset, and a restart that reloads the state from the store. Expected rows come
 * from SQL of the test's own over the guest rows' JSON, not from the code under test.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resetCluster } from '../../src/store/sync-state.js';
import { createClusterSync, DEFAULT_SYNC_SETTINGS, type ClusterSync } from '../../src/sync/cycle.js';
import { startHarness, type SyncHarness } from './helpers.js';

type Row = Record<string, unknown>;

function rows(h: SyncHarness, sql: string): Row[] {
  return h.store.sqlite.prepare(sql).all() as Row[];
}

const expectedDisks = (h: SyncHarness): Row[] =>
  rows(
    h,
    `SELECT g.cluster, g.vmid, json_extract(d.value, '$.key') AS key, json_extract(d.value, '$.storage') AS storage,
      json_extract(d.value, '$.volume') AS volume, json_extract(d.value, '$.sizeBytes') AS size, json_extract(d.value, '$.media') AS media
    FROM guests g, json_each(g.disks) d WHERE g.deleted_at IS NULL ORDER BY 1, 2, 3`,
  );
const storedDisks = (h: SyncHarness): Row[] =>
  rows(h, 'SELECT cluster, vmid, key, storage, volume, size_bytes AS size, media FROM guest_disks ORDER BY 1, 2, 3');

const expectedNics = (h: SyncHarness): Row[] =>
  rows(
    h,
    `SELECT g.cluster, g.vmid, json_extract(n.value, '$.key') AS key, json_extract(n.value, '$.bridge') AS bridge,
      json_extract(n.value, '$.vlan') AS vlan, json_extract(n.value, '$.mac') AS mac, json_extract(n.value, '$.model') AS model,
      json_extract(n.value, '$.firewall') AS firewall
    FROM guests g, json_each(g.nics) n WHERE g.deleted_at IS NULL ORDER BY 1, 2, 3`,
  );
const storedNics = (h: SyncHarness): Row[] =>
  rows(h, 'SELECT cluster, vmid, key, bridge, vlan, mac, model, firewall FROM guest_nics ORDER BY 1, 2, 3');

/** Each configured address, put back together as configured (address/length), with its NIC's MAC. */
const expectedAddresses = (h: SyncHarness): Row[] =>
  rows(
    h,
    `SELECT g.cluster, g.vmid, json_extract(n.value, '$.key') AS nic, lower(a.value) AS cidr, json_extract(n.value, '$.mac') AS mac
    FROM guests g, json_each(g.nics) n, json_each(json_array(json_extract(n.value, '$.ip'), json_extract(n.value, '$.ip6'))) a
    WHERE g.deleted_at IS NULL AND a.value IS NOT NULL ORDER BY 1, 2, 3, 4`,
  );
const storedAddresses = (h: SyncHarness): Row[] =>
  rows(
    h,
    `SELECT cluster, vmid, nic, address || coalesce('/' || prefix_length, '') AS cidr, mac FROM guest_addresses
    WHERE family = CASE WHEN address LIKE '%:%' THEN 6 ELSE 4 END ORDER BY 1, 2, 3, 4`,
  );

/** Facet values per guest: one row per value, a null row where a guest has none. */
const expectedFacets = (h: SyncHarness): Row[] =>
  rows(
    h,
    `WITH live AS (SELECT * FROM guests WHERE deleted_at IS NULL),
    listed AS (
      SELECT DISTINCT cluster, vmid, 'tag' AS facet, lower(j.value) AS value, NULL AS bytes FROM live, json_each(tags) j
      UNION ALL
      SELECT cluster, vmid, 'storage', json_extract(j.value, '$.storage'),
        sum(CASE WHEN json_extract(j.value, '$.media') = 'cdrom' THEN NULL ELSE json_extract(j.value, '$.sizeBytes') END)
      FROM live, json_each(live.disks) j WHERE json_extract(j.value, '$.storage') IS NOT NULL GROUP BY 1, 2, 3, 4
      UNION ALL
      SELECT DISTINCT cluster, vmid, 'bridge', json_extract(j.value, '$.bridge'), NULL FROM live, json_each(live.nics) j
      WHERE json_extract(j.value, '$.bridge') IS NOT NULL
      UNION ALL
      SELECT DISTINCT cluster, vmid, 'vlan', CAST(json_extract(j.value, '$.vlan') AS TEXT), NULL FROM live, json_each(live.nics) j
      WHERE json_extract(j.value, '$.vlan') IS NOT NULL
    )
    SELECT facet, value, cluster, vmid, bytes FROM (
      SELECT 'node' AS facet, node AS value, cluster, vmid, NULL AS bytes FROM live
      UNION ALL SELECT 'type', type, cluster, vmid, NULL FROM live
      UNION ALL SELECT 'status', CASE WHEN stale = 1 THEN 'unknown' ELSE status END, cluster, vmid, NULL FROM live
      UNION ALL SELECT 'pool', pool, cluster, vmid, NULL FROM live
      UNION ALL SELECT 'ostype', ostype, cluster, vmid, NULL FROM live
      UNION ALL SELECT 'template', CASE WHEN template = 1 THEN '1' ELSE '0' END, cluster, vmid, NULL FROM live
      UNION ALL SELECT facet, value, cluster, vmid, bytes FROM listed
      UNION ALL SELECT f.facet, NULL, l.cluster, l.vmid, NULL FROM live l, (SELECT 'tag' AS facet UNION ALL SELECT 'storage'
        UNION ALL SELECT 'bridge' UNION ALL SELECT 'vlan') f
      WHERE NOT EXISTS (SELECT 1 FROM listed x WHERE x.cluster = l.cluster AND x.vmid = l.vmid AND x.facet = f.facet)
    ) ORDER BY 1, 2, 3, 4`,
  );
const storedFacets = (h: SyncHarness): Row[] =>
  rows(h, 'SELECT facet, value, cluster, vmid, bytes FROM guest_facets ORDER BY 1, 2, 3, 4');

/** Facet rows whose filter columns differ from their guest row's. */
const facetColumnsOff = (h: SyncHarness): number =>
  h.store.sqlite
    .prepare(
      `SELECT count(*) FROM guest_facets f JOIN guests g ON g.cluster = f.cluster AND g.vmid = f.vmid
      WHERE g.deleted_at IS NOT NULL OR f.node IS NOT g.node OR f.type IS NOT g.type OR f.status IS NOT g.status
        OR f.stale IS NOT g.stale OR f.template IS NOT g.template OR f.pool IS NOT g.pool OR f.ostype IS NOT g.ostype
        OR f.onboot IS NOT g.onboot OR f.protection IS NOT g.protection OR f.agent IS NOT g.agent
        OR f.snapshots IS NOT (g.snapshot_parent IS NOT NULL)`,
    )
    .pluck()
    .get() as number;

function expectReadModels(h: SyncHarness): void {
  expect(storedDisks(h)).toEqual(expectedDisks(h));
  expect(storedNics(h)).toEqual(expectedNics(h));
  expect(storedAddresses(h)).toEqual(expectedAddresses(h));
  expect(rows(h, 'SELECT count(*) AS n FROM guest_addresses')).toEqual([{ n: expectedAddresses(h).length }]);
  expect(storedFacets(h)).toEqual(expectedFacets(h));
  expect(facetColumnsOff(h)).toBe(0);
  expect(
    rows(h, 'SELECT cluster, facet, value, status, guests, bytes FROM guest_facet_counts ORDER BY 1, 2, 3, 4'),
  ).toEqual(
    rows(
      h,
      `SELECT g.cluster, f.facet, coalesce(f.value, '') AS value, CASE WHEN g.stale = 1 THEN 'unknown' ELSE g.status END AS status,
        count(*) AS guests, coalesce(sum(f.bytes), 0) AS bytes
      FROM guest_facets f JOIN guests g ON g.cluster = f.cluster AND g.vmid = f.vmid GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`,
    ),
  );
}

describe('config read models written by the sync', () => {
  let h: SyncHarness;
  beforeAll(async () => {
    h = await startHarness({ guests: 200, nodes: 4, seed: 23 });
    expect((await h.sync.runCycle()).ok).toBe(true);
  });
  afterAll(() => h.close());

  it('match the guest rows after every cycle of churn', async () => {
    let rng = 11;
    const next = (n: number): number => (rng = (rng * 1103515245 + 12345) % 2 ** 31) % n;
    const qemu = (): number[] =>
      [...h.sim.cluster.guests.values()]
        .filter((g) => g.type === 'qemu' && g.values.template !== '1' && !g.values.lock)
        .map((g) => g.vmid);
    const some = (n: number): number[] => Array.from({ length: n }, () => qemu()[next(qemu().length)]!);
    const node = (vmid: number): string => h.sim.cluster.guests.get(vmid)!.node;
    let sync: ClusterSync = h.sync;
    let gone: number[] = [];
    const checks: Array<() => void | Promise<void>> = [
      () => {
        // A second disk on the other storage, a resize, a CD-ROM with an ISO, an unused volume.
        const [a, b, c, d] = some(4) as [number, number, number, number];
        h.sim.updateGuest(a, { config: { scsi1: `ceph-vm:vm-${a}-disk-1,size=20G` } });
        h.sim.updateGuest(b, { config: { scsi0: `local-lvm:vm-${b}-disk-0,iothread=1,size=200G` } });
        h.sim.updateGuest(c, { config: { ide2: 'local:iso/debian-12.iso,media=cdrom,size=600M' } });
        h.sim.updateGuest(d, { config: { unused0: `ceph-vm:vm-${d}-disk-9` } });
      },
      () => {
        // NICs: a VLAN tag, a second bridge, one NIC removed, a static IPv4 and IPv6 address.
        const [a, b, c, d] = some(4) as [number, number, number, number];
        h.sim.updateGuest(a, { config: { net0: 'virtio=BC:24:11:00:00:0A,bridge=vmbr0,tag=77' } });
        h.sim.updateGuest(b, { config: { net1: 'e1000=BC:24:11:00:00:0B,bridge=vmbr9,tag=5,firewall=1' } });
        h.sim.updateGuest(c, { config: { net1: null } });
        h.sim.updateGuest(d, { config: { ipconfig0: 'ip=192.0.2.77/26,gw=192.0.2.65,ip6=2001:DB8::77/64' } });
      },
      () => {
        const [a, b] = some(2) as [number, number];
        h.sim.updateGuest(a, { config: { protection: '1' } });
        h.sim.updateGuest(b, { config: { protection: '1', onboot: '0', agent: '0' } });
      },
      async () => {
        const vmid = some(1)[0]!;
        const upid = (await h.client.post(`/nodes/${node(vmid)}/qemu/${vmid}/snapshot`, { snapname: 'pre' })) as string;
        await h.client.waitForTask(upid, { timeoutMs: 5_000 });
      },
      () => {
        for (const vmid of some(6)) h.sim.updateGuest(vmid, { tags: next(2) ? ['Blue', 'blue', 'green'] : [] });
      },
      () => {
        for (const vmid of some(8)) h.sim.updateGuest(vmid, { status: next(2) ? 'running' : 'stopped' });
        for (const vmid of some(4))
          h.sim.updateGuest(vmid, { node: `pve${next(4) + 1}`, pool: next(2) ? 'dev' : null });
      },
      () => h.sim.setNodeOnline('pve3', false),
      () => h.sim.setNodeOnline('pve3', true),
      () => {
        gone = some(3);
        for (const vmid of gone) h.sim.deleteGuest(vmid);
      },
      () => undefined, // the second complete read without them tombstones them
      () => {
        for (const vmid of gone) h.sim.createGuest({ vmid, tags: ['back'], status: 'running', storage: 'ceph-vm' });
      },
      () => {
        sync = createClusterSync({
          store: h.store,
          client: h.client,
          cluster: 'lab',
          settings: { ...DEFAULT_SYNC_SETTINGS, sweepEveryMs: 0 },
          log: h.log,
        });
      },
    ];
    for (const change of checks) {
      await change();
      expect((await sync.runCycle()).ok).toBe(true);
      expectReadModels(h);
    }
    // The churn did what it says.
    expect(rows(h, "SELECT count(*) AS n FROM guest_facets WHERE facet = 'vlan' AND value = '77'")).toEqual([{ n: 1 }]);
    expect(rows(h, "SELECT count(*) AS n FROM guest_disks WHERE media = 'cdrom' AND storage = 'local'")).toEqual([
      { n: 1 },
    ]);
    expect(rows(h, "SELECT family, count(*) AS n FROM guest_addresses WHERE address LIKE '%db8::77'")).toEqual([
      { family: 6, n: 1 },
    ]);
    expect(rows(h, 'SELECT count(*) AS n FROM guests WHERE protection = 1')).toEqual([{ n: 2 }]);
    expect(rows(h, 'SELECT count(*) AS n FROM guests WHERE snapshot_parent IS NOT NULL')[0]!.n).toBeGreaterThan(0);
    for (const vmid of gone)
      expect(rows(h, `SELECT count(*) AS n FROM guest_facets WHERE vmid = ${vmid} AND facet = 'tag'`)).toEqual([
        { n: 1 },
      ]);
  }, 60_000);

  it('a failed read marks the facets stale as it does the guests; the next read clears them', async () => {
    h.sim.setFaults({ errorRate: 1, errorStatus: 503 });
    expect((await h.sync.runCycle()).ok).toBe(false);
    h.sim.setFaults({});
    expect(rows(h, 'SELECT DISTINCT stale FROM guest_facets')).toEqual([{ stale: 1 }]);
    expect(rows(h, "SELECT DISTINCT value FROM guest_facets WHERE facet = 'status'")).toEqual([{ value: 'unknown' }]);
    expectReadModels(h);
    // A node that went offline during the outage stays stale after it: its guests are not rewritten then.
    h.sim.setNodeOnline('pve2', false);
    expect((await h.sync.runCycle()).ok).toBe(true);
    expectReadModels(h);
    expect(rows(h, "SELECT DISTINCT stale, value FROM guest_facets WHERE facet = 'status' AND node = 'pve2'")).toEqual([
      { stale: 1, value: 'unknown' },
    ]);
    h.sim.setNodeOnline('pve2', true);
    expect((await h.sync.runCycle()).ok).toBe(true);
    expectReadModels(h);
    expect(rows(h, 'SELECT count(*) AS n FROM guest_facets WHERE stale = 1')).toEqual([{ n: 0 }]);
  });

  it('a cluster reset tombstones every guest and its rows go; the next sync writes them again', async () => {
    resetCluster(h.store, 'lab', Date.now());
    for (const table of ['guest_disks', 'guest_nics', 'guest_addresses', 'guest_facets'])
      expect(rows(h, `SELECT count(*) AS n FROM ${table}`)).toEqual([{ n: 0 }]);
    const sync = createClusterSync({
      store: h.store,
      client: h.client,
      cluster: 'lab',
      settings: { ...DEFAULT_SYNC_SETTINGS, sweepEveryMs: 0 },
      log: h.log,
    });
    expect((await sync.runCycle()).ok).toBe(true);
    expectReadModels(h);
    expect(rows(h, "SELECT count(*) AS n FROM guest_facets WHERE facet = 'type'")).toEqual([
      { n: h.sim.cluster.guests.size },
    ]);
  });
});
