/**
 * What the tools accept and refuse, through the real SDK client against a store synced from the
 * simulator into a real SQLite file: numbers and booleans sent as text are read, other values are
 * not converted (true is not 1, [3] is not 3, "" is not 0), a missing number says "missing",
 * bounds given backwards are an error naming both, get_guest's vmid and name must agree, an
 * afterSeq past the latest event is an error, and inventory snapshot labels have a limit (in the
 * store, so the command line says it too).
 */
import { spawn } from 'node:child_process';
import { dirname } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/store/db.js';
import { listSnapshots, takeSnapshot } from '../../src/store/snapshots.js';
import { startHarness, type SyncHarness } from '../sync/helpers.js';
import { connectClient } from './connect.js';

let h: SyncHarness;
let client: Client;

beforeAll(async () => {
  h = await startHarness({ guests: 20, nodes: 2, seed: 3 });
  expect((await h.sync.runCycle()).ok).toBe(true);
  client = await connectClient(h.store, 'inputs-test');
}, 30_000);

afterAll(async () => {
  await client?.close();
  await h?.close();
});

async function call(name: string, args: Record<string, unknown>): Promise<{ isError: boolean; text: string }> {
  const r = (await client.callTool({ name, arguments: args })) as CallToolResult;
  return { isError: r.isError === true, text: (r.content[0] as { text: string }).text };
}
const refused = async (name: string, args: Record<string, unknown>): Promise<string> => {
  const r = await call(name, args);
  expect(r.isError, `${name} ${JSON.stringify(args)} should be refused: ${r.text}`).toBe(true);
  return r.text;
};
const answered = async (name: string, args: Record<string, unknown>): Promise<string> => {
  const r = await call(name, args);
  expect(r.isError, `${name} ${JSON.stringify(args)}: ${r.text}`).toBe(false);
  return r.text;
};

const sql = <T>(query: string, ...params: unknown[]): T[] => h.store.sqlite.prepare(query).all(...params) as T[];

describe('numbers and booleans', () => {
  it('numeric strings are numbers and "true"/"false" booleans', async () => {
    expect(await answered('find_capacity', { cores: '2', memoryGiB: '1.5', diskGiB: ' 10 ' })).toMatch(
      /can take 2 cores, 1\.5G memory, 10G disk/,
    );
    expect(await answered('list_guests', { limit: '3', template: 'false' })).toMatch(/^3 of \d+ guests/);
    await answered('list_tasks', { onlyFailed: 'true', failedFirst: false });
  });

  it('true, [3], "", null and words are not numbers, and the message says what the field takes', async () => {
    const at = (field: string): RegExp => new RegExp(`^MCP error -32602: .* at ${field}$`);
    for (const cores of [true, [3], '', null, 'two', '0x10', 'Infinity', 2.5, 0]) {
      const text = await refused('find_capacity', { cores, memoryGiB: 1 });
      expect(text).toMatch(at('cores'));
      expect(text).toContain(`expected a whole number from 1 to 4096, got ${JSON.stringify(cores)}`);
    }
    expect(await refused('find_capacity', { cores: 1, memoryGiB: false })).toContain(
      'expected a number from 0 to 65536, got false at memoryGiB',
    );
    expect(await refused('list_guests', { minMemoryGiB: '' })).toContain('got "" at minMemoryGiB');
    expect(await refused('get_guest', { vmid: [101] })).toContain(
      'expected a vmid from 100 to 999999999, got [101] at vmid',
    );
  });

  it('booleans are true, false, "true" or "false" only', async () => {
    for (const onlyFailed of [1, 'yes', 'TRUE', '', []])
      expect(await refused('list_tasks', { onlyFailed })).toContain(
        `expected true or false, got ${JSON.stringify(onlyFailed)} at onlyFailed`,
      );
  });

  it('a missing required number says missing, never NaN', async () => {
    const text = await refused('find_capacity', { memoryGiB: 1 });
    expect(text).toContain('missing: expected a whole number from 1 to 4096 at cores');
    expect(text).not.toMatch(/NaN/);
    expect(await refused('diff_snapshots', {})).toContain('missing: expected a whole number 1 or more at from');
    expect(await refused('get_node', {})).toContain('missing: expected text of 1 to 63 characters at node');
  });
});

describe('bounds', () => {
  it('a minimum above its maximum is an error naming both; equal bounds are fine', async () => {
    expect(await refused('list_guests', { minMemoryGiB: 8, maxMemoryGiB: '4' })).toContain(
      'minMemoryGiB 8 is above maxMemoryGiB 4, so nothing can match; swap them or leave one out',
    );
    expect(await refused('list_guests', { minCores: '4', maxCores: 2 })).toContain(
      'minCores 4 is above maxCores 2, so nothing can match',
    );
    await answered('list_guests', { minCores: 2, maxCores: 2, minMemoryGiB: 0.5, maxMemoryGiB: 0.5 });
  });
});

describe('get_guest with both vmid and name', () => {
  it('the same name (in any case) is fine; another name is an error naming the guest it has', async () => {
    const g = sql<{ vmid: number; name: string }>(
      'SELECT vmid, name FROM guests WHERE name IS NOT NULL ORDER BY vmid LIMIT 1',
    )[0]!;
    expect(await answered('get_guest', { vmid: g.vmid, name: g.name.toUpperCase() })).toMatch(
      new RegExp(`^lab/${g.vmid} ${g.name}: `),
    );
    expect(await refused('get_guest', { vmid: g.vmid, name: 'not-this-one' })).toBe(
      `vmid ${g.vmid} is named ${g.name}, not "not-this-one". Give the vmid or the name alone.`,
    );
  });

  it('a vmid held in two clusters is settled by the name when one of them has it', async () => {
    const g = sql<{ vmid: number; name: string }>(
      'SELECT vmid, name FROM guests WHERE name IS NOT NULL ORDER BY vmid DESC LIMIT 1',
    )[0]!;
    // A second cluster holding the same vmid under another name, written as the sync writes rows.
    const columns = sql<{ name: string }>('PRAGMA table_info(guests)').map((c) => c.name);
    const copied = columns.map((c) => (c === 'cluster' ? "'edge'" : c === 'name' ? "'edge-twin'" : c)).join(', ');
    h.store.sqlite.exec(`INSERT INTO clusters (name) VALUES ('edge')`);
    h.store.sqlite
      .prepare(`INSERT INTO guests (${columns.join(', ')}) SELECT ${copied} FROM guests WHERE vmid = ?`)
      .run(g.vmid);
    expect(await refused('get_guest', { vmid: g.vmid })).toMatch(new RegExp(`^Several guests match vmid ${g.vmid}: `));
    expect(await answered('get_guest', { vmid: g.vmid, name: g.name })).toMatch(new RegExp(`^lab/${g.vmid} `));
    expect(await answered('get_guest', { vmid: g.vmid, name: 'EDGE-twin' })).toMatch(
      new RegExp(`^edge/${g.vmid} edge-twin: `),
    );
    expect(await refused('get_guest', { vmid: g.vmid, name: 'neither' })).toMatch(/^Several guests match/);
    h.store.sqlite.exec(`DELETE FROM clusters WHERE name = 'edge'`);
  });
});

describe('changes_since afterSeq', () => {
  const latest = (): number => sql<{ s: number }>('SELECT max(seq) AS s FROM events')[0]!.s;

  it('a cursor past the latest event is an error naming the latest, not echoed back as the next poll', async () => {
    const head = latest();
    expect(head).toBeGreaterThan(0);
    expect(await refused('changes_since', { afterSeq: head + 1 })).toBe(
      `afterSeq ${head + 1} is beyond the latest event (seq ${head}): the cursor is from another or a rebuilt inventory; continue with afterSeq ${head}, or use since.`,
    );
    expect(await answered('changes_since', { afterSeq: head })).toMatch(
      new RegExp(`^0 events; next poll: afterSeq ${head}\\n`),
    );
  });

  it('a cursor stays valid after retention deletes the events it points past', async () => {
    const head = latest();
    h.store.sqlite.exec('DELETE FROM events');
    expect(await answered('changes_since', { afterSeq: head })).toMatch(
      new RegExp(`^0 events; next poll: afterSeq ${head}\\n`),
    );
    expect(await refused('changes_since', { afterSeq: head + 5 })).toContain(`(seq ${head})`);
  });
});

describe('inventory snapshot labels', () => {
  it('at most 200 characters, one line, no control or bidirectional characters', () => {
    const before = listSnapshots(h.store).length;
    expect(takeSnapshot(h.store, { label: 'é'.repeat(200) }).label).toBe('é'.repeat(200));
    expect(() => takeSnapshot(h.store, { label: 'x'.repeat(201) })).toThrow(
      new StoreError('The snapshot label has 201 characters; give one of at most 200.'),
    );
    expect(() => takeSnapshot(h.store, { label: 'before\nupgrade' })).toThrow(
      new StoreError(
        'The snapshot label holds a control character (U+000A at character 7); give one line of plain text.',
      ),
    );
    expect(() => takeSnapshot(h.store, { label: 'ok \u202Egnp.exe' })).toThrow(/U\+202E at character 4/);
    expect(listSnapshots(h.store).length).toBe(before + 1); // nothing was written for the refused ones
  });

  it('the snapshot command prints the one sentence and where the help is, exit 2, without a stack', async () => {
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'snapshot', '--label', 'a'.repeat(300)], {
        env: { PATH: process.env.PATH ?? '', DATA_DIR: dirname(h.dbPath) },
        cwd: process.cwd(),
      });
      let [stdout, stderr] = ['', ''];
      child.stdout.on('data', (d: Buffer) => (stdout += d));
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      'snapshot: --label: The snapshot label has 300 characters; give one of at most 200.\nsee proxmox-inventory snapshot --help\n',
    );
    expect(result.stderr).not.toMatch(/\n\s+at /);
  }, 30_000);
});
