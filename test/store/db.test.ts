/** Opening the inventory database: a file an earlier development schema made is refused with what to do. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { openStore, StoreError } from '../../src/store/db.js';

describe('openStore', () => {
  it('creates and migrates a new database, and opens it again', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'pi-db-')), 'inventory.db');
    openStore(path).close();
    const store = openStore(path);
    expect(
      store.sqlite
        .prepare("SELECT count(*) FROM sqlite_master WHERE name IN ('guests', 'guest_stats', 'guest_tags')")
        .pluck()
        .get(),
    ).toBe(3);
    store.close();
  });

  it('refuses a database whose tables an earlier development migration made, saying what to do', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'pi-db-')), 'inventory.db');
    const old = new Database(path);
    old.exec("CREATE TABLE clusters (name text PRIMARY KEY); INSERT INTO clusters VALUES ('lab')");
    old.close();
    let err: unknown;
    try {
      openStore(path);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StoreError);
    expect((err as Error).message).toBe(
      `${path} was made by an earlier development version whose schema this one cannot upgrade; move it away and run \`proxmox-inventory sync --once\` or \`serve\` to build it again (it holds a copy of Proxmox data and the change history since it was made)`,
    );
    // Nothing was changed: the old table and its row are still there.
    const again = new Database(path, { readonly: true });
    expect(again.prepare('SELECT name FROM clusters').pluck().all()).toEqual(['lab']);
    again.close();
  });
});
