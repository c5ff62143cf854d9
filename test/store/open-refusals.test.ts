/**
 * A file at the inventory's path that is not an inventory (damaged, cut short, or another
 * application's database) is refused at open with one sentence naming the file and what to do,
 * and nothing is written to it. Every command says that sentence and exits 1 without a stack;
 * the stdio `mcp` says it in every answer, until the file is fixed.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, StoreError } from '../../src/store/db.js';
import { startHarness } from '../sync/helpers.js';

const REBUILD = 'move it aside, and `proxmox-inventory sync --once` or `serve` builds a new inventory';
const notDatabase = (path: string): string =>
  `${path} is not an SQLite database (it is damaged, or some other file); ${REBUILD}`;
const damaged = (path: string): string =>
  `${path} is damaged (SQLite: "database disk image is malformed"; a truncated copy does this); ${REBUILD}`;
const foreign = (path: string, tables: string): string =>
  `${path} holds tables of another application (${tables}), not a proxmox-inventory inventory, and was left unchanged; point DATA_DIR at a directory of the inventory's own (it keeps DATA_DIR/inventory.db there)`;

const newDataDir = (): string => mkdtempSync(join(tmpdir(), 'pi-refuse-'));
const digest = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

function openError(path: string, readonly = false): unknown {
  try {
    openStore(path, { readonly }).close();
  } catch (err) {
    return err;
  }
  return undefined;
}

/** What openStore throws, as `StoreError: message`, for an exact comparison that also checks the class. */
const refusal = (path: string, readonly = false): string => {
  const err = openError(path, readonly);
  return err instanceof StoreError ? `StoreError: ${err.message}` : `not a StoreError: ${String(err)}`;
};

/** A real inventory of 400 guests, synced from the simulator and checkpointed into the one file. */
let inventory: string;
beforeAll(async () => {
  const h = await startHarness({ guests: 400, nodes: 3, seed: 29 });
  await h.sync.runCycle();
  await h.close();
  inventory = join(newDataDir(), 'inventory.db');
  copyFileSync(h.dbPath, inventory);
}, 60_000);

/** Another application's database: its own tables, rollback journal, as such apps leave it. */
function otherApplicationDb(path: string, migrations = false): void {
  const db = new Database(path);
  db.exec(`CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT);
           CREATE TABLE messages (id INTEGER PRIMARY KEY, body TEXT);
           INSERT INTO users (email) VALUES ('a@example.org');`);
  if (migrations) {
    // Another drizzle application keeps the same bookkeeping table, with its own migrations in it.
    db.exec(`CREATE TABLE "__drizzle_migrations" (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at numeric);
             INSERT INTO "__drizzle_migrations" (hash, created_at) VALUES ('0123abcd', 1600000000000);`);
  }
  db.close();
}

describe('openStore refuses what is not an inventory, and writes nothing to it', () => {
  it('garbage bytes: "not an SQLite database", for the writer and for a reader', () => {
    const path = join(newDataDir(), 'inventory.db');
    writeFileSync(path, 'this is not a database\n'.repeat(400));
    const before = digest(path);
    expect(refusal(path)).toBe(`StoreError: ${notDatabase(path)}`);
    expect(refusal(path, true)).toBe(`StoreError: ${notDatabase(path)}`);
    expect(digest(path)).toBe(before);
  });

  it('a real inventory cut in half (or to its first page): "damaged", without a PRAGMA quick_check', () => {
    for (const keep of [0.5, 0.9, 4096 / statSync(inventory).size]) {
      const path = join(newDataDir(), 'inventory.db');
      copyFileSync(inventory, path);
      truncateSync(path, Math.floor(statSync(path).size * keep));
      expect({ keep, writer: refusal(path), reader: refusal(path, true) }).toEqual({
        keep,
        writer: `StoreError: ${damaged(path)}`,
        reader: `StoreError: ${damaged(path)}`,
      });
    }
  });

  it("another application's database is neither migrated nor switched to WAL", () => {
    for (const migrations of [false, true]) {
      const path = join(newDataDir(), 'inventory.db');
      otherApplicationDb(path, migrations);
      const before = digest(path);
      expect(refusal(path)).toBe(`StoreError: ${foreign(path, 'users, messages')}`);
      expect(refusal(path, true)).toBe(`StoreError: ${foreign(path, 'users, messages')}`);
      expect(digest(path)).toBe(before);
      const db = new Database(path, { readonly: true });
      expect(db.pragma('journal_mode', { simple: true })).toBe('delete');
      db.close();
    }
  });

  it('an inventory of ours with a table this version does not know (a newer version made it) still opens', () => {
    const path = join(newDataDir(), 'inventory.db');
    copyFileSync(inventory, path);
    const db = new Database(path);
    db.exec('CREATE TABLE webhooks_outbox (id INTEGER PRIMARY KEY)');
    db.close();
    const store = openStore(path);
    expect(store.sqlite.prepare('SELECT count(*) FROM guests').pluck().get()).toBe(400);
    store.close();
  });

  it('an empty file is a new inventory for the writer; a reader is told there is none yet', () => {
    const path = join(newDataDir(), 'inventory.db');
    writeFileSync(path, '');
    expect(refusal(path, true)).toBe(
      `StoreError: ${path} holds no inventory yet: start \`proxmox-inventory serve\` (or run \`proxmox-inventory sync --once\`) and ask again`,
    );
    const store = openStore(path);
    expect(store.sqlite.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'guests'").pluck().get()).toBe(1);
    store.close();
  });
});

/** A command as an operator runs it; the commands of one test run side by side. */
function cli(args: string[], dataDir: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    env: {
      PATH: process.env.PATH ?? '',
      DATA_DIR: dataDir,
      // Never reached: the store is opened before any connection to Proxmox.
      PVE_URL: 'https://127.0.0.1:9',
      PVE_TOKEN_ID: 'inventory@pve!refusals',
      PVE_TOKEN_SECRET: '00000000-0000-0000-0000-000000000000',
      PVE_FINGERPRINT: Array.from({ length: 32 }, () => 'AB').join(':'),
      MCP_HTTP: 'off',
    },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const stuck = setTimeout(() => child.kill('SIGKILL'), 45_000); // a serve that did not refuse runs on
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(stuck);
      resolve({ code, stdout, stderr });
    }),
  );
}

describe('every command says the sentence and exits 1, without a stack', () => {
  const outcomes = (commands: string[][], dataDir: string) =>
    Promise.all(commands.map(async (command) => ({ command, ...(await cli(command, dataDir)) })));
  const saying = (commands: string[][], sentence: string) =>
    commands.map((command) => ({ command, code: 1, stdout: '', stderr: `${sentence}\n` }));

  it('a file that is not a database: serve, sync --once, snapshot, cluster reset', async () => {
    const dataDir = newDataDir();
    const path = join(dataDir, 'inventory.db');
    writeFileSync(path, 'this is not a database\n'.repeat(400));
    const commands = [['serve'], ['sync', '--once'], ['snapshot'], ['cluster', 'reset', 'lab']];
    expect(await outcomes(commands, dataDir)).toEqual(saying(commands, notDatabase(path)));
  }, 60_000);

  it("another application's database: serve, snapshot", async () => {
    const dataDir = newDataDir();
    const path = join(dataDir, 'inventory.db');
    otherApplicationDb(path);
    const commands = [['serve'], ['snapshot']];
    expect(await outcomes(commands, dataDir)).toEqual(saying(commands, foreign(path, 'users, messages')));
  }, 60_000);
});

describe('the stdio mcp says it in every answer', () => {
  let client: Client;
  const dataDir = newDataDir();
  const path = join(dataDir, 'inventory.db');
  const call = async (name: string): Promise<{ isError: boolean | undefined; text: string }> => {
    const r = (await client.callTool({ name, arguments: {} })) as CallToolResult;
    return { isError: r.isError, text: (r.content[0] as { text: string }).text };
  };
  const tools = ['inventory_overview', 'list_guests', 'sync_status', 'list_nodes'];

  beforeAll(async () => {
    copyFileSync(inventory, path);
    truncateSync(path, Math.floor(statSync(path).size / 2));
    client = new Client({ name: 'test', version: '1.0.0' });
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: ['--import', 'tsx', 'src/cli.ts', 'mcp'],
        env: { PATH: process.env.PATH ?? '', DATA_DIR: dataDir, LOG_LEVEL: 'error' },
        stderr: 'ignore',
      }),
    );
  }, 30_000);
  afterAll(() => client?.close());

  it('a truncated inventory: the sentence, not "failed while reading the inventory"', async () => {
    for (const tool of tools)
      expect({ tool, ...(await call(tool)) }).toEqual({ tool, isError: true, text: damaged(path) });
  });

  it('once the file is moved aside and a good one put in its place, the same process answers from it', async () => {
    renameSync(path, `${path}.damaged`);
    expect(await call('inventory_overview')).toEqual({
      isError: true,
      text: 'No inventory yet: the daemon has not synced any cluster. Start `proxmox-inventory serve` (or run `proxmox-inventory sync --once`) and ask again.',
    });
    copyFileSync(inventory, path);
    const answer = await call('inventory_overview');
    expect(answer.isError, answer.text).toBeFalsy();
    expect(answer.text).toContain('guests 400 (');
  });
});
