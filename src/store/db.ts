/**
 * Opening the store: one SQLite file in WAL mode (readers never block the writer and see either
 * the previous cycle or the new one), migrations applied at start by the writer under the write
 * lock (so processes opening the file together apply each migration once), and write
 * transactions that always begin IMMEDIATE so a busy writer waits instead of failing. A file that
 * is damaged or another application's is refused before anything is written to it
 * (open-checks.ts); what a writer creates is private to its user (files.ts).
 */
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { readMigrationFiles, type MigrationMeta } from 'drizzle-orm/migrator';
import { StoreError } from './errors.js';
import { createPrivateDir, createPrivateFile } from './files.js';
import { checkInventoryFile, storeErrorFor } from './open-checks.js';
import * as schema from './schema.js';

export { StoreError };

export type Db = BetterSQLite3Database<typeof schema>;

export interface Store {
  db: Db;
  sqlite: Database.Database;
  path: string;
  readonly: boolean;
  /** Runs `fn` in one `BEGIN IMMEDIATE` transaction; a throw rolls everything back. */
  write<T>(fn: () => T): T;
  close(): void;
}

export interface OpenStoreOptions {
  /** Open without writing (the MCP stdio process beside a running daemon); the file must exist. */
  readonly?: boolean;
  busyTimeoutMs?: number;
}

const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));
let migrationFiles: MigrationMeta[] | undefined;
const ourMigrations = (): MigrationMeta[] => (migrationFiles ??= readMigrationFiles({ migrationsFolder: MIGRATIONS }));

export function openStore(path: string, { readonly = false, busyTimeoutMs = 5_000 }: OpenStoreOptions = {}): Store {
  const onDisk = path !== ':memory:';
  let sqlite: Database.Database;
  try {
    if (!readonly && onDisk) {
      createPrivateDir(dirname(path));
      createPrivateFile(path);
    }
    sqlite = new Database(path, { readonly, fileMustExist: readonly });
  } catch (err) {
    throw storeErrorFor(err, path, readonly);
  }
  try {
    sqlite.pragma(`busy_timeout = ${busyTimeoutMs}`);
    checkInventoryFile(sqlite, path, { readonly, migrations: ourMigrations() });
    if (!readonly) {
      enableWal(sqlite, busyTimeoutMs);
      // better-sqlite3 builds with WAL synchronous=NORMAL; the outbox deserves fsync at each commit (one per cycle).
      sqlite.pragma('synchronous = FULL');
      // After a checkpoint, keep the WAL file at most this big (it grows while readers hold old snapshots).
      sqlite.pragma('journal_size_limit = 67108864');
    }
    sqlite.pragma('foreign_keys = ON');
    if (!readonly) migrateOrExplain(sqlite, path);
  } catch (err) {
    sqlite.close();
    throw storeErrorFor(err, path, readonly);
  }
  const db = drizzle(sqlite, { schema });
  return {
    db,
    sqlite,
    path,
    readonly,
    write: (fn) => sqlite.transaction(fn).immediate(),
    close: () => {
      if (!readonly && onDisk) leaveWalMode(sqlite);
      sqlite.close();
    },
  };
}

/**
 * A reader that may not write in DATA_DIR (`mcp` run by another user, README "Store files") can
 * open a WAL database only while its -wal and -shm files exist: it cannot create them. SQLite
 * deletes them when the last connection closes, so once the daemon stopped every read failed
 * with "attempt to write a readonly database". SQLITE_FCNTL_PERSIST_WAL would keep them, but
 * better-sqlite3 offers no file control; so a writer that closes switches the file back to
 * rollback mode, which a reader opens with read permission alone, and the next writer to open
 * switches it to WAL again (enableWal). While another connection is open (a reader, `serve`
 * beside `sync --once`) SQLite refuses the switch at once with SQLITE_BUSY: that connection keeps
 * the -wal and -shm files in place, which is all a reader needs, and nothing is lost.
 */
function leaveWalMode(sqlite: Database.Database): void {
  try {
    sqlite.pragma('busy_timeout = 0');
    sqlite.pragma('journal_mode = DELETE');
  } catch {
    // another connection is open (see above): the file stays in WAL mode, its -wal and -shm in place
  }
}

function migrateOrExplain(sqlite: Database.Database, path: string): void {
  try {
    migrate(sqlite);
  } catch (err) {
    // Development versions rewrote the first migration; a database one of them made cannot be brought forward.
    if (/already exists/.test(String((err as { cause?: unknown }).cause ?? err))) {
      throw new StoreError(
        `${path} was made by an earlier development version whose schema this one cannot upgrade; move it away and run \`proxmox-inventory sync --once\` or \`serve\` to build it again (it holds a copy of Proxmox data and the change history since it was made)`,
      );
    }
    throw err;
  }
}

/**
 * `PRAGMA journal_mode = WAL`, retried while the file is busy. A new file starts in rollback
 * mode, where the switch needs an exclusive lock on top of the shared one the pragma already
 * holds: two processes switching at once deadlock, and SQLite answers one of them SQLITE_BUSY at
 * once instead of waiting (busy_timeout does not apply). By its retry the other has switched the
 * file, and the pragma finds it in WAL mode already.
 */
function enableWal(sqlite: Database.Database, timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let ms = 1; ; ms = Math.min(ms * 2, 50)) {
    try {
      sqlite.pragma('journal_mode = WAL');
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() >= deadline) throw err;
      Atomics.wait(pause, 0, 0, ms); // openStore is synchronous: a short blocking sleep, as SQLite's own busy handler does
    }
  }
}

/**
 * Applies the pending migrations in one `BEGIN IMMEDIATE` transaction: the check of what is
 * applied and the applying happen under the write lock, so when several processes open a new (or
 * older) database at once, one migrates and the others wait (busy_timeout) and then find nothing
 * to do. drizzle's own migrator (drizzle-orm 0.45, SQLiteSyncDialect.migrate) reads the last
 * applied migration in autocommit mode and only then sends a raw `BEGIN`, so two processes could
 * both decide to apply the same migration, and the loser failed with "table … already exists";
 * wrapping it in a transaction does not help, since its raw `BEGIN` throws "cannot start a
 * transaction within a transaction". This is the same procedure, with the same bookkeeping
 * (`__drizzle_migrations` rows of hash and folder time, compared by time), so databases either
 * one migrated stay interchangeable. As with drizzle's, every statement runs inside the
 * transaction: a `PRAGMA foreign_keys` in a migration would have no effect.
 */
function migrate(sqlite: Database.Database): void {
  const migrations = ourMigrations();
  sqlite
    .transaction(() => {
      sqlite.exec(
        'CREATE TABLE IF NOT EXISTS "__drizzle_migrations" (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at numeric)',
      );
      const last = sqlite
        .prepare('SELECT created_at FROM "__drizzle_migrations" ORDER BY created_at DESC LIMIT 1')
        .pluck()
        .get() as number | undefined;
      const record = sqlite.prepare('INSERT INTO "__drizzle_migrations" ("hash", "created_at") VALUES (?, ?)');
      for (const migration of migrations) {
        if (last != null && Number(last) >= migration.folderMillis) continue;
        for (const statement of migration.sql) sqlite.exec(statement);
        record.run(migration.hash, migration.folderMillis);
      }
    })
    .immediate();
}
