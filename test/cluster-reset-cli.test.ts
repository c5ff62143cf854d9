/**
 * `proxmox-inventory cluster reset NAME` as an operator runs it: against a real inventory file, a
 * name the inventory does not have, and a data directory without an inventory.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/store/db.js';
import { startHarness, type SyncHarness } from './sync/helpers.js';

let h: SyncHarness;
beforeAll(async () => {
  h = await startHarness({ guests: 12, nodes: 2, seed: 97 });
  await h.sync.runCycle();
});
afterAll(() => h.close());

const run = (args: string[], dataDir: string): { code: number | null; stdout: string; stderr: string } => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', DATA_DIR: dataDir, LOG_LEVEL: 'warn' },
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

describe('cluster reset', () => {
  const dataDir = (): string => join(h.dbPath, '..');

  it('names the clusters the inventory has when asked for another', () => {
    const r = run(['cluster', 'reset', 'prod'], dataDir());
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('cluster reset: the inventory has no cluster "prod"; it has lab\n');
  });

  it('says there is nothing to reset where there is no inventory', () => {
    const empty = mkdtempSync(join(tmpdir(), 'pi-reset-'));
    const r = run(['cluster', 'reset', 'lab'], empty);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`there is no inventory at ${join(empty, 'inventory.db')}`);
  });

  it('explains its usage when the name is missing', () => {
    const r = run(['cluster', 'reset'], dataDir());
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('cluster: usage is `cluster reset NAME [--yes]`');
  });

  // It wiped the inventory at once, and the import that follows reaches every webhook subscriber.
  it('without --yes prints the plan, notes an identity that has not changed, and changes nothing', () => {
    const r = run(['cluster', 'reset', 'lab'], dataDir());
    expect(r.stdout).toBe(
      "plan: tombstone cluster lab's 12 guests (their history stays) and remove its 2 nodes; the next sync imports it again as a new cluster, and webhook subscribers receive that import (cluster.imported, and guest.created for each guest, marked initial)\n" +
        "note: lab's identity has not changed; a reset is for a cluster replaced behind its URL, which sync_status and the sync log then report\n",
    );
    expect(r.stderr).toBe('cluster reset: nothing was changed; add --yes to reset it\n');
    expect(r.code).toBe(1);
    const store = openStore(h.dbPath, { readonly: true });
    expect(store.sqlite.prepare('SELECT count(*) FROM guests WHERE deleted_at IS NULL').pluck().get()).toBe(12);
    expect(store.sqlite.prepare("SELECT count(*) FROM events WHERE type = 'cluster.reset'").pluck().get()).toBe(0);
    store.close();
  });

  it('with --yes tombstones the inventory with one event and says what it did', () => {
    const r = run(['cluster', 'reset', 'lab', '--yes'], dataDir());
    expect(r.stdout).toBe(
      'cluster lab reset: 12 guests tombstoned (their history stays), 2 nodes removed; the next sync reads it as a new cluster\n',
    );
    expect(r.code).toBe(0);
    const store = openStore(h.dbPath, { readonly: true });
    expect(store.sqlite.prepare('SELECT count(*) FROM guests WHERE deleted_at IS NULL').pluck().get()).toBe(0);
    expect(store.sqlite.prepare("SELECT count(*) FROM events WHERE type = 'cluster.reset'").pluck().get()).toBe(1);
    expect(store.sqlite.prepare("SELECT last_success_at, identity FROM clusters WHERE name = 'lab'").get()).toEqual({
      last_success_at: null,
      identity: null,
    });
    store.close();
  });
});
