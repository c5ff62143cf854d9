/**
 * What openStore checks before it changes anything in a file, and the sentences it answers with.
 * A file that is not an inventory of ours is refused before the first write: pointing DATA_DIR
 * at another application's directory must not switch its database to WAL mode or add our tables
 * to it. Damage is found by the first read (the schema), which is cheap: SQLite compares the
 * page count in the header with the file's size there, so a truncated copy fails with
 * SQLITE_CORRUPT, and a file that is not SQLite at all with SQLITE_NOTADB. `PRAGMA quick_check`
 * would also find damage deep inside, but costs 74 ms on a 10,000-guest inventory (16 MB) on
 * every open, and grows with it; a damaged page deeper in fails the query that reads it.
 */
import { accessSync, constants } from 'node:fs';
import { basename, dirname } from 'node:path';
import type Database from 'better-sqlite3';
import type { MigrationMeta } from 'drizzle-orm/migrator';
import { StoreError } from './errors.js';

const REBUILD = 'move it aside, and `proxmox-inventory sync --once` or `serve` builds a new inventory';

/** Throws a StoreError when the file is not (and cannot become) an inventory. */
export function checkInventoryFile(
  sqlite: Database.Database,
  path: string,
  { readonly, migrations }: { readonly: boolean; migrations: MigrationMeta[] },
): void {
  const tables = sqlite
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")
    .pluck()
    .all() as string[];
  if (tables.length === 0) {
    if (readonly)
      throw new StoreError(
        `${path} holds no inventory yet: start \`proxmox-inventory serve\` (or run \`proxmox-inventory sync --once\`) and ask again`,
      );
    return;
  }
  if (tables.includes('__drizzle_migrations') && appliedOneOfOurs(sqlite, migrations)) return;
  const ours = ourTables(migrations);
  const foreign = tables.filter((t) => !ours.has(t));
  if (foreign.length === 0) return; // ours by its tables (a development version's, found out by migrate)
  const named = foreign.slice(0, 5).join(', ') + (foreign.length > 5 ? `, … (${foreign.length} in all)` : '');
  throw new StoreError(
    `${path} holds tables of another application (${named}), not a proxmox-inventory inventory, and was left unchanged; point DATA_DIR at a directory of the inventory's own (it keeps DATA_DIR/inventory.db there)`,
  );
}

/** A database any version of ours migrated: its bookkeeping names one of our migrations. */
function appliedOneOfOurs(sqlite: Database.Database, migrations: MigrationMeta[]): boolean {
  const applied = sqlite.prepare('SELECT hash, created_at FROM "__drizzle_migrations"').all() as Array<{
    hash: string;
    created_at: number | string;
  }>;
  return applied.some((row) =>
    migrations.some((m) => m.hash === row.hash || Number(row.created_at) === m.folderMillis),
  );
}

let tablesOfOurs: Set<string> | undefined;

/** Every table a migration of ours ever created (dropped ones too), and drizzle's bookkeeping. */
function ourTables(migrations: MigrationMeta[]): Set<string> {
  if (tablesOfOurs) return tablesOfOurs;
  const names = new Set(['__drizzle_migrations']);
  for (const statement of migrations.flatMap((m) => m.sql))
    for (const [, name] of statement.matchAll(/CREATE TABLE (?:IF NOT EXISTS )?[`"]?(\w+)/gi)) names.add(name!);
  return (tablesOfOurs = names);
}

/**
 * The StoreError for what SQLite (or the file system) answered at open, or `err` itself when
 * there is nothing more useful to say than its own message.
 */
export function storeErrorFor(err: unknown, path: string, readonly: boolean): unknown {
  if (err instanceof StoreError) return err;
  const code = (err as { code?: string }).code ?? '';
  if (code === 'SQLITE_NOTADB')
    return new StoreError(`${path} is not an SQLite database (it is damaged, or some other file); ${REBUILD}`);
  if (code.startsWith('SQLITE_CORRUPT'))
    return new StoreError(
      `${path} is damaged (SQLite: "database disk image is malformed"; a truncated copy does this); ${REBUILD}`,
    );
  if (code === 'SQLITE_READONLY_DIRECTORY' && readonly)
    return new StoreError(
      `${path} is in WAL mode without its ${basename(path)}-wal file, which this user may not create in ${dirname(path)}; start \`proxmox-inventory serve\` as the inventory's owner (it leaves the file readable without one when it stops), or let this user write to ${dirname(path)}`,
    );
  if (code === 'SQLITE_CANTOPEN' || code.startsWith('SQLITE_READONLY') || code === 'EACCES' || code === 'EPERM') {
    const denied = deniedFile(path, readonly);
    if (denied) return new StoreError(denied);
  }
  return err;
}

/** The first of the inventory's files this user may not use as it needs, said as a sentence. */
function deniedFile(path: string, readonly: boolean): string | undefined {
  const uid = process.getuid?.() ?? '?';
  const { R_OK, W_OK, X_OK } = constants;
  const dir = dirname(path);
  const fileAccess = readonly ? R_OK : R_OK | W_OK;
  // A writer creates the -wal and -shm files beside the database; a reader only passes through.
  const checks: Array<[string, number]> = [
    [dir, readonly ? X_OK : X_OK | W_OK],
    [path, fileAccess],
    [`${path}-wal`, fileAccess],
    [`${path}-shm`, fileAccess],
  ];
  for (const [file, mode] of checks) {
    try {
      accessSync(file, mode);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      const verb = readonly ? (file === dir ? 'entered' : 'read') : 'written';
      return readonly
        ? `${file} may not be ${verb} by this user (uid ${uid}); give it read access (README "Store files": a group shared with the daemon's user) or run \`mcp\` as the daemon's user`
        : `${file} may not be ${verb} by this user (uid ${uid}); run the daemon as the user that owns the inventory, or make this user the owner of ${dir} and its files`;
    }
  }
  return undefined;
}
