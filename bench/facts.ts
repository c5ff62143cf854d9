/**
 * The config-fact queries at 10,000 guests, in process (no MCP transport): an inventory the sync
 * builds from the simulator over HTTP (protection on critical guests, an ISO in every seventh VM,
 * one node offline), then each query run RUNS times after a warm-up. Prints a Markdown table of
 * median, p95 and p99 in ms, beside the existing queries the new ones replace for the same
 * question (search_inventory's JSON scan for a MAC, aggregate's GROUP BY over guest rows).
 *   npm run bench -- facts          # or: npx tsx bench/facts.ts
 */
import { cpus, loadavg, tmpdir } from 'node:os';
import { mkdtempSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger } from '../src/log.js';
import { createHttpProxmoxClient } from '../src/proxmox/http-client.js';
import { Secret } from '../src/secret.js';
import { startSimulator } from '../src/sim/server.js';
import { openStore } from '../src/store/db.js';
import { aggregate, listGuests, searchInventory } from '../src/store/queries.js';
import { countGuestsBy, listValues } from '../src/store/queries/counts.js';
import { completeGuests } from '../src/store/queries/completions.js';
import { countFactGuests, findGuests, guestFacts } from '../src/store/queries/facts.js';
import { listGuestsByFacets } from '../src/store/queries/guest-listing.js';
import { findByAddress, findByMac } from '../src/store/queries/network.js';
import { createClusterSync, DEFAULT_SYNC_SETTINGS } from '../src/sync/cycle.js';

const GUESTS = 10_000;
const RUNS = 1_000;
/** list_guests' default columns (and the sort key), as the tool asks the store for them. */
const LISTING_FIELDS = ['cluster', 'vmid', 'name', 'type', 'node', 'status', 'lastKnownStatus', 'maxmem'] as const;

const percentile = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;

function time(fn: () => unknown): { median: number; p95: number; p99: number } {
  for (let i = 0; i < 50; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    fn();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return { median: percentile(times, 0.5), p95: percentile(times, 0.95), p99: percentile(times, 0.99) };
}

export async function benchFacts(): Promise<void> {
  const sim = await startSimulator({ tls: false, guests: GUESTS, nodes: 16, seed: 7 });
  for (const g of sim.cluster.guests.values()) {
    if (g.values.tags?.includes('critical')) sim.updateGuest(g.vmid, { config: { protection: '1' }, silent: true });
    if (g.type === 'qemu' && g.vmid % 7 === 0)
      sim.updateGuest(g.vmid, { config: { ide2: 'local:iso/debian-12.iso,media=cdrom,size=631M' }, silent: true });
  }
  const client = createHttpProxmoxClient({
    cluster: 'lab',
    url: sim.url,
    tokenId: sim.tokens.full.id,
    tokenSecret: new Secret(sim.tokens.full.secret),
    tls: {},
    retries: 0,
    timeoutMs: 60_000,
  });
  const dbPath = join(mkdtempSync(join(tmpdir(), 'pi-bench-facts-')), 'inventory.db');
  const store = openStore(dbPath);
  const sync = createClusterSync({
    store,
    client,
    cluster: 'lab',
    settings: { ...DEFAULT_SYNC_SETTINGS, sweepEveryMs: 0 },
    log: createLogger({ level: 'silent' }),
  });
  const first = await sync.runCycle();
  if (!first.ok) throw new Error(`first sync failed: ${first.error}`);
  store.sqlite.pragma('wal_checkpoint(TRUNCATE)');
  const databaseBytes = statSync(dbPath).size;
  sim.setNodeOnline('pve16', false);
  const second = await sync.runCycle();
  await client.close();
  await sim.close();

  const mac = store.sqlite.prepare('SELECT mac FROM guest_nics WHERE vmid = 5000').pluck().get() as string;
  const ip = store.sqlite
    .prepare('SELECT address FROM guest_addresses ORDER BY vmid LIMIT 1 OFFSET 2000')
    .pluck()
    .get() as string;
  const page = findGuests(store, { storage: 'ceph-vm' }, { limit: 50 }).items;
  // The first letter most guest names share: the widest completion a picker asks for.
  const { letter, lettered } = store.sqlite
    .prepare(
      'SELECT substr(lower(name), 1, 1) AS letter, count(*) AS lettered FROM guests GROUP BY 1 ORDER BY 2 DESC LIMIT 1',
    )
    .get() as { letter: string; lettered: number };
  const cases: Array<[string, string, () => unknown]> = [
    ['findGuests', 'storage=ceph-vm, 50', () => findGuests(store, { storage: 'ceph-vm' }, { limit: 50 })],
    ['findGuests', 'vlan=20, 50', () => findGuests(store, { vlan: 20 }, { limit: 50 })],
    [
      'findGuests',
      'bridge=vmbr1 status=running, 50',
      () => findGuests(store, { bridge: 'vmbr1', status: 'running' }, { limit: 50 }),
    ],
    ['findGuests', 'protection=true, 50', () => findGuests(store, { protection: true }, { limit: 50 })],
    [
      'findGuests',
      'ostype=win11 onboot=true, 50',
      () => findGuests(store, { ostype: 'win11', onboot: true }, { limit: 50 }),
    ],
    ['findGuests', 'hasSnapshots=true, 50', () => findGuests(store, { hasSnapshots: true }, { limit: 50 })],
    [
      'findGuests',
      'tag=prod storage=local-lvm agent=true, 50',
      () => findGuests(store, { tag: 'prod', storage: 'local-lvm', agent: true }, { limit: 50 }),
    ],
    ['countFactGuests', 'onboot=false', () => countFactGuests(store, { onboot: false })],
    ['countGuestsBy', 'node (no filter)', () => countGuestsBy(store, 'node')],
    ['countGuestsBy', 'node, template=true', () => countGuestsBy(store, 'node', { template: true })],
    ['countGuestsBy', 'tag, status=running', () => countGuestsBy(store, 'tag', { status: 'running' })],
    ['countGuestsBy', 'storage, status=running', () => countGuestsBy(store, 'storage', { status: 'running' })],
    ['countGuestsBy', 'vlan, status=unknown', () => countGuestsBy(store, 'vlan', { status: 'unknown' })],
    ['countGuestsBy', 'storage, tag=prod', () => countGuestsBy(store, 'storage', { tag: 'prod' })],
    ['countGuestsBy', 'vlan, node=pve3', () => countGuestsBy(store, 'vlan', { node: 'pve3' })],
    ['countGuestsBy', 'bridge, type=qemu', () => countGuestsBy(store, 'bridge', { type: 'qemu' })],
    ['countGuestsBy', 'ostype, onboot=true', () => countGuestsBy(store, 'ostype', { onboot: true })],
    ['countGuestsBy', 'pool, storage=ceph-vm', () => countGuestsBy(store, 'pool', { storage: 'ceph-vm' })],
    ['countGuestsBy', 'node, storage=ceph-vm', () => countGuestsBy(store, 'node', { storage: 'ceph-vm' })],
    ['countGuestsBy', 'status, vlan=20', () => countGuestsBy(store, 'status', { vlan: 20 })],
    ['countGuestsBy', 'template, protection=true', () => countGuestsBy(store, 'template', { protection: true })],
    ['countGuestsBy', 'type, agent=true', () => countGuestsBy(store, 'type', { agent: true })],
    ['listValues', 'all kinds', () => listValues(store)],
    ['findByMac', 'exact', () => findByMac(store, mac)],
    ['findByMac', 'prefix BC:24:11:A', () => findByMac(store, mac.slice(0, 10), { prefix: true, limit: 20 })],
    ['findByAddress', 'exact', () => findByAddress(store, ip)],
    ['findByAddress', 'prefix 10.20.', () => findByAddress(store, '10.20.', { prefix: true, limit: 20 })],
    ['guestFacts', '50 guests', () => guestFacts(store, page)],
    // list_guests' own paths: a facet-filtered page in listing order, and pages sorted by memory.
    [
      'listGuestsByFacets',
      'status=running tag=prod, 50',
      () => listGuestsByFacets(store, { status: 'running', tag: 'prod' }, { limit: 50, fields: LISTING_FIELDS }),
    ],
    [
      'listGuests',
      'storage=ceph-vm sort=maxmem desc, 50',
      () =>
        listGuests(store, { storage: 'ceph-vm' }, { sort: 'maxmem', order: 'desc', limit: 50, fields: LISTING_FIELDS }),
    ],
    [
      'listGuests',
      'storage=ceph-vm sort=maxmem asc, 50',
      () =>
        listGuests(store, { storage: 'ceph-vm' }, { sort: 'maxmem', order: 'asc', limit: 50, fields: LISTING_FIELDS }),
    ],
    [
      'listGuests',
      'vlan=20 sort=maxmem desc, 50',
      () => listGuests(store, { vlan: 20 }, { sort: 'maxmem', order: 'desc', limit: 50, fields: LISTING_FIELDS }),
    ],
    [
      'listGuests',
      'vlan=20 sort=maxcpu desc, 50',
      () => listGuests(store, { vlan: 20 }, { sort: 'maxcpu', order: 'desc', limit: 50, fields: LISTING_FIELDS }),
    ],
    [
      'listGuests',
      'tag=prod sort=maxmem desc, 50',
      () => listGuests(store, { tag: 'prod' }, { sort: 'maxmem', order: 'desc', limit: 50, fields: LISTING_FIELDS }),
    ],
    ['completeGuests', `name prefix '${letter}' (${lettered} guests)`, () => completeGuests(store, letter, undefined)],
    ['searchInventory', 'a plain word (web)', () => searchInventory(store, 'web')],
    // A digit or a separator: descriptions and disk volume names too.
    ['searchInventory', 'a word with a digit (ops-12)', () => searchInventory(store, 'ops-12')],
    ['searchInventory', 'two letters (db: scanned)', () => searchInventory(store, 'db')],
    // The machine's pace: docs/benchmarks.md measured this page at about 0.65 ms in process on a quiet VM.
    [
      'reference: listGuests',
      'status=running tag=prod, 50',
      () => listGuests(store, { status: 'running', tag: 'prod' }, { limit: 50 }),
    ],
    ['before: searchInventory', 'a MAC (JSON scan)', () => searchInventory(store, mac)],
    ['before: aggregate', 'tag, status=running (rows)', () => aggregate(store, 'tag', { status: 'running' })],
  ];

  process.stdout.write(
    `\nconfig-fact queries at ${GUESTS.toLocaleString('en')} guests (16 nodes, one offline), in process, ${RUNS} runs each\n`,
  );
  process.stdout.write(
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}\n`,
  );
  process.stdout.write(
    `first sync ${(first.durationMs / 1000).toFixed(1)} s (write ${first.phases.write} ms), database ${(databaseBytes / 2 ** 20).toFixed(1)} MiB; a cycle with a node going offline: write ${second.phases.write} ms\n\n`,
  );
  process.stdout.write('| query | arguments | median ms | p95 ms | p99 ms |\n|---|---|---:|---:|---:|\n');
  for (const [name, args, fn] of cases) {
    const t = time(fn);
    process.stdout.write(
      `| ${name} | ${args} | ${t.median.toFixed(2)} | ${t.p95.toFixed(2)} | ${t.p99.toFixed(2)} |\n`,
    );
  }
  store.close();
}

if (import.meta.url === `file://${process.argv[1]}`) await benchFacts();
