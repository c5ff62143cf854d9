/**
 * search_inventory's words (guest names, tags, descriptions) through guest_text, the trigram index
 * migration 0006 keeps by triggers on the guest rows: the same guests and matches as a scan of
 * every live guest row (SQL of the test's own, the scans the index replaced) after the first sync
 * and through renames, tag and description edits, guests destroyed and created, a node offline, a
 * cluster reset and the sync after it; and a word of 3 characters or more reads the index, not
 * every guest row.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/db.js';
import { searchInventory } from '../../src/store/queries/search.js';
import { resetCluster } from '../../src/store/sync-state.js';
import { createClusterSync, DEFAULT_SYNC_SETTINGS } from '../../src/sync/cycle.js';
import { startHarness, type SyncHarness } from '../sync/helpers.js';

/** `cluster/vmid field value` (a description's snippet left out: the field is what matched). */
type Match = string;

const QUERIES = [
  'web',
  'WEB',
  'db-0',
  'prod',
  'Legacy',
  'team-a',
  'OPS-1',
  'Owner: team',
  'ticket: ops-2',
  'zür',
  'ZÜRICH',
  'say "hi"',
  'de',
  'x',
  'no-such-word',
];

/** The scans search_inventory made before guest_text: every live guest row read, `instr(lower(…))` on each field. */
function scanned(store: Store, query: string): Match[] {
  const q = query.trim().toLowerCase();
  const rows = store.sqlite
    .prepare(
      `SELECT cluster || '/' || vmid || ' name ' || name AS m FROM guests
       WHERE deleted_at IS NULL AND NOT @skip AND instr(lower(name), @q) > 0
      UNION ALL SELECT cluster || '/' || vmid || ' tag ' || j.value FROM guests, json_each(tags) j
       WHERE deleted_at IS NULL AND NOT @skip AND instr(lower(j.value), @q) > 0
      UNION ALL SELECT cluster || '/' || vmid || ' description' FROM guests
       WHERE deleted_at IS NULL AND instr(lower(description), @q) > 0`,
    )
    .pluck()
    .all({ q, skip: Number(/[:\s]/.test(q)) }) as string[];
  return rows.sort();
}

function found(store: Store, query: string): Match[] {
  const answer = searchInventory(store, query, 200);
  expect(answer.total, `${query}: every result on one page`).toBeLessThanOrEqual(200);
  return answer.results
    .flatMap((r) =>
      r.kind !== 'guest'
        ? []
        : r.matches
            .filter((m) => m.field === 'name' || m.field === 'tag' || m.field === 'description')
            .map((m) => `${r.cluster}/${r.vmid} ${m.field}${m.field === 'description' ? '' : ` ${m.value}`}`),
    )
    .sort();
}

function expectSameAsScan(store: Store, when: string): number {
  let matches = 0;
  for (const q of QUERIES) {
    const expected = scanned(store, q);
    expect(found(store, q), `${when}: ${q}`).toEqual(expected);
    matches += expected.length;
  }
  // One index row per guest row (tombstones too: they are filtered as the scans filter them).
  const count = (sql: string): number => store.sqlite.prepare(sql).pluck().get() as number;
  expect(count('SELECT count(*) FROM guest_text'), when).toBe(count('SELECT count(*) FROM guests'));
  return matches;
}

/** The text of each statement `run` prepares. */
function statementsOf(store: Store, run: () => unknown): string[] {
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
  return texts;
}

describe('search_inventory words through guest_text', () => {
  let h: SyncHarness;
  const cycle = async (): Promise<void> => {
    expect((await h.sync.runCycle()).ok).toBe(true);
  };
  const vmids = (): number[] => [...h.sim.cluster.guests.keys()].sort((a, b) => a - b);

  beforeAll(async () => {
    h = await startHarness({ guests: 240, nodes: 3, seed: 41 });
    await cycle();
  }, 120_000);
  afterAll(() => h?.close());

  it('finds what a scan of every guest row finds, after the first sync', () => {
    expect(expectSameAsScan(h.store, 'first sync')).toBeGreaterThan(50);
  });

  it('follows renames, tag and description edits, destroyed and new guests', async () => {
    const [a, b, c, d, e, f] = vmids().slice(10, 16) as [number, number, number, number, number, number];
    h.sim.updateGuest(a, { name: 'zürich-db-01' });
    h.sim.updateGuest(b, { tags: ['Legacy', 'prod'] });
    h.sim.updateGuest(c, { config: { description: 'they say "hi" to OPS-1234\nOwner: team-a' } });
    h.sim.updateGuest(d, { tags: [] });
    h.sim.updateGuest(e, { config: { description: null } });
    h.sim.deleteGuest(f);
    h.sim.createGuest({ name: 'web-new-1', tags: ['prod'] });
    await cycle();
    expect(found(h.store, 'zür')).toContain(`lab/${a} name zürich-db-01`);
    expect(found(h.store, 'Legacy')).toContain(`lab/${b} tag Legacy`);
    expect(found(h.store, 'say "hi"')).toEqual([`lab/${c} description`]);
    expectSameAsScan(h.store, 'edits');

    // A renamed guest's old name no longer finds it; a name changed back finds it again.
    h.sim.updateGuest(a, { name: 'plain-01' });
    await cycle();
    expect(found(h.store, 'zür')).not.toContain(`lab/${a} name zürich-db-01`);
    expectSameAsScan(h.store, 'renamed back');
  });

  it('follows a node going offline, a cluster reset and the sync after it', async () => {
    h.sim.setNodeOnline('pve2', false);
    await cycle();
    expectSameAsScan(h.store, 'node offline');
    h.sim.setNodeOnline('pve2', true);
    await cycle();

    resetCluster(h.store, 'lab', Date.now());
    expect(found(h.store, 'web')).toEqual([]);
    expectSameAsScan(h.store, 'reset');
    // The reset bumped the cluster's run: a fresh sync (as a daemon's reload) writes every guest again.
    h.sync = createClusterSync({
      store: h.store,
      client: h.client,
      cluster: 'lab',
      settings: { ...DEFAULT_SYNC_SETTINGS, sweepEveryMs: 0 },
      log: h.log,
    });
    await cycle();
    expect(found(h.store, 'web').length).toBeGreaterThan(10);
    expectSameAsScan(h.store, 'after reset');
  });

  it('reads the index for a word of 3 characters or more, and scans for a shorter one', () => {
    const matching = (texts: string[]): string[] => texts.filter((t) => t.includes('guest_text MATCH'));
    expect(matching(statementsOf(h.store, () => searchInventory(h.store, 'web')))).toHaveLength(3);
    expect(matching(statementsOf(h.store, () => searchInventory(h.store, 'owner: team')))).toHaveLength(1);
    expect(matching(statementsOf(h.store, () => searchInventory(h.store, 'we')))).toHaveLength(0);
    for (const text of matching(statementsOf(h.store, () => searchInventory(h.store, 'web')))) {
      const plan = (
        h.store.sqlite
          .prepare(`EXPLAIN QUERY PLAN ${text}`)
          .all(...Array(text.split('?').length - 1).fill('x')) as Array<{ detail: string }>
      )
        .map((r) => r.detail)
        .join(' | ');
      expect(plan).toMatch(/VIRTUAL TABLE INDEX/);
      expect(plan).not.toMatch(/SCAN guests/);
    }
  });
});
