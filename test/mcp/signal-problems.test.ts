/**
 * clusters.signal_problems (change signals a cluster cannot give, e.g. /cluster/log without
 * Sys.Syslog) as the status queries, sync_status and inventory_overview show it. The column is
 * written straight into a real store, as the sync cycle writes it: the JSON of signalProblems(),
 * plus values the readers must survive (not JSON, not an object, non-string problems).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/store/db.js';
import { listClusters, syncStatus } from '../../src/store/queries.js';
import { signalProblems } from '../../src/sync/signals.js';
import { connectClient } from './connect.js';

const PROBLEM =
  "the token lacks Sys.Syslog on /, so /cluster/log hides other users' config edits; they are seen by the sweep (every 6 h) instead (grant a role with Sys.Syslog, README: The API token)";

let store: Store;
let client: Client;
const now = Date.now();

async function call(
  name: string,
  args: Record<string, unknown> = {},
): Promise<{ structured: Record<string, unknown>; text: string }> {
  const r = (await client.callTool({ name, arguments: args })) as CallToolResult;
  const text = (r.content[0] as { text: string }).text;
  expect(r.isError, text).toBeFalsy();
  return { structured: r.structuredContent as Record<string, unknown>, text };
}

beforeAll(async () => {
  store = openStore(join(mkdtempSync(join(tmpdir(), 'pi-signals-')), 'inventory.db'));
  const insert = store.sqlite.prepare(
    'INSERT INTO clusters (name, pve_version, quorate, last_attempt_at, last_success_at, signal_problems) VALUES (?, ?, 1, ?, ?, ?)',
  );
  const lab = signalProblems({ '/': { 'Sys.Audit': true, 'VM.Audit': true } });
  insert.run('lab', '9.1.1', now - 5_000, now - 5_000, JSON.stringify(lab));
  insert.run(
    'prod',
    '9.1.1',
    now - 5_000,
    now - 5_000,
    JSON.stringify(signalProblems({ '/': { 'Sys.Syslog': true } })),
  );
  insert.run('odd', '9.1.1', now - 5_000, now - 5_000, '{"log": 5, "tasks": "", "x": ["y"]}');
  insert.run('broken', '9.1.1', now - 5_000, now - 5_000, '{"log": "cut sho');
  insert.run('listed', '9.1.1', now - 5_000, now - 5_000, '["log"]');
  client = await connectClient(store, 'signals', { now: () => now });
});

afterAll(async () => {
  await client?.close();
  store?.close();
});

describe('signal problems in the status queries', () => {
  it('listClusters and syncStatus carry the parsed column; anything but string problems of an object reads as none', () => {
    const byName = (
      list: Array<{ cluster: string; signalProblems: Record<string, string> }>,
    ): Record<string, Record<string, string>> => Object.fromEntries(list.map((c) => [c.cluster, c.signalProblems]));
    const expected = { broken: {}, lab: { log: PROBLEM }, listed: {}, odd: {}, prod: {} };
    expect(byName(listClusters(store, now))).toEqual(expected);
    expect(byName(syncStatus(store, now).clusters)).toEqual(expected);
  });
});

describe('signal problems in the MCP answers', () => {
  it("sync_status lists them under the table and in each cluster's structured row", async () => {
    const { structured, text } = await call('sync_status');
    const clusters = structured.clusters as Array<{ cluster: string; signalProblems: unknown }>;
    expect(clusters.find((c) => c.cluster === 'lab')?.signalProblems).toEqual({ log: PROBLEM });
    expect(clusters.find((c) => c.cluster === 'prod')?.signalProblems).toEqual({});
    const lines = text.split('\n');
    const at = lines.indexOf('change signals missing:');
    expect(at).toBeGreaterThan(0);
    expect(lines.slice(at + 1, -1)).toEqual([`- lab (log signal): ${PROBLEM}`]); // the last line is the freshness line
  });

  it('inventory_overview names them among the problems', async () => {
    const { structured, text } = await call('inventory_overview');
    expect((structured.problems as Record<string, unknown>).signalProblems).toEqual([
      { cluster: 'lab', signal: 'log', problem: PROBLEM },
    ]);
    expect(text.split('\n')).toContain(`- cluster lab (log signal): ${PROBLEM}`);
    const prod = await call('inventory_overview', { cluster: 'prod' });
    expect((prod.structured.problems as Record<string, unknown>).signalProblems).toEqual([]);
    expect(prod.text).not.toContain('signal');
  });
});
