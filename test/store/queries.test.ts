/**
 * The read queries against a real store filled by the sync from the simulator: every expectation
 * is computed here from what the simulator holds (or, for live metrics, from the raw rows), not
 * from the queries under test.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimGuest } from '../../src/sim/state.js';
import {
  aggregate,
  eventsSince,
  freshness,
  getGuest,
  getNode,
  listGuests,
  listNodes,
  listStorage,
  listTasks,
  QueryError,
  searchInventory,
  syncStatus,
  topGuests,
  type GuestSort,
  type GuestSummary,
  type ListGuestsOptions,
  type GuestFilter,
} from '../../src/store/queries.js';
import { createClusterSync, DEFAULT_SYNC_SETTINGS, type ClusterSync, type CycleSummary } from '../../src/sync/cycle.js';
import { startHarness, type SyncHarness } from '../sync/helpers.js';

const simTags = (g: SimGuest): string[] => (g.values.tags ? g.values.tags.split(';') : []);
const isTemplate = (g: SimGuest): boolean => g.values.template === '1';
const ref = (cluster: string, vmid: number): string => `${cluster}/${vmid}`;
const refs = (items: Array<{ cluster: string; vmid: number }>): string[] => items.map((i) => ref(i.cluster, i.vmid));
const sortedRefs = (items: Array<{ cluster: string; vmid: number }>): string[] => refs(items).sort();
const MAC = /([0-9A-F]{2}:){5}[0-9A-F]{2}/;
const iso = (ms: number): string => new Date(ms).toISOString();

/** Every page of a listing, following nextCursor. */
function allPages(
  h: SyncHarness,
  filter: GuestFilter,
  options: ListGuestsOptions,
): { items: GuestSummary[]; pages: number; totals: number[] } {
  const items: GuestSummary[] = [];
  const totals: number[] = [];
  let cursor = options.cursor;
  let pages = 0;
  do {
    const page = listGuests(h.store, filter, { ...options, cursor });
    items.push(...page.items);
    totals.push(page.total);
    cursor = page.nextCursor;
    pages++;
    expect(pages).toBeLessThan(100);
  } while (cursor);
  return { items, pages, totals };
}

function thrown(fn: () => unknown): QueryError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(QueryError);
    return err as QueryError;
  }
  throw new Error('expected a QueryError');
}

const lastSuccess = (h: SyncHarness, cluster = 'lab'): number =>
  (h.store.sqlite.prepare('SELECT last_success_at AS t FROM clusters WHERE name = ?').get(cluster) as { t: number }).t;

describe('queries over two synced clusters', () => {
  let h: SyncHarness;
  let e: SyncHarness;
  let edge: ClusterSync;
  let lastLab: CycleSummary;
  const sims = (): Array<{ cluster: string; g: SimGuest; sim: SyncHarness['sim'] }> => [
    ...[...h.sim.cluster.guests.values()].map((g) => ({ cluster: 'lab', g, sim: h.sim })),
    ...[...e.sim.cluster.guests.values()].map((g) => ({ cluster: 'edge', g, sim: e.sim })),
  ];
  const labGuests = (): SimGuest[] => [...h.sim.cluster.guests.values()];
  const metrics = (): Map<string, { cpu: number | null; mem: number | null; uptime: number | null }> =>
    new Map(
      (
        h.store.sqlite.prepare('SELECT cluster, vmid, cpu, mem, uptime FROM guest_metrics').all() as Array<{
          cluster: string;
          vmid: number;
          cpu: number | null;
          mem: number | null;
          uptime: number | null;
        }>
      ).map((m) => [ref(m.cluster, m.vmid), m]),
    );

  beforeAll(async () => {
    h = await startHarness({ guests: 300, nodes: 4, seed: 4 });
    e = await startHarness({ guests: 40, nodes: 2, seed: 9 });
    // The second cluster writes into the first harness's store, as a daemon with two clusters does.
    edge = createClusterSync({
      store: h.store,
      client: e.client,
      cluster: 'edge',
      settings: { ...DEFAULT_SYNC_SETTINGS, sweepEveryMs: 0 },
      log: h.log,
    });
    // Make sure some filters have something to find whatever the generator drew.
    const plain = labGuests().filter((g) => !isTemplate(g) && !g.values.lock && g.status === 'stopped');
    h.sim.updateGuest(plain[0]!.vmid, { lock: 'backup', silent: true });
    h.sim.updateGuest(plain[1]!.vmid, { lock: 'migrate', silent: true });
    expect((await h.sync.runCycle()).ok).toBe(true);
    lastLab = await h.sync.runCycle();
    expect(lastLab.ok).toBe(true);
    expect((await edge.runCycle()).ok).toBe(true);
  }, 30_000);
  afterAll(async () => {
    await h.close();
    await e.close();
  });

  describe('listGuests', () => {
    it('lists every live guest of both clusters, with values matching the simulator', () => {
      const page = listGuests(h.store, {}, { limit: 500 });
      expect(page.total).toBe(340);
      expect(page.nextCursor).toBeUndefined();
      expect(sortedRefs(page.items)).toEqual(
        sims()
          .map(({ cluster, g }) => ref(cluster, g.vmid))
          .sort(),
      );
      const m = metrics();
      const labSeen = iso(lastSuccess(h));
      for (const item of page.items.filter((i) => i.cluster === 'lab')) {
        const g = h.sim.cluster.guests.get(item.vmid)!;
        const c = h.sim.cluster;
        expect(item).toEqual({
          cluster: 'lab',
          vmid: g.vmid,
          type: g.type,
          node: g.node,
          name: c.name(g),
          status: g.status,
          template: isTemplate(g),
          tags: simTags(g),
          lock: g.values.lock ?? null,
          pool: g.pool ?? null,
          hastate: g.ha?.state ?? null,
          maxcpu: c.maxcpu(g),
          maxmem: c.maxmem(g),
          maxdisk: c.maxdisk(g),
          cpu: m.get(ref('lab', g.vmid))!.cpu,
          mem: m.get(ref('lab', g.vmid))!.mem,
          uptime: m.get(ref('lab', g.vmid))!.uptime,
          stale: false,
          lastKnownStatus: null,
          lastSeenAt: labSeen,
          cores: Number(g.values.cores),
          sockets: g.values.sockets ? Number(g.values.sockets) : null,
          memoryMib: Number(g.values.memory),
          ostype: g.values.ostype,
          deletedAt: null,
        });
      }
      expect(
        page.items.filter((i) => i.cluster === 'edge').every((i) => i.lastSeenAt === iso(lastSuccess(h, 'edge'))),
      ).toBe(true);
    });

    it.each(['prod', 'team-a', 'windows', 'PCI'])(
      'tag %s: exactly the guests whose config tags hold it (case-insensitive)',
      (tag) => {
        const expected = sims()
          .filter(({ g }) => simTags(g).includes(tag.toLowerCase()))
          .map(({ cluster, g }) => ref(cluster, g.vmid))
          .sort();
        expect(expected.length).toBeGreaterThan(0);
        const page = listGuests(h.store, { tag }, { limit: 500 });
        expect(sortedRefs(page.items)).toEqual(expected);
        expect(page.total).toBe(expected.length);
      },
    );

    it.each([
      ['web-*', /^web-/i],
      ['WEB-00?', /^web-00.$/i],
      ['*-01?', /-01.$/i],
      ['db', /db/i],
      ['TPL', /tpl/i],
      ['%', /%/],
      ['_', /_/],
    ])('namePattern %s: glob when it has * or ?, substring otherwise, case-insensitive', (pattern, re) => {
      const expected = sims()
        .filter(({ g, sim }) => re.test(sim.cluster.name(g)))
        .map(({ cluster, g }) => ref(cluster, g.vmid))
        .sort();
      const page = listGuests(h.store, { namePattern: pattern }, { limit: 500 });
      expect(sortedRefs(page.items)).toEqual(expected);
      if (!['%', '_'].includes(pattern)) expect(expected.length).toBeGreaterThan(0);
    });

    const labCases: Array<[string, GuestFilter, (g: SimGuest) => boolean]> = [
      [
        'type + status + node',
        { type: 'lxc', status: 'running', node: 'pve2' },
        (g) => g.type === 'lxc' && g.status === 'running' && g.node === 'pve2',
      ],
      ['templates', { template: true }, isTemplate],
      [
        'not templates, stopped',
        { template: false, status: 'stopped' },
        (g) => !isTemplate(g) && g.status === 'stopped',
      ],
      ['any lock', { lock: true }, (g) => g.values.lock !== undefined],
      ['no lock', { lock: false }, (g) => g.values.lock === undefined],
      ['lock backup', { lock: 'backup' }, (g) => g.values.lock === 'backup'],
      ['pool', { pool: 'infra' }, (g) => g.pool === 'infra'],
      [
        'memory range',
        { minMemoryBytes: 4 * 2 ** 30, maxMemoryBytes: 8 * 2 ** 30 },
        (g) => h.sim.cluster.maxmem(g) >= 4 * 2 ** 30 && h.sim.cluster.maxmem(g) <= 8 * 2 ** 30,
      ],
      [
        'cores range',
        { minCores: 4, maxCores: 8 },
        (g) => h.sim.cluster.maxcpu(g) >= 4 && h.sim.cluster.maxcpu(g) <= 8,
      ],
    ];
    it.each(labCases)('%s', (_name, filter, pred) => {
      const expected = labGuests()
        .filter(pred)
        .map((g) => ref('lab', g.vmid))
        .sort();
      expect(expected.length).toBeGreaterThan(0);
      const page = listGuests(h.store, { cluster: 'lab', ...filter }, { limit: 500 });
      expect(sortedRefs(page.items)).toEqual(expected);
      expect(page.total).toBe(expected.length);
    });

    it('a filter with no match: empty page, total 0', () => {
      expect(listGuests(h.store, { cluster: 'nowhere' })).toEqual({ items: [], total: 0, limit: 50 });
    });

    const sorts: Array<[GuestSort, 'asc' | 'desc']> = [
      ['vmid', 'asc'],
      ['vmid', 'desc'],
      ['name', 'asc'],
      ['name', 'desc'],
      ['node', 'asc'],
      ['status', 'desc'],
      ['maxmem', 'desc'],
      ['maxcpu', 'asc'],
      ['maxdisk', 'asc'],
      ['mem', 'desc'],
      ['cpu', 'asc'],
    ];
    it.each(sorts)('paging by %s %s with limit 37 visits every guest once, in order', (sort, order) => {
      const m = metrics();
      const keyOf = ({ cluster, g, sim }: ReturnType<typeof sims>[number]): number | string => {
        const c = sim.cluster;
        switch (sort) {
          case 'vmid':
            return g.vmid;
          case 'name':
            return c.name(g).toLowerCase();
          case 'node':
            return g.node;
          case 'status':
            return g.status;
          case 'maxmem':
            return c.maxmem(g);
          case 'maxcpu':
            return c.maxcpu(g);
          case 'maxdisk':
            return c.maxdisk(g);
          case 'mem':
            return m.get(ref(cluster, g.vmid))?.mem ?? -1;
          case 'cpu':
            return m.get(ref(cluster, g.vmid))?.cpu ?? -1;
        }
      };
      const sign = order === 'asc' ? 1 : -1;
      const expected = sims()
        .map((s) => ({ cluster: s.cluster, vmid: s.g.vmid, key: keyOf(s) }))
        .sort(
          (a, b) =>
            (a.key < b.key ? -sign : a.key > b.key ? sign : 0) ||
            (a.cluster < b.cluster ? -1 : a.cluster > b.cluster ? 1 : 0) ||
            a.vmid - b.vmid,
        );
      const { items, pages, totals } = allPages(h, {}, { sort, order, limit: 37 });
      expect(pages).toBe(Math.ceil(340 / 37));
      expect(totals.every((t) => t === 340)).toBe(true);
      expect(refs(items)).toEqual(refs(expected));
    });

    it('paging under a filter stays within it', () => {
      const expected = sims()
        .filter(({ g }) => simTags(g).includes('prod'))
        .map(({ cluster, g }) => ref(cluster, g.vmid))
        .sort();
      const { items } = allPages(h, { tag: 'prod' }, { sort: 'name', limit: 7 });
      expect(items.length).toBe(expected.length);
      expect(sortedRefs(items)).toEqual(expected);
    });

    it('a malformed cursor, or one from another sort, is a clear QueryError', () => {
      for (const cursor of [
        'not a cursor!',
        'bm9wZQ',
        'vmid:asc:1:lab',
        'vmid:asc:x:lab:1',
        'vmid:asc:1::1',
        'vmid:asc:1:lab:1.5',
        'vmid:up:1:lab:1',
        'vmid:asc:%E0%A4%A:lab:1',
        'vmid:asc:1:lab:1:2',
      ]) {
        const err = thrown(() => listGuests(h.store, {}, { cursor }));
        expect(err.code).toBe('bad_cursor');
        expect(err.message).toMatch(/malformed cursor/);
      }
      const byName = listGuests(h.store, {}, { sort: 'name', limit: 5 }).nextCursor!;
      const err = thrown(() => listGuests(h.store, {}, { sort: 'vmid', cursor: byName }));
      expect(err.code).toBe('bad_cursor');
      expect(err.message).toMatch(/sort=name order=asc/);
    });

    it('a limit above 500 is clamped and says so; below 1 is refused', () => {
      const page = listGuests(h.store, {}, { limit: 10_000 });
      expect(page).toMatchObject({ limit: 500, limitClamped: true, total: 340 });
      expect(page.items).toHaveLength(340);
      expect(listGuests(h.store, {}, { limit: 500 }).limitClamped).toBeUndefined();
      expect(listGuests(h.store).items).toHaveLength(50);
      expect(thrown(() => listGuests(h.store, {}, { limit: 0 })).message).toMatch(/limit/);
    });
  });

  describe('topGuests', () => {
    it('the guests using the most memory or cpu, most first, none that use nothing', () => {
      for (const metric of ['mem', 'cpu'] as const) {
        const expected = h.store.sqlite
          .prepare(
            `SELECT g.cluster, g.vmid, m.${metric} AS v FROM guest_metrics m JOIN guests g ON g.cluster = m.cluster AND g.vmid = m.vmid
          WHERE g.deleted_at IS NULL AND m.${metric} > 0 ORDER BY m.${metric} DESC, g.cluster, g.vmid LIMIT 5`,
          )
          .all();
        expect(topGuests(h.store, metric).map((g) => ({ cluster: g.cluster, vmid: g.vmid, v: g[metric] }))).toEqual(
          expected,
        );
        expect(
          topGuests(h.store, metric, { cluster: 'edge' }, 3).every((g) => g.cluster === 'edge' && (g[metric] ?? 0) > 0),
        ).toBe(true);
      }
      const stoppedOnes = topGuests(h.store, 'cpu', {}, 500).filter((g) => g.status === 'stopped');
      expect(stoppedOnes).toEqual([]);
    });
  });

  describe('getGuest', () => {
    const uniqueName = (): { g: SimGuest; name: string } => {
      const names = new Map<string, number>();
      for (const { g, sim } of sims())
        names.set(sim.cluster.name(g).toLowerCase(), (names.get(sim.cluster.name(g).toLowerCase()) ?? 0) + 1);
      const g = labGuests().find(
        (x) =>
          x.type === 'qemu' && names.get(h.sim.cluster.name(x).toLowerCase()) === 1 && h.sim.cluster.name(x).length > 7,
      )!;
      return { g, name: h.sim.cluster.name(g) };
    };

    it('by cluster and vmid: the full detail, parsed', () => {
      const g = labGuests().find((x) => x.type === 'qemu' && x.values.net1 && x.status === 'running')!;
      const found = getGuest(h.store, { cluster: 'lab', vmid: g.vmid });
      expect(found.kind).toBe('found');
      if (found.kind !== 'found') return;
      const d = found.guest;
      expect(d).toMatchObject({
        cluster: 'lab',
        vmid: g.vmid,
        name: h.sim.cluster.name(g),
        digest: h.sim.cluster.digest(g),
        description: g.values.description ?? null,
        configDirty: false,
      });
      expect(d.nics.map((n) => [n.key, n.mac])).toEqual([
        ['net0', MAC.exec(g.values.net0!)![0]],
        ['net1', MAC.exec(g.values.net1!)![0]],
      ]);
      const scsi0 = d.disks.find((x) => x.key === 'scsi0')!;
      expect(scsi0.storage).toBe(g.values.scsi0!.split(':')[0]);
      expect(scsi0.sizeBytes).toBe(h.sim.cluster.maxdisk(g));
      expect(d.config).toMatchObject({ name: g.values.name, cores: g.values.cores, smbios1: g.values.smbios1 });
      expect(d.metrics).toMatchObject({ mem: metrics().get(ref('lab', g.vmid))!.mem, updatedAt: expect.any(String) });
      expect(d.configFetchedAt).toMatch(/^\d{4}-\d{2}-\d{2}T/);
      expect(d.recentEvents.map((x) => [x.type, x.subject])).toEqual([
        ['guest.created', { kind: 'guest', id: ref('lab', g.vmid) }],
      ]);
      expect(d.recentTasks).toEqual([]);
    });

    it('a vmid in both clusters without a cluster is ambiguous; in one cluster only, it is found', () => {
      expect(getGuest(h.store, { vmid: 100 })).toEqual({
        kind: 'ambiguous',
        candidates: [
          expect.objectContaining({ cluster: 'edge', vmid: 100 }),
          expect.objectContaining({ cluster: 'lab', vmid: 100 }),
        ],
      });
      const found = getGuest(h.store, { vmid: 250 });
      expect(found.kind === 'found' && found.guest.cluster).toBe('lab');
    });

    it('a miss: the same vmid in another cluster first, then the nearest vmids', () => {
      const miss = getGuest(h.store, { cluster: 'edge', vmid: 250 });
      expect(miss.kind).toBe('not_found');
      if (miss.kind !== 'not_found') return;
      expect(miss.suggestions.map((s) => [s.reason, ref(s.cluster, s.vmid)])).toEqual([
        ['other_cluster', 'lab/250'],
        ['nearby_vmid', 'edge/139'],
        ['nearby_vmid', 'edge/138'],
        ['nearby_vmid', 'edge/137'],
        ['nearby_vmid', 'edge/136'],
      ]);
      const far = getGuest(h.store, { vmid: 5000 });
      expect(far.kind === 'not_found' && far.suggestions.map((s) => ref(s.cluster, s.vmid))).toEqual([
        'lab/399',
        'lab/398',
        'lab/397',
        'lab/396',
        'lab/395',
      ]);
      expect(far.kind === 'not_found' && far.deleted).toEqual([]);
    });

    it('by name: case-insensitive; shared across clusters is ambiguous; a typo suggests the closest names', () => {
      const { g, name } = uniqueName();
      const found = getGuest(h.store, { name: name.toUpperCase() });
      expect(found.kind === 'found' && found.guest.vmid).toBe(g.vmid);

      const labNames = new Set(labGuests().map((x) => h.sim.cluster.name(x)));
      const shared = [...e.sim.cluster.guests.values()].map((x) => e.sim.cluster.name(x)).find((n) => labNames.has(n))!;
      expect(shared).toBeDefined();
      const amb = getGuest(h.store, { name: shared });
      expect(amb.kind === 'ambiguous' && amb.candidates.map((c) => c.cluster)).toEqual(['edge', 'lab']);
      expect(getGuest(h.store, { cluster: 'lab', name: shared }).kind).toBe('found');

      const typo = `${name.slice(0, 3)}${name.slice(4)}`; // one letter dropped
      const miss = getGuest(h.store, { name: typo });
      expect(miss.kind).toBe('not_found');
      expect(miss.kind === 'not_found' && miss.suggestions[0]).toMatchObject({
        cluster: 'lab',
        vmid: g.vmid,
        name,
        reason: 'similar_name',
      });
    });
  });

  describe('aggregate', () => {
    const stats = (list: SimGuest[], c: SyncHarness['sim']['cluster']): Record<string, number> => {
      const alloc = list.filter((g) => !isTemplate(g));
      const running = alloc.filter((g) => g.status === 'running');
      const sum = (xs: SimGuest[], f: (g: SimGuest) => number): number => xs.reduce((s, g) => s + f(g), 0);
      return {
        guests: list.length,
        running: list.filter((g) => g.status === 'running').length,
        unknown: 0,
        templates: list.filter(isTemplate).length,
        allocatedVcpus: sum(alloc, (g) => c.maxcpu(g)),
        allocatedMemoryBytes: sum(alloc, (g) => c.maxmem(g)),
        runningVcpus: sum(running, (g) => c.maxcpu(g)),
        runningMemoryBytes: sum(running, (g) => c.maxmem(g)),
      };
    };
    const usedMemory = (where: string, ...params: unknown[]): number =>
      (
        h.store.sqlite
          .prepare(
            `SELECT coalesce(sum(m.mem), 0) AS n FROM guests g JOIN guest_metrics m USING (cluster, vmid) WHERE g.deleted_at IS NULL AND ${where}`,
          )
          .get(...params) as { n: number }
      ).n;

    it('by node: counts, allocation and overcommit against the physical node', () => {
      const agg = aggregate(h.store, 'node');
      expect(agg.groups.map((g) => `${g.cluster}/${g.key}`)).toEqual([
        'edge/pve1',
        'edge/pve2',
        'lab/pve1',
        'lab/pve2',
        'lab/pve3',
        'lab/pve4',
      ]);
      for (const node of h.sim.cluster.nodes) {
        const group = agg.groups.find((g) => g.cluster === 'lab' && g.key === node.name)!;
        const expected = stats(
          labGuests().filter((g) => g.node === node.name),
          h.sim.cluster,
        );
        expect(group).toMatchObject({
          ...expected,
          physicalCpus: node.maxcpu,
          physicalMemoryBytes: node.maxmem,
          usedMemoryBytes: usedMemory("g.cluster = 'lab' AND g.node = ?", node.name),
        });
        expect(group.cpuOvercommit).toBeCloseTo(expected.allocatedVcpus! / node.maxcpu, 3);
        expect(group.memoryOvercommit).toBeCloseTo(expected.allocatedMemoryBytes! / node.maxmem, 3);
      }
      expect(agg.totals.guests).toBe(340);
      expect(aggregate(h.store, 'node', { cluster: 'lab' }).totals).toEqual({
        ...stats(labGuests(), h.sim.cluster),
        usedMemoryBytes: usedMemory("g.cluster = 'lab'"),
      });
    });

    it('by node with a filter: only matching guests count, every node still listed', () => {
      const agg = aggregate(h.store, 'node', { cluster: 'lab', type: 'lxc', tag: 'prod' });
      expect(agg.groups.map((g) => g.key)).toEqual(['pve1', 'pve2', 'pve3', 'pve4']);
      for (const group of agg.groups) {
        expect(group).toMatchObject(
          stats(
            labGuests().filter((g) => g.node === group.key && g.type === 'lxc' && simTags(g).includes('prod')),
            h.sim.cluster,
          ),
        );
      }
    });

    it('by tag: a guest counts under each of its tags; untagged ones under null', () => {
      const agg = aggregate(h.store, 'tag', { cluster: 'lab' });
      const tags = [...new Set(labGuests().flatMap(simTags))].sort();
      expect(agg.groups.map((g) => g.key)).toEqual([...tags, null]);
      for (const group of agg.groups) {
        const members = labGuests().filter((g) =>
          group.key === null ? simTags(g).length === 0 : simTags(g).includes(group.key),
        );
        expect(group).toMatchObject(stats(members, h.sim.cluster));
      }
      expect(agg.totals.guests).toBe(300);
    });

    it.each([
      ['status', (g: SimGuest) => g.status],
      ['type', (g: SimGuest) => g.type],
    ] as const)('by %s', (by, keyOf) => {
      const agg = aggregate(h.store, by, { cluster: 'lab' });
      const keys = [...new Set(labGuests().map(keyOf))].sort();
      expect(agg.groups.map((g) => g.key)).toEqual(keys);
      for (const group of agg.groups)
        expect(group).toMatchObject(
          stats(
            labGuests().filter((g) => keyOf(g) === group.key),
            h.sim.cluster,
          ),
        );
    });

    it('by pool (per cluster) and by cluster', () => {
      const pools = aggregate(h.store, 'pool');
      for (const group of pools.groups.filter((g) => g.cluster === 'lab')) {
        expect(group).toMatchObject(
          stats(
            labGuests().filter((g) => (g.pool ?? null) === group.key),
            h.sim.cluster,
          ),
        );
      }
      expect(pools.groups.filter((g) => g.cluster === 'lab').map((g) => g.key)).toEqual([
        ...[
          ...new Set(
            labGuests()
              .map((g) => g.pool)
              .filter(Boolean),
          ),
        ].sort(),
        null,
      ]);
      const byCluster = aggregate(h.store, 'cluster');
      expect(byCluster.groups.map((g) => [g.key, g.guests])).toEqual([
        ['edge', 40],
        ['lab', 300],
      ]);
      expect(byCluster.groups[0]).toMatchObject(stats([...e.sim.cluster.guests.values()], e.sim.cluster));
    });
  });

  describe('nodes and storage', () => {
    it('listNodes: physical sizes from the simulator, guest counts and allocation per node', () => {
      const { items } = listNodes(h.store, 'lab');
      expect(items.map((n) => n.node)).toEqual(['pve1', 'pve2', 'pve3', 'pve4']);
      for (const n of items) {
        const sim = h.sim.cluster.node(n.node)!;
        const on = labGuests().filter((g) => g.node === n.node);
        const alloc = on.filter((g) => !isTemplate(g)).reduce((s, g) => s + h.sim.cluster.maxcpu(g), 0);
        expect(n).toMatchObject({
          cluster: 'lab',
          status: 'online',
          online: true,
          stale: false,
          maxcpu: sim.maxcpu,
          maxmem: sim.maxmem,
          ip: sim.ip,
          lastSeenAt: iso(lastSuccess(h)),
          guests: {
            total: on.length,
            running: on.filter((g) => g.status === 'running').length,
            templates: on.filter(isTemplate).length,
          },
          allocatedVcpus: alloc,
        });
        expect(n.cpuOvercommit).toBeCloseTo(alloc / sim.maxcpu, 3);
      }
      expect(listNodes(h.store).items).toHaveLength(6);
    });

    it('getNode: found with its storage; a name in two clusters is ambiguous; a miss suggests names', () => {
      const found = getNode(h.store, 'lab', 'pve3');
      expect(found.kind).toBe('found');
      expect(found.kind === 'found' && found.node.storage.map((s) => [s.storage, s.node])).toEqual([
        ['ceph-vm', null],
        ['local', 'pve3'],
        ['local-lvm', 'pve3'],
        ['nfs-backup', null],
      ]);
      expect(getNode(h.store, undefined, 'pve1')).toEqual({
        kind: 'ambiguous',
        candidates: [
          { cluster: 'edge', node: 'pve1' },
          { cluster: 'lab', node: 'pve1' },
        ],
      });
      expect(getNode(h.store, undefined, 'pve4').kind).toBe('found');
      const miss = getNode(h.store, 'lab', 'pve-4');
      expect(miss.kind === 'not_found' && miss.suggestions[0]).toEqual({ cluster: 'lab', node: 'pve4' });
    });

    it('listStorage: shared storage once per cluster with its nodes, local storage per node, usage from the simulator', () => {
      const { items } = listStorage(h.store, { cluster: 'lab' });
      const usage = h.sim.cluster.storageUsage();
      const nodeNames = h.sim.cluster.nodes.map((n) => n.name);
      const expected = h.sim.cluster.storages.flatMap((s) =>
        s.shared ? [{ s, node: null as string | null }] : nodeNames.map((node) => ({ s, node })),
      );
      expect(items.map((i) => `${i.storage}@${i.node}`).sort()).toEqual(
        expected.map(({ s, node }) => `${s.storage}@${node}`).sort(),
      );
      for (const item of items) {
        const s = h.sim.cluster.storages.find((x) => x.storage === item.storage)!;
        const disk = Math.min(usage.get(s.shared ? s.storage : `${item.node}/${s.storage}`) ?? 0, s.maxdisk);
        expect(item).toMatchObject({
          shared: s.shared,
          nodes: s.shared ? nodeNames : [item.node],
          plugintype: s.plugintype,
          content: s.content.split(','),
          maxdisk: s.maxdisk,
          disk,
          stale: false,
          status: 'available',
        });
        expect(item.usedFraction).toBeCloseTo(disk / s.maxdisk, 3);
      }
      expect(listStorage(h.store, { shared: true }).items.map((i) => `${i.cluster}/${i.storage}`)).toEqual([
        'edge/ceph-vm',
        'edge/nfs-backup',
        'lab/ceph-vm',
        'lab/nfs-backup',
      ]);
      expect(
        listStorage(h.store, { cluster: 'lab', node: 'pve2', shared: false }).items.map(
          (i) => `${i.storage}@${i.node}`,
        ),
      ).toEqual(['local@pve2', 'local-lvm@pve2']);
    });
  });

  describe('searchInventory', () => {
    it('a MAC, in any spelling, finds its guest', () => {
      const g = labGuests().find((x) => x.type === 'lxc')!;
      const mac = MAC.exec(g.values.net0!)![0];
      for (const q of [mac, mac.toLowerCase().replace(/:/g, '-'), mac.replace(/:/g, '')]) {
        const { results } = searchInventory(h.store, q);
        expect(results.map((r) => r.kind === 'guest' && ref(r.cluster, r.vmid))).toEqual([ref('lab', g.vmid)]);
        expect(results[0]!.matches).toEqual([{ field: 'mac', value: `net0 ${mac}` }]);
      }
    });

    it('an IP address finds the guests configured with it, not longer addresses that start with it', () => {
      const withIp = sims()
        .map((s) => ({
          ...s,
          ip: /(?:ip=|^)(\d+\.\d+\.\d+\.\d+)\//.exec(s.g.values.ipconfig0 ?? s.g.values.net0 ?? '')?.[1],
        }))
        .filter((s) => s.ip);
      const target = withIp.find((s) => s.g.type === 'qemu')!;
      const expected = withIp
        .filter((s) => s.ip === target.ip)
        .map((s) => ref(s.cluster, s.g.vmid))
        .sort();
      const { results } = searchInventory(h.store, target.ip!);
      expect(
        results
          .filter((r) => r.matches.some((m) => m.field === 'ip'))
          .map((r) => (r.kind === 'guest' ? ref(r.cluster, r.vmid) : ''))
          .sort(),
      ).toEqual(expected);
      // Leading octets match at an octet boundary.
      const prefix = target.ip!.split('.').slice(0, 3).join('.');
      const byPrefix = searchInventory(h.store, prefix, 200)
        .results.filter((r) => r.matches.some((m) => m.field === 'ip'))
        .map((r) => (r.kind === 'guest' ? ref(r.cluster, r.vmid) : ''))
        .sort();
      expect(byPrefix).toEqual(
        withIp
          .filter((s) => s.ip!.startsWith(`${prefix}.`))
          .map((s) => ref(s.cluster, s.g.vmid))
          .sort(),
      );
    });

    it('a tag finds every guest carrying it; a vmid finds its guests first; a node name finds the node', () => {
      const tagged = sims()
        .filter(({ g }) => simTags(g).includes('legacy'))
        .map(({ cluster, g }) => ref(cluster, g.vmid))
        .sort();
      const byTag = searchInventory(h.store, 'legacy', 200);
      expect(
        byTag.results
          .filter((r) => r.matches.some((m) => m.field === 'tag' && m.value === 'legacy'))
          .map((r) => (r.kind === 'guest' ? ref(r.cluster, r.vmid) : ''))
          .sort(),
      ).toEqual(tagged);
      expect(byTag.total).toBeGreaterThanOrEqual(tagged.length);

      const byVmid = searchInventory(h.store, '120');
      expect(
        byVmid.results.slice(0, 2).map((r) => [r.kind === 'guest' && ref(r.cluster, r.vmid), r.matches[0]!.field]),
      ).toEqual([
        ['edge/120', 'vmid'],
        ['lab/120', 'vmid'],
      ]);

      const byNode = searchInventory(h.store, 'pve3');
      expect(byNode.results).toEqual([
        {
          kind: 'node',
          cluster: 'lab',
          node: 'pve3',
          status: 'online',
          score: 90,
          matches: [{ field: 'node', value: 'pve3' }],
        },
      ]);
    });

    it('a description fragment finds the guest, with a snippet; an empty query is refused; the limit is clamped', () => {
      const g = labGuests().find((x) => x.values.description)!;
      const ticket = /OPS-\d+/.exec(g.values.description!)![0];
      const expected = sims()
        .filter((s) => s.g.values.description?.includes(ticket))
        .map((s) => ref(s.cluster, s.g.vmid))
        .sort();
      const { results } = searchInventory(h.store, ticket.toLowerCase());
      expect(results.map((r) => (r.kind === 'guest' ? ref(r.cluster, r.vmid) : '')).sort()).toEqual(expected);
      expect(results[0]!.matches[0]).toEqual({ field: 'description', value: expect.stringContaining(ticket) });
      expect(thrown(() => searchInventory(h.store, '   ')).message).toMatch(/empty/);
      expect(searchInventory(h.store, 'web', 5_000)).toMatchObject({ limit: 200, limitClamped: true });
    });
  });

  describe('sync status and freshness', () => {
    it('per cluster: times, age against the given now, calls of the last successful cycle', () => {
      const now = Date.now() + 5_000;
      const status = syncStatus(h.store, now);
      expect(status.clusters.map((c) => c.cluster)).toEqual(['edge', 'lab']);
      const lab = status.clusters[1]!;
      expect(lab).toMatchObject({
        stale: false,
        consecutiveFailures: 0,
        lastError: null,
        pveVersion: '9.1.1',
        quorate: true,
        lastSuccessAt: iso(lastSuccess(h)),
        ageMs: now - lastSuccess(h),
        lastRun: { ok: true, callsTotal: 4, durationMs: expect.any(Number) },
        lastSuccessfulRun: { calls: lastLab.calls, callsTotal: lastLab.callsTotal, guests: 300, nodes: 4 },
      });
      expect(lab.lastSuccessfulRun!.calls).toEqual({
        'GET /cluster/log': 1,
        'GET /cluster/resources': 1,
        'GET /cluster/status': 1,
        'GET /cluster/tasks': 1,
      });
      // The first sync also reads each node's status (2 nodes), and is an import (one summary event).
      expect(status.clusters[0]!.lastSuccessfulRun).toMatchObject({
        callsTotal: 48,
        configsFetched: 40,
        changes: { 'cluster.imported': 1, 'guest.created': 40 },
      });
    });

    it('freshness: the oldest successful read, nothing stale', () => {
      const now = Date.now();
      const oldest = Math.min(lastSuccess(h), lastSuccess(h, 'edge'));
      expect(freshness(h.store, now)).toEqual({
        asOf: iso(oldest),
        ageMs: now - oldest,
        staleClusters: [],
        overdue: false,
        staleNodes: [],
      });
      // A cluster not even attempted within the freshness window is overdue (nothing is syncing it), and stale.
      // Its last sign of life: an attempt begun, or a success ended (a long cycle ends well after it began).
      const attempted = (cluster: string): number =>
        (
          h.store.sqlite
            .prepare('SELECT max(last_attempt_at, last_success_at) AS t FROM clusters WHERE name = ?')
            .get(cluster) as { t: number }
        ).t;
      const tries = { edge: attempted('edge'), lab: attempted('lab') };
      const earliest = Math.min(tries.edge, tries.lab);
      const window = now - earliest - 1;
      const old = (['edge', 'lab'] as const).filter((c) => tries[c] === earliest);
      expect(freshness(h.store, now, window)).toMatchObject({ staleClusters: old, overdue: true });
      expect(syncStatus(h.store, now, window).clusters.map((c) => [c.cluster, c.overdue, c.stale])).toEqual(
        (['edge', 'lab'] as const).map((c) => [c, old.includes(c), old.includes(c)]),
      );
      expect(freshness(h.store, now, now - earliest).overdue).toBe(false);
    });
  });
});

describe('queries as the inventory changes', () => {
  let h: SyncHarness;
  const guests = (): SimGuest[] => [...h.sim.cluster.guests.values()];
  const used = new Set<number>();
  /** A guest no other test touched, without HA, lock or template. */
  const pick = (pred: (g: SimGuest) => boolean): SimGuest => {
    const g = guests().find((x) => !used.has(x.vmid) && !isTemplate(x) && !x.values.lock && !x.ha && pred(x))!;
    used.add(g.vmid);
    return g;
  };
  async function cycle(): Promise<CycleSummary> {
    const result = await h.sync.runCycle();
    expect(result.ok).toBe(true);
    return result;
  }

  beforeAll(async () => {
    h = await startHarness({ guests: 120, nodes: 3, seed: 21, timeoutMs: 500 });
    await cycle();
    await cycle();
  }, 30_000);
  afterAll(() => h.close());

  it('cursors carry any name: paging by name one guest at a time gives the order SQL gives', async () => {
    for (const [i, name] of ['a:b', 'a%b', 'x%3Ay', 'a_b', 'Ü:ß'].entries())
      h.sim.updateGuest(pick(() => true).vmid, { name: i % 2 ? name : name.toUpperCase() });
    await cycle();
    const expected = (
      h.store.sqlite
        .prepare(
          `SELECT vmid FROM guests WHERE deleted_at IS NULL ORDER BY lower(coalesce(name, '')) DESC, cluster, vmid`,
        )
        .all() as Array<{ vmid: number }>
    ).map((r) => r.vmid);
    const seen: number[] = [];
    let cursor: string | undefined;
    do {
      const page = listGuests(h.store, {}, { sort: 'name', order: 'desc', limit: 1, cursor, fields: ['name'] }); // every name ends a page
      seen.push(...page.items.map((g) => g.vmid));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(expected);
  });

  it('eventsSince: by seq, type, subject, cluster and time, paged with nextSeq', async () => {
    const seq0 = h.lastSeq();
    const renamed = pick((g) => g.type === 'qemu');
    const stopped = pick((g) => g.status === 'running');
    h.sim.updateGuest(renamed.vmid, { name: 'renamed-one' });
    h.sim.updateGuest(stopped.vmid, { status: 'stopped' });
    const created = h.sim.createGuest({ type: 'lxc', node: 'pve2', vmid: 7001, name: 'brand-new', tags: ['fresh'] });
    await cycle();
    const at1 = lastSuccess(h);

    const all = eventsSince(h.store, { afterSeq: seq0 });
    expect(all.events.map((x) => [x.type, x.subject.id]).sort()).toEqual([
      ['guest.created', `lab/${created}`],
      ['guest.status_changed', `lab/${stopped.vmid}`],
      ['guest.updated', `lab/${renamed.vmid}`],
    ]);
    expect(all.events.map((x) => x.seq)).toEqual(h.eventsSince(seq0).map((x) => x.seq));
    expect(all.events.every((x) => x.occurred_at === iso(at1) && x.cluster === 'lab' && x.id.startsWith('evt_'))).toBe(
      true,
    );
    expect(all.events.find((x) => x.type === 'guest.status_changed')!.data).toMatchObject({
      from: 'running',
      to: 'stopped',
      vmid: stopped.vmid,
    });
    expect(all).toMatchObject({ nextSeq: h.lastSeq(), hasMore: false, limit: 100 });

    expect(
      eventsSince(h.store, { afterSeq: seq0, types: ['guest.created', 'guest.deleted'] }).events.map(
        (x) => x.subject.id,
      ),
    ).toEqual([`lab/${created}`]);
    expect(eventsSince(h.store, { afterSeq: seq0, subject: `lab/${stopped.vmid}` }).events.map((x) => x.type)).toEqual([
      'guest.status_changed',
    ]);
    expect(eventsSince(h.store, { afterSeq: seq0, subject: 'lab/' }).events).toHaveLength(3);
    expect(eventsSince(h.store, { afterSeq: seq0, subject: 'lab/7' }).events).toHaveLength(0);
    expect(eventsSince(h.store, { afterSeq: seq0, cluster: 'lab' }).events).toHaveLength(3);
    expect(eventsSince(h.store, { afterSeq: seq0, cluster: 'other' })).toMatchObject({
      events: [],
      nextSeq: h.lastSeq(),
    });
    expect(eventsSince(h.store, { afterSeq: seq0, subjectKind: 'node' }).events).toEqual([]);

    // Since a time: only what happened after it.
    const t1 = at1 + 1;
    const later = pick((g) => g.status === 'stopped');
    h.sim.updateGuest(later.vmid, { status: 'running' });
    await cycle();
    for (const since of [t1, iso(t1)]) {
      expect(eventsSince(h.store, { since }).events.map((x) => [x.type, x.subject.id])).toEqual([
        ['guest.status_changed', `lab/${later.vmid}`],
      ]);
    }
    expect(eventsSince(h.store, { since: at1 }).events).toHaveLength(4);

    // One at a time, following nextSeq, sees the same events in the same order.
    const walked: number[] = [];
    let after = seq0;
    for (;;) {
      const page = eventsSince(h.store, { afterSeq: after, limit: 1 });
      walked.push(...page.events.map((x) => x.seq));
      after = page.nextSeq;
      if (!page.hasMore) break;
    }
    expect(walked).toEqual(h.eventsSince(seq0).map((x) => x.seq));
    expect(after).toBe(h.lastSeq());
    expect(eventsSince(h.store, { afterSeq: h.lastSeq() })).toMatchObject({
      events: [],
      nextSeq: h.lastSeq(),
      hasMore: false,
    });

    expect(thrown(() => eventsSince(h.store, { since: 'yesterday' })).message).toMatch(/since/);
    expect(eventsSince(h.store, { limit: 5_000 })).toMatchObject({ limit: 1_000, limitClamped: true });
  });

  it("getGuest and listTasks: a guest's recent tasks and events; failed tasks first or alone", async () => {
    const g = pick((x) => x.status === 'running' && x.type === 'qemu');
    h.sim.updateGuest(g.vmid, { status: 'stopped' });
    const upid = (await h.client.post(`/nodes/${g.node}/qemu/${g.vmid}/status/shutdown`)) as string; // not running: fails
    await h.client.waitForTask(upid);
    await cycle();

    const found = getGuest(h.store, { cluster: 'lab', vmid: g.vmid });
    expect(found.kind).toBe('found');
    if (found.kind !== 'found') return;
    expect(found.guest.recentTasks.map((t) => [t.type, t.outcome]).sort()).toEqual([
      ['qmshutdown', 'error'],
      ['qmstop', 'ok'],
    ]);
    const failed = found.guest.recentTasks.find((t) => t.upid === upid)!;
    expect(failed).toMatchObject({
      cluster: 'lab',
      node: g.node,
      vmid: g.vmid,
      objectId: String(g.vmid),
      exitstatus: expect.stringMatching(/not running/),
      endedAt: expect.any(String),
    });
    expect(Date.parse(failed.startedAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(found.guest.recentEvents[0]).toMatchObject({
      type: 'guest.status_changed',
      data: { from: 'running', to: 'stopped' },
    });

    expect(listTasks(h.store, { onlyFailed: true }).items.map((t) => t.upid)).toEqual([upid]);
    const first = listTasks(h.store, { failedFirst: true });
    expect(first.items[0]!.upid).toBe(upid);
    expect(first.items.length).toBeGreaterThan(1);
    const newest = listTasks(h.store);
    const starts = newest.items.map((t) => Date.parse(t.startedAt));
    expect(starts).toEqual([...starts].sort((a, b) => b - a));
    expect(listTasks(h.store, { vmid: g.vmid, cluster: 'lab' }).items).toHaveLength(2);
    expect(listTasks(h.store, { limit: 9_999 })).toMatchObject({ limit: 500, limitClamped: true });
  });

  it('getGuest: two guests of one cluster sharing a name are ambiguous unless the case tells them apart', async () => {
    const a = pick((g) => g.type === 'qemu');
    const b = pick((g) => g.type === 'qemu');
    h.sim.updateGuest(a.vmid, { name: 'twin' });
    h.sim.updateGuest(b.vmid, { name: 'TWIN' });
    await cycle();
    expect(getGuest(h.store, { cluster: 'lab', name: 'Twin' })).toEqual({
      kind: 'ambiguous',
      candidates: [a, b]
        .sort((x, y) => x.vmid - y.vmid)
        .map((g) => expect.objectContaining({ cluster: 'lab', vmid: g.vmid })),
    });
    const exact = getGuest(h.store, { cluster: 'lab', name: 'TWIN' });
    expect(exact.kind === 'found' && exact.guest.vmid).toBe(b.vmid);
  });

  it('a deleted guest: last seen at the last read that listed it, then tombstoned and left out unless asked', async () => {
    const g = pick((x) => x.status === 'stopped');
    const name = h.sim.cluster.name(g);
    const seenAt = lastSuccess(h);
    const before = listGuests(h.store, { cluster: 'lab' }).total;
    h.sim.deleteGuest(g.vmid, true); // no destroy task: only absence tells (with one, the first read records it)
    await cycle();
    // Missing once: still listed, its last-seen time no longer follows the cluster's.
    const missing = listGuests(h.store, { namePattern: name }).items.find((i) => i.vmid === g.vmid)!;
    expect(missing).toMatchObject({ lastSeenAt: iso(seenAt), deletedAt: null });
    expect(lastSuccess(h)).toBeGreaterThan(seenAt);
    await cycle();

    expect(listGuests(h.store, { cluster: 'lab' }).total).toBe(before - 1);
    const withDeleted = listGuests(h.store, { cluster: 'lab', includeDeleted: true }, { limit: 500 });
    expect(withDeleted.total).toBe(before);
    // A tombstone shows its own last-seen time, not the cluster's latest read (the one that deleted it).
    const tomb = h.store.sqlite
      .prepare('SELECT last_seen_at AS seen, deleted_at AS deleted FROM guests WHERE vmid = ?')
      .get(g.vmid) as { seen: number; deleted: number };
    expect(tomb.seen).toBeLessThan(tomb.deleted);
    expect(tomb.deleted).toBe(lastSuccess(h));
    expect(withDeleted.items.find((i) => i.vmid === g.vmid)).toMatchObject({
      deletedAt: iso(tomb.deleted),
      lastSeenAt: iso(tomb.seen),
    });

    const miss = getGuest(h.store, { cluster: 'lab', vmid: g.vmid });
    expect(miss.kind === 'not_found' && miss.deleted).toEqual([
      expect.objectContaining({ vmid: g.vmid, name, deletedAt: expect.any(String) }),
    ]);
    const asked = getGuest(h.store, { cluster: 'lab', vmid: g.vmid, includeDeleted: true });
    expect(asked.kind === 'found' && asked.guest.recentEvents[0]!.type).toBe('guest.deleted');
    expect(searchInventory(h.store, name).results.some((r) => r.kind === 'guest' && r.vmid === g.vmid)).toBe(false);
    expect(aggregate(h.store, 'cluster').totals.guests).toBe(h.sim.cluster.guests.size);
  });

  it('keyset paging does not repeat or skip when a guest sorting before the cursor appears mid-way', async () => {
    const first = listGuests(h.store, { cluster: 'lab' }, { sort: 'maxmem', order: 'desc', limit: 37 });
    const original = new Set(refs(listGuests(h.store, { cluster: 'lab' }, { limit: 500 }).items));
    h.sim.createGuest({ type: 'qemu', node: 'pve1', vmid: 7100, name: 'huge', memoryMiB: 1_048_576 });
    await cycle();
    const rest = allPages(
      h,
      { cluster: 'lab' },
      { sort: 'maxmem', order: 'desc', limit: 37, cursor: first.nextCursor },
    );
    const visited = [...refs(first.items), ...refs(rest.items)];
    expect(new Set(visited).size).toBe(visited.length);
    expect(new Set(visited)).toEqual(original);
    expect(rest.totals[0]).toBe(original.size + 1);
    expect(listGuests(h.store, { cluster: 'lab' }, { sort: 'maxmem', order: 'desc', limit: 1 }).items[0]!.vmid).toBe(
      7100,
    );
  });

  it('an offline node: its guests and node stale at their last-seen time, reported by freshness', async () => {
    const before = lastSuccess(h);
    h.sim.setNodeOnline('pve2', false);
    await cycle();
    const now = lastSuccess(h);
    expect(freshness(h.store, now)).toEqual({
      asOf: iso(now),
      ageMs: 0,
      staleClusters: [],
      overdue: false,
      staleNodes: [{ cluster: 'lab', node: 'pve2', lastSeenAt: iso(before) }],
    });
    const onNode = listGuests(h.store, { node: 'pve2' }, { limit: 500 });
    expect(onNode.total).toBe(guests().filter((g) => g.node === 'pve2').length);
    expect(onNode.items.every((i) => i.stale && i.lastSeenAt === iso(before))).toBe(true);
    expect(
      listGuests(h.store, { node: 'pve1' }, { limit: 500 }).items.every((i) => !i.stale && i.lastSeenAt === iso(now)),
    ).toBe(true);
    expect(listNodes(h.store).items.find((n) => n.node === 'pve2')).toMatchObject({
      online: false,
      stale: true,
      status: 'offline',
      lastSeenAt: iso(before),
    });
    const storage = listStorage(h.store, { node: 'pve2' }).items;
    expect(storage.map((s) => [s.storage, s.stale])).toEqual([
      ['ceph-vm', false],
      ['local', true],
      ['local-lvm', true],
      ['nfs-backup', false],
    ]);
    expect(aggregate(h.store, 'node').groups.find((g) => g.key === 'pve2')!.guests).toBe(onNode.total);
  });

  it("an offline node: its guests' status is unknown now, their last known one kept apart; filters, counts, sorts and top consumers say so", () => {
    // pve2 is still offline (the test before took it down).
    const onNode = guests().filter((g) => g.node === 'pve2');
    const rest = guests().filter((g) => g.node !== 'pve2');
    const vmids = (list: Array<{ vmid: number }>): number[] => list.map((g) => g.vmid).sort((a, b) => a - b);
    const tally = (list: SimGuest[]): Record<string, number> =>
      Object.fromEntries(
        [...new Set(list.map((g) => g.status))].sort().map((st) => [st, list.filter((g) => g.status === st).length]),
      );
    expect(tally(onNode).running).toBeGreaterThan(0);

    const unknown = listGuests(h.store, { status: 'unknown' }, { limit: 500 });
    expect(vmids(unknown.items)).toEqual(vmids(onNode));
    expect(unknown.total).toBe(onNode.length);
    for (const item of unknown.items) {
      expect(item).toMatchObject({
        status: 'unknown',
        lastKnownStatus: h.sim.cluster.guests.get(item.vmid)!.status,
        stale: true,
        cpu: null,
        mem: null,
        uptime: null,
      });
    }
    // Counted from guest_stats and from the rows (a name pattern needs the rows): the same guests.
    for (const extra of [{}, { namePattern: '*' }]) {
      expect(listGuests(h.store, { status: 'unknown', ...extra }).total).toBe(onNode.length);
      expect(listGuests(h.store, { status: 'running', ...extra }).total).toBe(
        rest.filter((g) => g.status === 'running').length,
      );
      expect(listGuests(h.store, { lastKnownStatus: 'running', ...extra }).total).toBe(
        onNode.filter((g) => g.status === 'running').length,
      );
    }
    expect(vmids(listGuests(h.store, { status: 'running' }, { limit: 500 }).items)).toEqual(
      vmids(rest.filter((g) => g.status === 'running')),
    );

    const byStatus = aggregate(h.store, 'status', { cluster: 'lab' });
    expect(Object.fromEntries(byStatus.groups.map((g) => [g.key, g.guests]))).toEqual({
      ...tally(rest),
      unknown: onNode.length,
    });
    expect(byStatus.totals).toMatchObject({
      guests: guests().length,
      running: tally(rest).running,
      unknown: onNode.length,
    });
    const viaRows = aggregate(h.store, 'status', { cluster: 'lab', template: false });
    const templates = aggregate(h.store, 'status', { cluster: 'lab', template: true });
    for (const group of byStatus.groups) {
      const sum = ['guests', 'running', 'unknown', 'allocatedVcpus', 'runningVcpus', 'usedMemoryBytes'] as const;
      const rows = [...viaRows.groups, ...templates.groups].filter((g) => g.key === group.key);
      for (const key of sum)
        expect(
          rows.reduce((n, g) => n + g[key], 0),
          `${group.key} ${key}`,
        ).toBe(group[key]);
    }
    expect(
      Object.fromEntries(
        aggregate(h.store, 'lastKnownStatus', { status: 'unknown' }).groups.map((g) => [g.key, g.guests]),
      ),
    ).toEqual(tally(onNode));
    const pve2 = aggregate(h.store, 'node').groups.find((g) => g.key === 'pve2')!;
    expect(pve2).toMatchObject({
      guests: onNode.length,
      running: 0,
      unknown: onNode.length,
      runningVcpus: 0,
      runningMemoryBytes: 0,
      usedMemoryBytes: 0,
    });
    expect(pve2.allocatedVcpus).toBe(
      onNode.filter((g) => !isTemplate(g)).reduce((n, g) => n + h.sim.cluster.maxcpu(g), 0),
    );
    expect(listNodes(h.store).items.find((n) => n.node === 'pve2')!.guests).toMatchObject({
      total: onNode.length,
      running: 0,
      unknown: onNode.length,
    });

    // Their use now is unknown: never a top consumer, last in a sort by use, under `unknown` in a sort by status.
    for (const metric of ['mem', 'cpu'] as const) {
      const expected = h.store.sqlite
        .prepare(
          `SELECT g.vmid FROM guest_metrics m JOIN guests g ON g.cluster = m.cluster AND g.vmid = m.vmid
        WHERE g.deleted_at IS NULL AND g.stale = 0 AND m.${metric} > 0 ORDER BY m.${metric} DESC, g.cluster, g.vmid LIMIT 5`,
        )
        .all() as Array<{ vmid: number }>;
      expect(topGuests(h.store, metric).map((g) => g.vmid)).toEqual(expected.map((r) => r.vmid));
      expect(topGuests(h.store, metric, {}, 500).some((g) => g.node === 'pve2')).toBe(false);
      const sorted = listGuests(h.store, {}, { sort: metric, order: 'desc', limit: 500 }).items;
      expect(vmids(sorted.slice(-onNode.length))).toEqual(vmids(onNode));
    }
    const byStatusSort = listGuests(h.store, {}, { sort: 'status', limit: 500 }).items.map((g) => g.status);
    expect(byStatusSort).toEqual([...byStatusSort].sort());
    expect(byStatusSort.filter((st) => st === 'unknown')).toHaveLength(onNode.length);

    const g = onNode.find((x) => x.status === 'running' && !isTemplate(x))!;
    const found = searchInventory(h.store, String(g.vmid)).results.find((r) => r.kind === 'guest' && r.vmid === g.vmid);
    expect(found).toMatchObject({ status: 'unknown', lastKnownStatus: 'running' });
    const detail = getGuest(h.store, { cluster: 'lab', vmid: g.vmid });
    expect(detail.kind === 'found' && detail.guest).toMatchObject({
      status: 'unknown',
      lastKnownStatus: 'running',
      mem: null,
      metrics: { mem: expect.any(Number) },
    });
  });

  it('a failing cluster: syncStatus shows the failure, freshness names the cluster and keeps the last good time', async () => {
    const good = lastSuccess(h);
    const lastGood = h.store.sqlite
      .prepare('SELECT calls FROM sync_runs WHERE ok = 1 ORDER BY id DESC LIMIT 1')
      .get() as { calls: string };
    h.sim.setFaults({ errorRate: 1, errorStatus: 503 });
    expect((await h.sync.runCycle()).ok).toBe(false);
    const now = Date.now();
    const lab = syncStatus(h.store, now).clusters[0]!;
    expect(lab).toMatchObject({
      cluster: 'lab',
      stale: true,
      consecutiveFailures: 1,
      lastError: expect.stringMatching(/503/),
      lastSuccessAt: iso(good),
      ageMs: now - good,
      lastRun: { ok: false, error: expect.stringMatching(/503/) },
      lastSuccessfulRun: { calls: JSON.parse(lastGood.calls) as Record<string, number> },
    });
    expect(freshness(h.store, now)).toEqual({
      asOf: iso(good),
      ageMs: now - good,
      staleClusters: ['lab'],
      overdue: false,
      staleNodes: [],
    });
    // Its last success is older than this window, but it was attempted within it: failing, not overdue.
    expect(freshness(h.store, now, now - good - 1)).toMatchObject({ staleClusters: ['lab'], overdue: false });
    expect(listGuests(h.store, {}, { limit: 500 }).items.every((i) => i.stale)).toBe(true);
    // The failed read left guest_stats as it was: the cluster's staleness makes every guest's status unknown there too.
    expect(aggregate(h.store, 'status').groups.map((g) => [g.key, g.guests])).toEqual([['unknown', guests().length]]);
    expect(listGuests(h.store, { status: 'running' }).total).toBe(0);
    expect(listGuests(h.store, { status: 'unknown' }).total).toBe(guests().length);
    expect(topGuests(h.store, 'mem')).toEqual([]);
    h.sim.setFaults({});
    h.sim.setNodeOnline('pve2', true);
    await cycle();
    expect(listGuests(h.store, { status: 'unknown' })).toMatchObject({ items: [], total: 0 });
    expect(aggregate(h.store, 'status').totals).toMatchObject({
      unknown: 0,
      running: guests().filter((g) => g.status === 'running').length,
    });
    expect(freshness(h.store)).toMatchObject({ staleClusters: [], staleNodes: [] });
    expect(
      eventsSince(h.store, { types: ['cluster.sync_failed', 'cluster.sync_recovered'] }).events.map((x) => x.type),
    ).toEqual(['cluster.sync_failed', 'cluster.sync_recovered']);
  });
});
