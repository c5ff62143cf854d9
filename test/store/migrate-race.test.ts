/**
 * Processes that open the same database at the same moment (`serve` and `sync --once`, or two
 * daemons started together) all succeed: migration is serialised by the write lock, so each
 * migration is applied exactly once and nobody is told to throw the database away. The racers are
 * real processes (test/store/fixtures/open-at-barrier.ts), started once and released together by a
 * barrier file each round, so they really race.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const FIXTURE = fileURLToPath(new URL('./fixtures/open-at-barrier.ts', import.meta.url));
const MIGRATIONS = readMigrationFiles({
  migrationsFolder: fileURLToPath(new URL('../../migrations', import.meta.url)),
});
const RACERS = 4;

/** The racers, and each one's answer lines as they arrive. */
const dir = mkdtempSync(join(tmpdir(), 'pi-migrate-race-'));
const racers: Array<{ child: ChildProcess; lines: string[]; waiters: Array<() => void> }> = [];
let round = 0;

beforeAll(() => {
  for (let id = 0; id < RACERS; id++) {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, dir, String(id)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const racer = { child, lines: [] as string[], waiters: [] as Array<() => void> };
    createInterface({ input: child.stdout! }).on('line', (line) => {
      racer.lines.push(line);
      for (const w of racer.waiters.splice(0)) w();
    });
    racers.push(racer);
  }
});

afterAll(() => {
  writeGo({ stop: true });
  for (const r of racers) r.child.kill();
});

/** Resolves with the racer's first line starting with `prefix` (and removes it). */
async function line(racer: (typeof racers)[number], prefix: RegExp): Promise<string> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const at = racer.lines.findIndex((l) => prefix.test(l));
    if (at >= 0) return racer.lines.splice(at, 1)[0]!;
    if (racer.child.exitCode !== null || Date.now() > deadline)
      throw new Error(`racer stopped or silent; lines: ${racer.lines.join(' | ')}`);
    await new Promise<void>((resolve) => {
      racer.waiters.push(resolve);
      setTimeout(resolve, 1_000);
    });
  }
}

function writeGo(order: object): void {
  const go = join(dir, `go-${round}`);
  writeFileSync(`${go}.tmp`, JSON.stringify(order));
  renameSync(`${go}.tmp`, go); // appears whole
}

/** One round: every racer waiting, then the first `n` open `db` at once; returns their answers. */
async function race(db: string, n: number): Promise<string[]> {
  const r = round;
  await Promise.all(racers.map((racer) => line(racer, new RegExp(`^ready ${r}$`))));
  writeGo({ db, racers: racers.map((_, id) => id).slice(0, n) });
  const answers = await Promise.all(racers.map((racer) => line(racer, new RegExp(`^(opened|failed|skipped) ${r}\\b`))));
  round++;
  return answers.filter((a) => !a.startsWith('skipped'));
}

function inspect(dbPath: string): {
  applied: Array<{ hash: string; created_at: number }>;
  integrity: string;
  journal: string;
} {
  const db = new Database(dbPath, { readonly: true });
  try {
    const journal = db.pragma('journal_mode', { simple: true }) as string;
    return {
      applied: db.prepare('SELECT hash, created_at FROM __drizzle_migrations ORDER BY id').all() as Array<{
        hash: string;
        created_at: number;
      }>,
      integrity: db.pragma('integrity_check', { simple: true }) as string,
      // The last racer to close switches the file to rollback mode (readable without -wal, see
      // db.ts leaveWalMode); two closing at once both find the other open and leave it in WAL.
      journal: journal === 'wal' || journal === 'delete' ? 'wal or delete' : journal,
    };
  } finally {
    db.close();
  }
}

const everyMigrationOnce = MIGRATIONS.map((m) => ({ hash: m.hash, created_at: m.folderMillis }));

describe('opening a database from several processes at once', () => {
  it('a new file: every process succeeds, each migration is applied exactly once', async () => {
    // Before the fix about half of the 4-process rounds had a loser told the database "was made by
    // an earlier development version" (the window is between one process's check and its first write).
    const sizes = Array.from({ length: 24 }, (_, i) => [2, 3, 4, 4][i % 4]!);
    for (const [i, n] of sizes.entries()) {
      const dbPath = join(dir, `new-${i}.db`);
      const answers = await race(dbPath, n);
      expect({ i, n, answers }).toEqual({ i, n, answers: Array.from({ length: n }, () => `opened ${round - 1} wal`) });
      expect(inspect(dbPath)).toEqual({ applied: everyMigrationOnce, integrity: 'ok', journal: 'wal or delete' });
    }
  }, 120_000);

  it('a database before the last migration: it is applied exactly once and the data kept', async () => {
    expect(MIGRATIONS.length).toBeGreaterThan(1);
    for (let i = 0; i < 6; i++) {
      // As drizzle's migrator left a database made before the last migration existed.
      const dbPath = join(dir, `upgrade-${i}.db`);
      const old = new Database(dbPath);
      old.pragma('journal_mode = WAL');
      old.exec('CREATE TABLE "__drizzle_migrations" (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at numeric)');
      for (const m of MIGRATIONS.slice(0, -1)) {
        for (const stmt of m.sql) old.exec(stmt);
        old
          .prepare('INSERT INTO "__drizzle_migrations" ("hash", "created_at") VALUES (?, ?)')
          .run(m.hash, m.folderMillis);
      }
      old.exec("INSERT INTO clusters (name) VALUES ('lab')");
      old.close();

      const answers = await race(dbPath, RACERS);
      expect({ i, answers }).toEqual({ i, answers: Array.from({ length: RACERS }, () => `opened ${round - 1} wal`) });
      expect(inspect(dbPath)).toEqual({ applied: everyMigrationOnce, integrity: 'ok', journal: 'wal or delete' });
      const check = new Database(dbPath, { readonly: true });
      expect(check.prepare('SELECT name FROM clusters').pluck().all()).toEqual(['lab']);
      check.close();
    }
  }, 120_000);
});
