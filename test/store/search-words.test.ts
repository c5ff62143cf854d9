/**
 * search_inventory's words (guest names, tags, descriptions, disk volume names) through guest_text, the trigram index
 * migration 0006 keeps by triggers on the guest rows: the same guests and matches as a scan of
 * every live guest row (SQL of the test's own, the scans the index replaced) after the first sync
 * and through renames, tag and description edits, guests destroyed and created, a node offline, a
 * cluster reset and the sync after it; and a word of 3 characters or more reads the index, not
 * every guest row.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/store/db.js';
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
  'vm-10',
  'DISK-1',
  'debian-12',
  'disk-99',
];

/**
 * The scans search_inventory made before guest_text: every live guest row read, `instr(lower(…))`
 * on each field; volume names (from the disks JSON) for a word with a digit or a separator.
 */
function scanned(store: Store, query: string): Match[] {
  const q = query.trim().toLowerCase();
  const volumes = q.length >= 3 && /[\d:/._-]/.test(q) && !/\s/.test(q);
  const rows = store.sqlite
    .prepare(
      `SELECT cluster || '/' || vmid || ' name ' || name AS m FROM guests
       WHERE deleted_at IS NULL AND NOT @skip AND instr(lower(name), @q) > 0
      UNION ALL SELECT cluster || '/' || vmid || ' tag ' || j.value FROM guests, json_each(tags) j
       WHERE deleted_at IS NULL AND NOT @skip AND instr(lower(j.value), @q) > 0
      UNION ALL SELECT cluster || '/' || vmid || ' description' FROM guests
       WHERE deleted_at IS NULL AND instr(lower(description), @q) > 0
      UNION ALL SELECT cluster || '/' || vmid || ' volume ' || json_extract(d.value, '$.key') || ' ' || json_extract(d.value, '$.volume')
       FROM guests, json_each(disks) d WHERE deleted_at IS NULL AND @volumes AND instr(lower(json_extract(d.value, '$.volume')), @q) > 0`,
    )
    .pluck()
    .all({ q, skip: Number(/[:\s]/.test(q)), volumes: Number(volumes) }) as string[];
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
            .filter((m) => ['name', 'tag', 'description', 'volume'].includes(m.field))
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
    h.sim.updateGuest(e, { config: { description: null, scsi5: `ceph-vm:vm-${e}-disk-99,size=8G` } });
    h.sim.deleteGuest(f);
    h.sim.createGuest({ name: 'web-new-1', tags: ['prod'] });
    await cycle();
    expect(found(h.store, 'zür')).toContain(`lab/${a} name zürich-db-01`);
    expect(found(h.store, 'Legacy')).toContain(`lab/${b} tag Legacy`);
    expect(found(h.store, 'say "hi"')).toEqual([`lab/${c} description`]);
    expect(found(h.store, 'disk-99')).toEqual([`lab/${e} volume scsi5 ceph-vm:vm-${e}-disk-99`]);
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

  it('answers a word holding a NUL as a scan does (FTS5 cannot read it), not with an error', () => {
    const named = h.store.sqlite
      .prepare('SELECT name FROM guests WHERE name IS NOT NULL LIMIT 1')
      .pluck()
      .get() as string;
    for (const q of [`${named}\u0000`, `a\u0000b`, `${named.slice(0, 3)}\u0000x`, `vm-1\u0000`])
      expect(found(h.store, q), JSON.stringify(q)).toEqual(scanned(h.store, q));
  });

  it('reads the index for a word of 3 characters or more, and scans for a shorter one', () => {
    // A store of its own: statements are prepared (and seen here) once per store and shape.
    const store = openStore(h.dbPath);
    try {
      const matching = (q: string): string[] =>
        statementsOf(store, () => searchInventory(store, q)).filter((t) => t.includes('guest_text MATCH'));
      // A word with a digit or a separator may be part of a volume's name: the fourth column.
      const texts = matching('vm-101');
      expect(texts).toHaveLength(4);
      expect(matching('web')).toHaveLength(3);
      expect(matching('owner: team')).toHaveLength(1);
      expect(matching('we')).toHaveLength(0);
      for (const text of texts) {
        const explain = store.sqlite.prepare(`EXPLAIN QUERY PLAN ${text}`);
        const params = text.includes('@')
          ? [Object.fromEntries([...text.matchAll(/@(\w+)/g)].map((m) => [m[1], 'x']))]
          : Array(text.split('?').length - 1).fill('x');
        const plan = (explain.all(...params) as Array<{ detail: string }>).map((r) => r.detail).join(' | ');
        expect(plan).toMatch(/VIRTUAL TABLE INDEX/);
        expect(plan).not.toMatch(/SCAN (guests|a|g)\b/);
      }
    } finally {
      store.close();
    }
  });
});
