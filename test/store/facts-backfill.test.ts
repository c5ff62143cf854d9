/**
 * An inventory made before migration 0003 answers the config-fact queries as soon as it is opened:
 * the migration derives the read models from the JSON the guest rows hold, in SQL, and the rows it
 * writes are the ones the sync writes (store/guest-parts.ts) for the same guests. The older file is
 * made the honest way: a store the sync filled, taken back to the 0002 schema (0003's tables and
 * columns dropped, its bookkeeping row removed), then opened again.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/store/db.js';
import { countGuestsBy, listValues } from '../../src/store/queries/counts.js';
import { findByMac } from '../../src/store/queries/network.js';
import { searchInventory } from '../../src/store/queries/search.js';
import { startHarness, type SyncHarness } from '../sync/helpers.js';

type Row = Record<string, unknown>;

const TABLES: Record<string, string> = {
  guest_disks: 'cluster, vmid, key',
  guest_nics: 'cluster, vmid, key',
  guest_addresses: 'cluster, vmid, nic, address',
  guest_facets: 'facet, value, cluster, vmid',
  guest_facet_counts: 'cluster, facet, value, status',
};
const NODE_COLUMNS = [
  'loadavg1',
  'loadavg5',
  'loadavg15',
  'kernel',
  'pve_version',
  'ksm_shared_bytes',
  'swap_total_bytes',
  'swap_used_bytes',
  'cpu_model',
  'cpu_sockets',
  'cpu_cores',
  'status_read_at',
];

function readModels(store: Store): Record<string, Row[]> {
  const out: Record<string, Row[]> = {};
  for (const [table, order] of Object.entries(TABLES))
    out[table] = store.sqlite.prepare(`SELECT * FROM ${table} ORDER BY ${order}`).all() as Row[];
  out.guests = store.sqlite
    .prepare('SELECT cluster, vmid, protection, snapshot_parent FROM guests ORDER BY cluster, vmid')
    .all() as Row[];
  return out;
}

/** Migrations after 0003 (their tables go too: drizzle's bookkeeping applies only migrations newer than the last). */
const LATER_TABLES = [
  'guest_snapshots',
  'webhook_deliveries',
  'webhook_subscriptions',
  'webhook_relay',
  'actions',
  'action_confirmations',
];

/** Indexes later migrations put on tables 0002 has (0005's and 0007's on guests). */
const LATER_INDEXES = [
  'guests_live_name',
  'guests_live_maxmem',
  'guests_live_maxmem_desc',
  ...['maxcpu', 'maxdisk', 'name_sort', 'node'].flatMap((key) => [`guests_live_${key}`, `guests_live_${key}_desc`]),
];
/** 0006's word index of guest rows and the triggers on guests that keep it. */
const LATER_TEXT = ['guest_text_insert', 'guest_text_update', 'guest_text_delete'];

const journal = (): Array<{ tag: string; when: number }> =>
  (
    JSON.parse(readFileSync('migrations/meta/_journal.json', 'utf8')) as {
      entries: Array<{ tag: string; when: number }>;
    }
  ).entries;

/** Takes the file back to what migration 0002 left: 0003's (and later) tables, columns and bookkeeping rows gone. */
function backTo0002(store: Store): void {
  const entries = journal();
  const when = entries.find((e) => e.tag.startsWith('0003_'))!.when;
  store.write(() => {
    for (const table of [...LATER_TABLES, ...Object.keys(TABLES)]) store.sqlite.exec(`DROP TABLE ${table}`);
    for (const index of LATER_INDEXES) store.sqlite.exec(`DROP INDEX ${index}`);
    for (const trigger of LATER_TEXT) store.sqlite.exec(`DROP TRIGGER ${trigger}`);
    store.sqlite.exec('DROP TABLE guest_text');
    for (const column of ['protection', 'snapshot_parent'])
      store.sqlite.exec(`ALTER TABLE guests DROP COLUMN ${column}`);
    for (const column of NODE_COLUMNS) store.sqlite.exec(`ALTER TABLE nodes DROP COLUMN ${column}`);
    expect(store.sqlite.prepare('DELETE FROM __drizzle_migrations WHERE created_at >= ?').run(when).changes).toBe(
      entries.filter((e) => e.when >= when).length,
    );
  });
}

describe('migration 0003 on an inventory made before it', () => {
  let h: SyncHarness;
  let synced: Record<string, Row[]>;
  let answers: unknown[];
  let upgraded: Store;
  const mac = (): string => synced.guest_nics![42]!.mac as string;

  beforeAll(async () => {
    h = await startHarness({ guests: 400, nodes: 4, seed: 31 });
    const guests = [...h.sim.cluster.guests.values()];
    for (const g of guests.filter((x) => x.values.tags?.includes('critical')))
      h.sim.updateGuest(g.vmid, { config: { protection: '1' }, silent: true });
    for (const g of guests.filter((x) => x.type === 'qemu' && x.vmid % 5 === 0))
      h.sim.updateGuest(g.vmid, {
        config: { ide2: 'local:iso/x.iso,media=cdrom,size=10M', net2: 'virtio=BC:24:11:FF:00:01,bridge=vmbr7' },
        silent: true,
      });
    expect((await h.sync.runCycle()).ok).toBe(true);
    h.sim.setNodeOnline('pve4', false); // stale guests, whose facets say status unknown
    expect((await h.sync.runCycle()).ok).toBe(true);
    synced = readModels(h.store);
    answers = [
      countGuestsBy(h.store, 'storage', { status: 'running' }),
      listValues(h.store),
      findByMac(h.store, mac()),
      searchInventory(h.store, 'web', 200),
      searchInventory(h.store, 'ops-1', 200),
    ];

    backTo0002(h.store);
    h.store.close();
    upgraded = openStore(h.dbPath);
  }, 120_000);
  afterAll(async () => {
    upgraded?.close();
    await h.close().catch(() => undefined); // its store was closed above
  });

  it('the file really was at 0002 before: the upgrade applied 0003', () => {
    expect(upgraded.sqlite.prepare('SELECT count(*) FROM __drizzle_migrations').pluck().get()).toBe(journal().length);
    expect(synced.guest_facets!.length).toBeGreaterThan(4_000);
    expect(synced.guest_facets!.some((f) => f.stale === 1)).toBe(true);
    expect(synced.guests!.filter((g) => g.protection === 1).length).toBeGreaterThan(10);
  });

  it('writes the rows the sync wrote, from the stored JSON alone', () => {
    const backfilled = readModels(upgraded);
    for (const table of [...Object.keys(TABLES), 'guests']) expect(backfilled[table], table).toEqual(synced[table]);
  });

  it('answers the queries as before, without a sync', () => {
    expect([
      countGuestsBy(upgraded, 'storage', { status: 'running' }),
      listValues(upgraded),
      findByMac(upgraded, mac()),
      searchInventory(upgraded, 'web', 200),
      searchInventory(upgraded, 'ops-1', 200),
    ]).toEqual(answers);
    // 0006 indexed every guest row's words, found through the index (a scan would find them without it).
    expect(upgraded.sqlite.prepare('SELECT count(*) FROM guest_text').pluck().get()).toBe(synced.guests!.length);
  });
});
