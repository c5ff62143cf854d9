/**
 * History retention (store/retention.ts) against a real SQLite file: old sync runs and events go,
 * recent ones stay, each cluster's latest run and latest successful run stay whatever their age,
 * events from `keepEventsFromSeq` on stay, deletion runs in bounded batches; the `retention`
 * config section; the scheduler running it; and the index the "latest successful run" query uses.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, type Env } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { openStore, type Store } from '../../src/store/db.js';
import { syncStatus } from '../../src/store/queries.js';
import { pruneHistory } from '../../src/store/retention.js';
import { startScheduler } from '../../src/sync/scheduler.js';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 8, 1, 12);
const dir = mkdtempSync(join(tmpdir(), 'pi-retention-'));
let opened: Store[] = [];
let fileNo = 0;

function newStore(prepare?: (db: Database.Database) => void): Store {
  const path = join(dir, `inventory-${fileNo++}.db`);
  if (prepare) {
    const db = new Database(path);
    prepare(db);
    db.close();
  }
  const store = openStore(path);
  opened.push(store);
  return store;
}

afterEach(() => {
  for (const s of opened) if (s.sqlite.open) s.close();
  opened = [];
});

/** Inserts a sync run that finished at `at`; returns its id. */
function addRun(store: Store, cluster: string, at: number, ok: boolean): number {
  return Number(
    store.sqlite
      .prepare(
        `INSERT INTO sync_runs (cluster, started_at, finished_at, duration_ms, ok, error, calls, calls_total)
    VALUES (?, ?, ?, 100, ?, ?, '{"GET /cluster/resources":1}', 1)`,
      )
      .run(cluster, at - 100, at, ok ? 1 : 0, ok ? null : 'timeout').lastInsertRowid,
  );
}

/** Inserts `n` events occurring at `at`; returns their seqs. */
function addEvents(store: Store, at: number, n = 1): number[] {
  const insert = store.sqlite
    .prepare(`INSERT INTO events (id, type, occurred_at, cluster, subject_kind, subject_id, data)
    VALUES (?, 'guest.updated', ?, 'lab', 'guest', 'lab/100', '{}')`);
  return store.sqlite.transaction(() =>
    Array.from({ length: n }, () => Number(insert.run(`evt_${randomUUID()}`, at).lastInsertRowid)),
  )();
}

const runIds = (store: Store): number[] =>
  store.sqlite.prepare('SELECT id FROM sync_runs ORDER BY id').pluck().all() as number[];
const eventSeqs = (store: Store): number[] =>
  store.sqlite.prepare('SELECT seq FROM events ORDER BY seq').pluck().all() as number[];

describe('pruneHistory: sync_runs', () => {
  it("deletes runs older than the window, keeping recent ones and each cluster's latest and latest successful run", async () => {
    const store = newStore();
    const keep: number[] = [];
    // prod: a run every 6 hours for 10 days, failing for the last 8 days (a long failure streak):
    // its latest successful run is 8 days old and stays. Its run exactly 7 days old is not older
    // than the window and stays too.
    const prodRuns = Array.from({ length: 41 }, (_, i) => {
      const at = NOW - 10 * DAY + i * 6 * 3_600_000;
      return { at, id: addRun(store, 'prod', at, at < NOW - 8 * DAY) };
    });
    const lastOk = prodRuns.filter((r) => r.at < NOW - 8 * DAY).at(-1)!;
    expect(prodRuns.some((r) => r.at === NOW - 7 * DAY)).toBe(true);
    keep.push(lastOk.id, ...prodRuns.filter((r) => r.at >= NOW - 7 * DAY).map((r) => r.id));
    // lab: removed from the config 20 days ago; its last run failed, the one before succeeded: both stay.
    addRun(store, 'lab', NOW - 30 * DAY, true);
    keep.push(addRun(store, 'lab', NOW - 21 * DAY, true), addRun(store, 'lab', NOW - 20 * DAY, false));
    // edge: never succeeded; only its latest run stays.
    addRun(store, 'edge', NOW - 9 * DAY, false);
    keep.push(addRun(store, 'edge', NOW - 8 * DAY, false));

    const result = await pruneHistory(store, { syncRunsDays: 7, eventsDays: 0 }, NOW);
    expect(runIds(store)).toEqual(keep.sort((a, b) => a - b));
    expect(result).toMatchObject({ syncRuns: 41 + 3 + 2 - keep.length, events: 0 });

    // sync_status still has both runs of the failing cluster.
    store.sqlite.prepare("INSERT INTO clusters (name) VALUES ('prod')").run();
    const prod = syncStatus(store, NOW).clusters.find((c) => c.cluster === 'prod')!;
    expect(prod.lastRun).toMatchObject({ ok: false, finishedAt: new Date(prodRuns.at(-1)!.at).toISOString() });
    expect(prod.lastSuccessfulRun).toMatchObject({ finishedAt: new Date(lastOk.at).toISOString() });

    // A second pass finds nothing more.
    expect(await pruneHistory(store, { syncRunsDays: 7, eventsDays: 0 }, NOW)).toMatchObject({ syncRuns: 0 });
  });

  it('goes by when a run finished, not by the order runs were written in', async () => {
    const store = newStore();
    const recent = addRun(store, 'a', NOW - DAY, true);
    addRun(store, 'b', NOW - 8 * DAY, true);
    const latestB = addRun(store, 'b', NOW - 2 * DAY, true);
    addRun(store, 'a', NOW - 9 * DAY, false); // written after a recent run
    const latestA = addRun(store, 'a', NOW, true);
    expect(await pruneHistory(store, { syncRunsDays: 7, eventsDays: 0 }, NOW)).toMatchObject({ syncRuns: 2 });
    expect(runIds(store)).toEqual([recent, latestB, latestA]);
  });
});

describe('pruneHistory: events', () => {
  it('deletes events older than the window and keeps recent ones and those from keepEventsFromSeq on', async () => {
    const store = newStore();
    const old = addEvents(store, NOW - 200 * DAY, 5);
    const undelivered = addEvents(store, NOW - 100 * DAY, 3); // older than 90 days, not yet delivered
    const atCutoff = addEvents(store, NOW - 90 * DAY);
    const recent = addEvents(store, NOW - DAY, 2);

    const result = await pruneHistory(
      store,
      { syncRunsDays: 0, eventsDays: 90, keepEventsFromSeq: undelivered[0] },
      NOW,
    );
    expect(result).toMatchObject({ syncRuns: 0, events: old.length });
    expect(eventSeqs(store)).toEqual([...undelivered, ...atCutoff, ...recent]);

    // Once delivered (the bound moves past them), they go too.
    expect(
      await pruneHistory(store, { syncRunsDays: 0, eventsDays: 90, keepEventsFromSeq: recent[0] }, NOW),
    ).toMatchObject({ events: 3 });
    expect(eventSeqs(store)).toEqual([...atCutoff, ...recent]);
  });

  it('keeps old events at or after the bound when it falls inside a run of old events', async () => {
    const store = newStore();
    const seqs = addEvents(store, NOW - 365 * DAY, 10);
    expect(
      await pruneHistory(store, { syncRunsDays: 0, eventsDays: 90, keepEventsFromSeq: seqs[6]! }, NOW),
    ).toMatchObject({ events: 6 });
    expect(eventSeqs(store)).toEqual(seqs.slice(6));
  });

  it('never hands out a deleted seq again (AUTOINCREMENT), so an event cursor never moves back', async () => {
    // (The highest run id is always some cluster's latest run, which is never deleted.)
    const store = newStore();
    const seqs = addEvents(store, NOW - 100 * DAY, 4);
    expect(await pruneHistory(store, { syncRunsDays: 7, eventsDays: 90 }, NOW)).toMatchObject({ events: 4 });
    expect(eventSeqs(store)).toEqual([]);
    expect(addEvents(store, NOW)[0]).toBe(seqs.at(-1)! + 1);
  });
});

describe('pruneHistory: batches, limits and vacuum', () => {
  it('deletes more rows than a batch in several short transactions, letting the event loop run between them', async () => {
    const store = newStore();
    addEvents(store, NOW - 100 * DAY, 12_345);
    const keptEvents = addEvents(store, NOW - DAY, 10);
    store.sqlite.transaction(() => {
      for (let i = 0; i < 2_500; i++) addRun(store, 'a', NOW - 30 * DAY + i, i % 2 === 0);
    })();
    addRun(store, 'a', NOW, true);

    const write = store.write;
    const perTransaction: number[] = [];
    store.write = <T>(fn: () => T): T => {
      expect(store.sqlite.inTransaction).toBe(false); // each batch begins its own transaction
      const before = store.sqlite
        .prepare('SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM sync_runs)')
        .pluck()
        .get() as number;
      const out = write(fn);
      perTransaction.push(
        before -
          (store.sqlite
            .prepare('SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM sync_runs)')
            .pluck()
            .get() as number),
      );
      return out;
    };
    let turns = 0;
    const spin = (): void => {
      turns++;
      if (turns < 1_000) setImmediate(spin);
    };
    setImmediate(spin);

    const result = await pruneHistory(store, { syncRunsDays: 7, eventsDays: 90, batchSize: 1_000 }, NOW);
    // sync_runs: 2,500 old (the latest successful run is the recent one): 3 batches; events: 12,345: 13 batches.
    expect(result).toEqual({ syncRuns: 2_500, events: 12_345, batches: 16, pagesFreed: 0 });
    expect(perTransaction).toEqual([1_000, 1_000, 500, ...Array(12).fill(1_000), 345]);
    expect(turns).toBeGreaterThanOrEqual(14); // the event loop ran between batches
    expect(eventSeqs(store)).toEqual(keptEvents);
    expect(runIds(store)).toHaveLength(1);
  });

  it('uses batches of 5,000 by default', async () => {
    const store = newStore();
    addEvents(store, NOW - 100 * DAY, 6_000);
    expect(await pruneHistory(store, { syncRunsDays: 7, eventsDays: 90 }, NOW)).toEqual({
      syncRuns: 0,
      events: 6_000,
      batches: 2,
      pagesFreed: 0,
    });
  });

  it('0 keeps history forever', async () => {
    const store = newStore();
    addEvents(store, NOW - 3_000 * DAY, 3);
    addRun(store, 'a', NOW - 3_000 * DAY, true);
    addRun(store, 'a', NOW - 2_000 * DAY, true);
    expect(await pruneHistory(store, { syncRunsDays: 0, eventsDays: 0 }, NOW)).toEqual({
      syncRuns: 0,
      events: 0,
      batches: 0,
      pagesFreed: 0,
    });
    expect(eventSeqs(store)).toHaveLength(3);
    expect(runIds(store)).toHaveLength(2);
  });

  it('stops between batches when aborted', async () => {
    const store = newStore();
    addEvents(store, NOW - 100 * DAY, 2_500);
    const controller = new AbortController();
    const write = store.write;
    store.write = <T>(fn: () => T): T => {
      const out = write(fn);
      controller.abort();
      return out;
    };
    expect(
      await pruneHistory(store, { syncRunsDays: 0, eventsDays: 90, batchSize: 1_000 }, NOW, {
        signal: controller.signal,
      }),
    ).toMatchObject({ events: 1_000, batches: 1 });
    expect(eventSeqs(store)).toHaveLength(1_500);
  });

  it('gives freed pages back only when the database uses auto_vacuum=incremental', async () => {
    const fill = (store: Store): void => {
      store.sqlite
        .prepare(
          `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
        INSERT INTO events (id, type, occurred_at, subject_kind, subject_id, data)
        SELECT 'evt_' || i, 'guest.updated', ?, 'guest', 'lab/' || i, hex(randomblob(200)) FROM n`,
        )
        .run(NOW - 100 * DAY);
    };
    // Ours: auto_vacuum off; the pages stay in the file for new rows.
    const plain = newStore();
    expect(plain.sqlite.pragma('auto_vacuum', { simple: true })).toBe(0);
    fill(plain);
    expect(await pruneHistory(plain, { syncRunsDays: 0, eventsDays: 90 }, NOW)).toMatchObject({
      events: 5_000,
      pagesFreed: 0,
    });
    expect(plain.sqlite.pragma('freelist_count', { simple: true })).toBeGreaterThan(100);
    // A database made with auto_vacuum=incremental (chosen before its first table).
    const incremental = newStore((db) => db.pragma('auto_vacuum = INCREMENTAL'));
    expect(incremental.sqlite.pragma('auto_vacuum', { simple: true })).toBe(2);
    fill(incremental);
    const result = await pruneHistory(incremental, { syncRunsDays: 0, eventsDays: 90 }, NOW);
    expect(result.events).toBe(5_000);
    expect(result.pagesFreed).toBeGreaterThan(100);
    expect(incremental.sqlite.pragma('freelist_count', { simple: true })).toBe(0);
    expect(incremental.sqlite.pragma('integrity_check', { simple: true })).toBe('ok');
  });
});

describe('the "latest successful run" query (store/queries/status.ts)', () => {
  it('searches the sync_runs (cluster, ok, id) index instead of scanning sync_runs', () => {
    const store = newStore();
    // A long failure streak: the query has to look past 3,000 failed runs.
    store.sqlite.transaction(() => {
      addRun(store, 'lab', NOW - DAY, true);
      for (let i = 0; i < 3_000; i++) addRun(store, 'lab', NOW - DAY + i * 15_000, false);
    })();
    store.sqlite.prepare("INSERT INTO clusters (name) VALUES ('lab')").run();
    // Catch the SQL syncStatus really prepares (a new store: nothing is cached yet).
    const seen: string[] = [];
    const prepare = store.sqlite.prepare.bind(store.sqlite);
    store.sqlite.prepare = ((source: string) => {
      seen.push(source);
      return prepare(source);
    }) as typeof store.sqlite.prepare;
    expect(syncStatus(store, NOW).clusters[0]!.lastSuccessfulRun).toMatchObject({
      finishedAt: new Date(NOW - DAY).toISOString(),
    });
    const query = seen.find((s) => /from "sync_runs"/i.test(s) && /"ok" = \?/.test(s));
    expect(query).toBeDefined();
    const plan = (prepare(`EXPLAIN QUERY PLAN ${query}`).all('lab', 1, 1) as Array<{ detail: string }>).map(
      (r) => r.detail,
    );
    expect(plan.filter((d) => /^SCAN/.test(d))).toEqual([]);
    expect(plan.join(' | ')).toMatch(
      /SEARCH sync_runs USING (COVERING )?INDEX sync_runs_cluster_ok \(cluster=\? AND ok=\?\)/,
    );
    expect(plan.join(' | ')).not.toMatch(/TEMP B-TREE/);
  });
});

describe('the retention config section', () => {
  const base: Env = {
    PVE_URL: 'https://pve1.example.com:8006',
    PVE_TOKEN_ID: 'inventory@pve!sync',
    PVE_TOKEN_SECRET: 'x'.repeat(36),
    PVE_INSECURE: '1',
  };
  const problems = (env: Env, configPath?: string): string[] => {
    try {
      loadConfig({ env, configPath, cwd: dir });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).problems;
    }
    throw new Error('expected a ConfigError');
  };
  const file = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('defaults to 7 days of sync runs and 90 days of events', () => {
    expect(loadConfig({ env: base, cwd: dir }).retention).toEqual({ syncRunsDays: 7, eventsDays: 90 });
  });

  it('reads the file section, the environment winning; 0 keeps forever', () => {
    const path = file('retention.yaml', 'retention: { syncRunsDays: 30, eventsDays: 365 }\n');
    expect(loadConfig({ env: base, configPath: path, cwd: dir }).retention).toEqual({
      syncRunsDays: 30,
      eventsDays: 365,
    });
    expect(
      loadConfig({
        env: { ...base, RETENTION_SYNC_RUNS_DAYS: '0', RETENTION_EVENTS_DAYS: ' 14 ' },
        configPath: path,
        cwd: dir,
      }).retention,
    ).toEqual({ syncRunsDays: 0, eventsDays: 14 });
  });

  it('names the variable or key of a bad value and says what to write', () => {
    expect(problems({ ...base, RETENTION_SYNC_RUNS_DAYS: '-1', RETENTION_EVENTS_DAYS: '1.5' })).toEqual([
      'RETENTION_SYNC_RUNS_DAYS: "-1" is not valid: expected a whole number of days from 0 to 36500 (0 keeps it forever), e.g. 7, the default',
      'RETENTION_EVENTS_DAYS: "1.5" is not valid: expected a whole number of days from 0 to 36500 (0 keeps it forever), e.g. 90, the default',
    ]);
    const path = file('bad-retention.yaml', 'retention: { syncRunsDays: week, eventsDays: 40000, syncRunDays: 3 }\n');
    expect(problems(base, path)).toEqual([
      'retention.syncRunsDays: "week" is not valid: expected a whole number of days from 0 to 36500 (0 keeps it forever), e.g. 7, the default',
      'retention.eventsDays: 40000 is not valid: expected a whole number of days from 0 to 36500 (0 keeps it forever), e.g. 90, the default',
      'retention: unknown key "syncRunDays"; did you mean "syncRunsDays"?',
    ]);
  });
});

describe('the scheduler runs retention', () => {
  function capture(): { log: ReturnType<typeof createLogger>; records: Array<Record<string, unknown>> } {
    const records: Array<Record<string, unknown>> = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean))
          records.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    return { log: createLogger({ level: 'debug', destination: stream }), records };
  }
  const off = { schedule: 'off', keep: 0, maxAgeDays: 0 };
  const until = async (check: () => boolean): Promise<void> => {
    const deadline = Date.now() + 5_000;
    while (!check()) {
      if (Date.now() > deadline) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  it('shortly after start and then every interval, logging the counts; keepEventsFromSeq is asked each time', async () => {
    const store = newStore();
    addEvents(store, Date.now() - 100 * DAY, 3);
    const protectedSeq = addEvents(store, Date.now() - 100 * DAY, 2)[0]!;
    addRun(store, 'a', Date.now() - 30 * DAY, true);
    addRun(store, 'a', Date.now(), true);
    const { log, records } = capture();
    let asked = 0;
    const scheduler = startScheduler({
      syncs: [],
      store,
      intervalSeconds: 0,
      snapshots: off,
      log,
      retention: {
        syncRunsDays: 7,
        eventsDays: 90,
        firstAfterMs: 50,
        everyMs: 100,
        keepEventsFromSeq: () => (asked++, protectedSeq),
      },
    });
    await until(() => records.filter((r) => /history/.test(String(r.msg))).length >= 3);
    await scheduler.stop();
    const runs = records.filter((r) => /history/.test(String(r.msg)));
    expect(runs[0]).toMatchObject({
      level: 30,
      msg: 'old history pruned',
      syncRuns: 1,
      events: 3,
      syncRunsDays: 7,
      eventsDays: 90,
    });
    expect(runs[1]).toMatchObject({ level: 20, msg: 'history retention: nothing old enough', syncRuns: 0, events: 0 });
    expect(asked).toBeGreaterThanOrEqual(3);
    expect(eventSeqs(store)).toHaveLength(2);
    // Nothing runs after stop().
    const count = records.length;
    await new Promise((r) => setTimeout(r, 250));
    expect(records.length).toBe(count);
  });

  it('logs a failure and carries on; never throws', async () => {
    const store = newStore();
    const { log, records } = capture();
    const scheduler = startScheduler({
      syncs: [],
      store,
      intervalSeconds: 0,
      snapshots: off,
      log,
      retention: { syncRunsDays: 7, eventsDays: 90, firstAfterMs: 10, everyMs: 50 },
    });
    store.sqlite.exec('DROP TABLE events'); // whatever goes wrong inside
    await until(() => records.filter((r) => r.level === 50).length >= 2);
    expect(await scheduler.pruneNow()).toBeUndefined();
    await scheduler.stop();
    expect(records.find((r) => r.level === 50)).toMatchObject({
      msg: 'history retention failed; it runs again at the next interval',
      err: expect.objectContaining({ message: expect.stringMatching(/no such table: events/) }),
    });
  });

  it('does nothing when both windows are 0 or retention is not configured', async () => {
    const store = newStore();
    addEvents(store, NOW - 1_000 * DAY);
    const { log, records } = capture();
    const a = startScheduler({
      syncs: [],
      store,
      intervalSeconds: 0,
      snapshots: off,
      log,
      retention: { syncRunsDays: 0, eventsDays: 0, firstAfterMs: 1, everyMs: 1 },
    });
    const b = startScheduler({ syncs: [], store, intervalSeconds: 0, snapshots: off, log });
    await new Promise((r) => setTimeout(r, 100));
    expect(await b.pruneNow()).toBeUndefined();
    await Promise.all([a.stop(), b.stop()]);
    expect(records).toEqual([]);
    expect(eventSeqs(store)).toHaveLength(1);
  });
});
