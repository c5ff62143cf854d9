/**
 * A third-party client: the MCP Inspector's CLI mode starts `proxmox-inventory mcp` over stdio,
 * lists its tools and calls list_guests with arguments given as text (as a person types them).
 */
import { execFile } from 'node:child_process';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type SyncHarness } from '../sync/helpers.js';

const run = promisify(execFile);
let h: SyncHarness;

async function inspector(...args: string[]): Promise<Record<string, unknown>> {
  const { stdout } = await run(
    'node_modules/.bin/mcp-inspector',
    [
      '--cli',
      '-e',
      `DATA_DIR=${dirname(h.dbPath)}`,
      '-e',
      'LOG_LEVEL=error',
      'node_modules/.bin/tsx',
      'src/cli.ts',
      'mcp',
      ...args,
    ],
    { timeout: 60_000 },
  );
  return JSON.parse(stdout) as Record<string, unknown>;
}

beforeAll(async () => {
  h = await startHarness({ guests: 40, nodes: 2, seed: 73 });
  await h.sync.runCycle();
});
afterAll(() => h.close());

describe('MCP Inspector CLI', () => {
  it('lists the tools', async () => {
    const { tools } = (await inspector('--method', 'tools/list')) as { tools: Array<{ name: string }> };
    expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['list_guests', 'get_guest', 'sync_status']));
  }, 60_000);

  it('calls list_guests with text arguments and gets the running guests', async () => {
    h.sim.resetCounters();
    const running = [...h.sim.cluster.guests.values()]
      .filter((g) => g.status === 'running')
      .map((g) => g.vmid)
      .sort((a, b) => a - b);
    const result = (await inspector(
      '--method',
      'tools/call',
      '--tool-name',
      'list_guests',
      '--tool-arg',
      'status=running',
      '--tool-arg',
      'limit=500',
    )) as { structuredContent: { guests: Array<{ vmid: number }>; total: number }; content: Array<{ text: string }> };
    expect(result.structuredContent.total).toBe(running.length);
    expect(result.structuredContent.guests.map((g) => g.vmid)).toEqual(running);
    // status is the same on every row: said once in the first line, not as a column.
    expect(result.content[0]!.text).toMatch(
      new RegExp(`^${running.length} of ${running.length} guests with status=running\\nvmid name type node\\n`),
    );
    expect(h.sim.counters().total).toBe(0);
  }, 60_000);
});
