/**
 * The read paths issue 10 timed read the index meant for them (docs/benchmarks.md has the figures):
 * each statement a query prepares is caught as it is prepared and its plan asked of SQLite. A
 * plan that falls back to walking every guest or sorting every match is what made these answers
 * take 2–25 ms at 10,000 guests; the answers themselves are checked against the test's own SQL in
 * facts-queries.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/db.js';
import { listGuests } from '../../src/store/queries.js';
import { completeGuests } from '../../src/store/queries/completions.js';
import { countGuestsBy } from '../../src/store/queries/counts.js';
import { countFactGuests, findGuests } from '../../src/store/queries/facts.js';
import { startHarness, type SyncHarness } from '../sync/helpers.js';

/** The plans of the statements `run` prepares (prepared statements are cached per store and shape: each is new once). */
function plansOf(store: Store, run: () => unknown): string[] {
  const sqlite = store.sqlite as unknown as { prepare: (text: string) => unknown };
  const texts: string[] = [];
  const prepare = sqlite.prepare;
  sqlite.prepare = (text: string) => {
    texts.push(text);
    return prepare.call(store.sqlite, text);
  };
  try {
    run();
  } finally {
    sqlite.prepare = prepare;
  }
  const params = (text: string): Record<string, unknown> =>
    Object.fromEntries([...text.matchAll(/@(\w+)/g)].map((m) => [m[1], m[1] === 'refs' ? '[]' : 1]));
  return texts.map((text) => {
    const explain = store.sqlite.prepare(`EXPLAIN QUERY PLAN ${text}`);
    const rows = (
      text.includes('?')
        ? explain.all(...Array(explain.source.split('?').length - 1).fill(1))
        : explain.all(params(text))
    ) as Array<{ detail: string }>;
    return rows.map((r) => r.detail).join(' | ');
  });
}

describe('read paths and their indexes', () => {
  let h: SyncHarness;
  beforeAll(async () => {
    h = await startHarness({ guests: 600, nodes: 4, seed: 5 });
    for (const g of [...h.sim.cluster.guests.values()].filter((x) => x.values.tags?.includes('critical')))
      h.sim.updateGuest(g.vmid, { config: { protection: '1' }, silent: true });
    expect((await h.sync.runCycle()).ok).toBe(true);
  }, 120_000);
  afterAll(() => h?.close());

  it('counts and pages protected guests, or guests with snapshots, from their own small indexes', () => {
    const protectedPlans = plansOf(h.store, () => findGuests(h.store, { protection: true, onboot: true }));
    expect(protectedPlans.filter((p) => p.includes('guest_facets_protected'))).toHaveLength(2); // the count and the page
    const snapshotPlans = plansOf(h.store, () => findGuests(h.store, { hasSnapshots: true, agent: true }));
    expect(snapshotPlans.filter((p) => p.includes('guest_facets_snapshots'))).toHaveLength(2);
    expect(findGuests(h.store, { protection: true }).total).toBeGreaterThan(0);
  });

  it('lists guests by memory, either order, walking the memory index instead of sorting every match', () => {
    for (const order of ['asc', 'desc'] as const) {
      const plans = plansOf(h.store, () =>
        listGuests(h.store, { storage: 'ceph-vm' }, { sort: 'maxmem', order, limit: 50, fields: ['name', 'maxmem'] }),
      );
      const page = plans.find((p) => p.includes('guests_live_maxmem'));
      expect(page, plans.join('\n')).toBeDefined();
      expect(page).not.toMatch(/TEMP B-TREE FOR ORDER BY/);
    }
  });

  it('lists guests by cores, disk size, name or node, either order, walking that key’s index', () => {
    const indexes = {
      maxcpu: 'guests_live_maxcpu',
      maxdisk: 'guests_live_maxdisk',
      name: 'guests_live_name_sort',
      node: 'guests_live_node',
    };
    for (const [sort, index] of Object.entries(indexes) as Array<[keyof typeof indexes, string]>)
      for (const order of ['asc', 'desc'] as const)
        for (const filter of [{ status: 'running' }, { storage: 'ceph-vm' }]) {
          const plans = plansOf(h.store, () =>
            listGuests(h.store, filter, { sort, order, limit: 50, fields: ['name'] }),
          );
          const walk = new RegExp(`^SCAN guests USING INDEX ${index}${order === 'asc' ? '' : '_desc'}\\b`);
          const page = plans.find((p) => walk.test(p));
          expect(page, `${sort} ${order} ${JSON.stringify(filter)}:\n${plans.join('\n')}`).toBeDefined();
          expect(page).not.toMatch(/TEMP B-TREE FOR ORDER BY/);
        }
  });

  it("lists a rare VLAN's guests by memory from the VLAN's own guests, not walking the memory index", () => {
    const vlan = h.store.sqlite
      .prepare("SELECT value FROM guest_facets WHERE facet = 'vlan' GROUP BY 1 ORDER BY count(*) LIMIT 1")
      .pluck()
      .get() as string;
    const plans = plansOf(h.store, () =>
      listGuests(h.store, { vlan: Number(vlan) }, { sort: 'maxmem', order: 'desc', limit: 50, fields: ['name'] }),
    );
    expect(
      plans.some((p) => p.includes('guests_live_maxmem')),
      plans.join('\n'),
    ).toBe(false);
    expect(
      plans.some((p) => /LIST SUBQUERY .*guest_facets_value \(facet=\? AND value=\?\)/.test(p)),
      plans.join('\n'),
    ).toBe(true);
  });

  it('completes guest names from the index alone', () => {
    const plans = plansOf(h.store, () => completeGuests(h.store, 'd', undefined));
    expect(
      plans.some((p) => /COVERING INDEX guests_live_name/.test(p)),
      plans.join('\n'),
    ).toBe(true);
  });

  it('counts by a facet filtered by status alone from the kept counts, reading no facet row', () => {
    // The groups' statement is new here (the total's may have been prepared by an earlier count).
    const plans = plansOf(h.store, () => countGuestsBy(h.store, 'tag', { status: 'running' }));
    expect(plans.length).toBeGreaterThan(0);
    for (const plan of plans) expect(plan).toMatch(/^SEARCH c USING INDEX sqlite_autoindex_guest_facet_counts_1/);
    expect(countGuestsBy(h.store, 'tag', { status: 'running' }).total).toBeGreaterThan(0);
  });

  it('counts stale guests last seen running from the kept counts alone while no guest is stale', () => {
    expect(h.store.sqlite.prepare('SELECT count(*) FROM guests WHERE stale = 1').pluck().get()).toBe(0);
    const plans = plansOf(h.store, () =>
      expect(countFactGuests(h.store, { tag: 'prod', lastKnownStatus: 'running' })).toBe(0),
    );
    expect(plans.length).toBeGreaterThan(0);
    for (const plan of plans) expect(plan).toMatch(/^SEARCH c USING INDEX sqlite_autoindex_guest_facet_counts_1/);
  });

  it('counts pools among a storage’s guests walking that storage’s range, without a sorter', () => {
    const plans = plansOf(h.store, () => countGuestsBy(h.store, 'pool', { storage: 'ceph-vm', onboot: true }));
    const walked = plans.find((p) => p.includes('guest_facets_value'));
    expect(walked, plans.join('\n')).toMatch(/facet=\? AND value=\?/);
    for (const plan of plans) expect(plan).not.toMatch(/TEMP B-TREE/);
    expect(countGuestsBy(h.store, 'pool', { storage: 'ceph-vm', onboot: true }).total).toBeGreaterThan(0);
  });

  it('counts templates per node through the templates, not every guest', () => {
    const plans = plansOf(h.store, () => countGuestsBy(h.store, 'node', { template: true }));
    const grouped = plans.find((p) => p.includes('guest_facets_value'));
    expect(grouped, plans.join('\n')).toMatch(/facet=\? AND value=\?/);
  });
});
