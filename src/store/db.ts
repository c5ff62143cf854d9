/**
 * Opening the store: one SQLite file in WAL mode (readers never block the writer and see either
 * the previous cycle or the new one), migrations applied at start by the writer, and write
 * transactions that always begin IMMEDIATE so a busy writer waits instead of failing.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import * as schema from './schema.js';

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

/** The database cannot be used as it is; the message says what to do. */
export class StoreError extends Error {
  override readonly name = 'StoreError';
}

export function openStore(path: string, { readonly = false, busyTimeoutMs = 5_000 }: OpenStoreOptions = {}): Store {
  if (!readonly && path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const sqlite = new Database(path, { readonly, fileMustExist: readonly });
  sqlite.pragma(`busy_timeout = ${busyTimeoutMs}`);
  if (!readonly) {
    sqlite.pragma('journal_mode = WAL');
    // better-sqlite3 builds with WAL synchronous=NORMAL; the outbox deserves fsync at each commit (one per cycle).
    sqlite.pragma('synchronous = FULL');
    // After a checkpoint, keep the WAL file at most this big (it grows while readers hold old snapshots).
    sqlite.pragma('journal_size_limit = 67108864');
  }
  sqlite.pragma('foreign_keys = ON');
  const db = drizzle(sqlite, { schema });
  if (!readonly) {
    try {
      migrate(db, { migrationsFolder: MIGRATIONS });
    } catch (err) {
      sqlite.close();
      // Development versions rewrote the first migration; a database one of them made cannot be brought forward.
      if (/already exists/.test(String((err as { cause?: unknown }).cause ?? err))) {
        throw new StoreError(`${path} was made by an earlier development version whose schema this one cannot upgrade; move it away and run \`proxmox-inventory sync --once\` or \`serve\` to build it again (it holds a copy of Proxmox data and the change history since it was made)`);
      }
      throw err;
    }
  }
  return {
    db,
    sqlite,
    path,
    readonly,
    write: (fn) => sqlite.transaction(fn).immediate(),
    close: () => sqlite.close(),
  };
}
