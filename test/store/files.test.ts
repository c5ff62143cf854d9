/**
 * The inventory's files hold every guest's IP and MAC addresses and descriptions: what the daemon
 * creates is its user's alone (DATA_DIR 0700, the database and its -wal/-shm 0600) whatever the
 * umask, and modes an operator chose for existing files are kept, with one warning at start.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startServing } from '../../src/main.js';
import { startSimulator } from '../../src/sim/server.js';
import { openStore } from '../../src/store/db.js';
import { acquireDataDirLock } from '../../src/store/lock.js';

const modeOf = (path: string): string => `0${(statSync(path).mode & 0o777).toString(8)}`;
const scratch = (): string => mkdtempSync(join(tmpdir(), 'pi-files-'));

const umaskBefore = process.umask();
afterEach(() => void process.umask(umaskBefore));

describe('files the store creates', () => {
  for (const umask of [0o022, 0o000]) {
    it(`under umask 0${umask.toString(8)}: DATA_DIR and its missing parents 0700, the database, -wal and -shm 0600`, () => {
      process.umask(umask);
      const base = scratch();
      const dataDir = join(base, 'var', 'inventory');
      const dbPath = join(dataDir, 'inventory.db');
      const store = openStore(dbPath);
      try {
        // While a writer has it open the file is in WAL mode, with both companions.
        expect({
          parent: modeOf(join(base, 'var')),
          dataDir: modeOf(dataDir),
          db: modeOf(dbPath),
          wal: modeOf(`${dbPath}-wal`),
          shm: modeOf(`${dbPath}-shm`),
        }).toEqual({ parent: '0700', dataDir: '0700', db: '0600', wal: '0600', shm: '0600' });
      } finally {
        store.close();
      }
    });
  }

  it("serve's lock creates DATA_DIR 0700 too (serve takes it before it opens the store)", () => {
    process.umask(0o022);
    const dataDir = join(scratch(), 'data');
    const lock = acquireDataDirLock(dataDir);
    lock.release();
    expect(modeOf(dataDir)).toBe('0700');
  });

  it('`sim --write-env` creates its directory 0700 (./data by default, where the inventory goes too)', async () => {
    const dir = join(scratch(), 'data');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli.ts', 'sim', '--port', '0', '--guests', '3', '--write-env', join(dir, 'sim.env')],
      { env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'ignore'] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d;
          if (out.includes('Ctrl-C stops it.')) resolve();
        });
        child.on('exit', (code) => reject(new Error(`sim exited with ${code}: ${out}`)));
      });
      expect(modeOf(dir)).toBe('0700');
    } finally {
      child.kill('SIGTERM');
    }
  });
});

describe('modes an operator chose', () => {
  it('are kept, and serve warns once at start, naming each path, its mode and the chmod that closes it', async () => {
    process.umask(0o022);
    const dataDir = join(scratch(), 'shared data');
    mkdirSync(dataDir);
    chmodSync(dataDir, 0o755);
    const dbPath = join(dataDir, 'inventory.db');
    openStore(dbPath).close();
    chmodSync(dbPath, 0o644);

    const sim = await startSimulator({ tls: false, guests: 5, nodes: 1, seed: 3, taskDelayMs: 5 });
    const lines: Array<{ level: number; msg: string; path?: string; mode?: string }> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as never);
        done();
      },
    });
    const config = loadConfig({
      env: {
        PVE_URL: sim.url,
        PVE_TOKEN_ID: sim.tokens.full.id,
        PVE_TOKEN_SECRET: sim.tokens.full.secret,
        DATA_DIR: dataDir,
        SYNC_INTERVAL_SECONDS: '1',
        SNAPSHOT_SCHEDULE: 'off',
        MCP_HTTP: 'off',
      },
    });
    const serving = await startServing(config, { log: createLogger({ level: 'info', destination: sink }) });
    try {
      // Cycles after the start add no warning of their own.
      const deadline = Date.now() + 10_000;
      while (
        (serving.store.sqlite.prepare('SELECT count(*) FROM sync_runs').pluck().get() as number) < 2 &&
        Date.now() < deadline
      )
        await new Promise((r) => setTimeout(r, 50));
    } finally {
      await serving.close();
      await sim.close();
    }
    const warnings = lines.filter((l) => l.level === 40).map(({ path, mode, msg }) => ({ path, mode, msg }));
    expect(warnings).toEqual([
      {
        path: dataDir,
        mode: '0755',
        msg: `${dataDir} (the inventory directory: guests' IP and MAC addresses, descriptions, tags) is mode 0755, open to users other than its owner; unless a group is meant to read the inventory, run chmod 700 '${dataDir}'`,
      },
      {
        path: dbPath,
        mode: '0644',
        msg: `${dbPath} (the inventory database: guests' IP and MAC addresses, descriptions, tags; its -wal and -shm files take its mode) is mode 0644, open to users other than its owner; unless a group is meant to read the inventory, run chmod 600 '${dbPath}'`,
      },
    ]);
    // Warned about, not changed: the operator may mean a group to read it (README "Store files").
    expect({ dataDir: modeOf(dataDir), db: modeOf(dbPath), wal: existsSync(`${dbPath}-wal`) }).toEqual({
      dataDir: '0755',
      db: '0644',
      wal: false,
    });
  });

  it('a new database in an existing DATA_DIR is still 0600, and the directory keeps its mode', () => {
    process.umask(0o022);
    const dataDir = scratch();
    chmodSync(dataDir, 0o750);
    writeFileSync(join(dataDir, 'notes.txt'), 'the operator was here\n');
    const store = openStore(join(dataDir, 'inventory.db'));
    store.close();
    expect({ dataDir: modeOf(dataDir), db: modeOf(join(dataDir, 'inventory.db')) }).toEqual({
      dataDir: '0750',
      db: '0600',
    });
  });
});
