/**
 * Toolsets: which groups of tools a client is offered. Through the real SDK client (in memory, and
 * `proxmox-inventory mcp` over stdio with MCP_TOOLSETS): tools outside the chosen sets are neither
 * listed nor callable, and a call to one names the set to enable. The configuration refuses a name
 * it does not know, listing the valid ones.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, type Env } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { createMcpServer } from '../../src/mcp/server.js';
import { allTools, toolsetTools } from '../../src/mcp/tools/index.js';
import { DEFAULT_TOOLSETS, parseToolsets, TOOLSET_NAMES, type ToolsetName } from '../../src/mcp/toolsets.js';
import { startHarness, stopChild, type SyncHarness } from '../sync/helpers.js';

let h: SyncHarness;

beforeAll(async () => {
  h = await startHarness({ guests: 12, nodes: 2, seed: 97 });
  await h.sync.runCycle();
});
afterAll(async () => {
  await h.close();
});

async function connect(toolsets?: ToolsetName[]): Promise<Client> {
  const server = createMcpServer({
    store: h.store,
    now: Date.now,
    staleAfterMs: Infinity,
    log: createLogger({ level: 'silent' }),
    version: 'test',
    ...(toolsets ? { toolsets } : {}),
  });
  const client = new Client({ name: 'toolsets', version: '1' });
  const [a, b] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(a), client.connect(b)]);
  return client;
}

const listed = async (c: Client): Promise<string[]> => (await c.listTools()).tools.map((t) => t.name);
const inOrder = (names: string[]): string[] => allTools.map((t) => t.name).filter((n) => names.includes(n));
const namesOf = (...sets: ToolsetName[]): string[] => inOrder(sets.flatMap((s) => toolsetTools[s].map((t) => t.name)));

describe('the toolsets', () => {
  it('hold every tool exactly once, and all are offered by default (all are read-only)', () => {
    const memberships = TOOLSET_NAMES.flatMap((s) => toolsetTools[s].map((t) => t.name));
    expect(memberships.sort()).toEqual(allTools.map((t) => t.name).sort());
    expect(DEFAULT_TOOLSETS).toEqual(['inventory', 'capacity', 'history', 'status']);
    for (const tool of allTools) expect(tool.annotations.readOnlyHint).toBe(true);
  });

  it('by default every tool is listed', async () => {
    const c = await connect();
    expect(await listed(c)).toEqual(allTools.map((t) => t.name));
    await c.close();
  });

  it('lists and runs only the chosen sets’ tools; a call to another names the set to enable', async () => {
    const c = await connect(['inventory']);
    expect(await listed(c)).toEqual(['list_guests', 'get_guest', 'inventory_overview', 'search_inventory']);
    const ok = (await c.callTool({ name: 'inventory_overview', arguments: {} })) as CallToolResult;
    expect(ok.isError).toBeFalsy();
    const refused = (await c.callTool({ name: 'list_tasks', arguments: { limit: 5 } })) as CallToolResult;
    expect(refused).toMatchObject({ isError: true });
    expect(refused.structuredContent).toBeUndefined();
    expect((refused.content[0] as { text: string }).text).toBe(
      'list_tasks is in the history toolset, which this server does not offer (it offers inventory); add history to MCP_TOOLSETS (or mcp.toolsets in the config file) and restart the server to use it.',
    );
    await c.close();

    const two = await connect(['history', 'capacity']);
    expect(await listed(two)).toEqual(namesOf('capacity', 'history'));
    expect(((await two.callTool({ name: 'list_tasks', arguments: {} })) as CallToolResult).isError).toBeFalsy();
    expect(
      ((await two.callTool({ name: 'get_guest', arguments: { vmid: 100 } })) as CallToolResult).content[0],
    ).toMatchObject({ text: expect.stringContaining('get_guest is in the inventory toolset') });
    await two.close();
  });
});

describe('MCP_TOOLSETS and mcp.toolsets', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pi-toolsets-'));
  const base: Env = {
    PVE_URL: 'https://pve1.example.com:8006',
    PVE_TOKEN_ID: 'inventory@pve!sync',
    PVE_TOKEN_SECRET: '5f1e2d3c-aaaa-bbbb-cccc-0123456789ab',
  };
  const load = (env: Env, configPath?: string) => loadConfig({ env: { ...base, ...env }, configPath, cwd: dir });
  const problems = (env: Env, configPath?: string): string[] => {
    try {
      load(env, configPath);
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

  it('reads names, in any order and with spaces, into the sets in their own order', () => {
    expect(load({}).mcp.toolsets).toEqual(DEFAULT_TOOLSETS);
    expect(load({ MCP_TOOLSETS: 'history, inventory' }).mcp.toolsets).toEqual(['inventory', 'history']);
    expect(load({}, file('sets.yaml', 'mcp: { toolsets: [status] }\n')).mcp.toolsets).toEqual(['status']);
    // The environment wins over the file, as everywhere else.
    expect(
      load({ MCP_TOOLSETS: 'capacity' }, file('sets2.yaml', 'mcp: { toolsets: [status] }\n')).mcp.toolsets,
    ).toEqual(['capacity']);
  });

  it('refuses a name it does not know, listing the toolsets and the one a misspelt name was meant to be', () => {
    expect(problems({ MCP_TOOLSETS: 'inventory,everything,actions' })).toEqual([
      'MCP_TOOLSETS: unknown toolsets "everything", "actions"; the toolsets are inventory, capacity, history, status',
    ]);
    const path = file('bad.yaml', 'mcp: { toolsets: [invntory] }\n');
    expect(problems({}, path)).toEqual([
      `config file ${path}: mcp.toolsets: unknown toolset "invntory"; did you mean "inventory"? the toolsets are inventory, capacity, history, status`,
    ]);
    expect(problems({ MCP_TOOLSETS: 'histroy' })).toEqual([
      'MCP_TOOLSETS: unknown toolset "histroy"; did you mean "history"? the toolsets are inventory, capacity, history, status',
    ]);
    const shape = file('shape.yaml', 'mcp: { toolsets: { inventory: true } }\n');
    expect(problems({}, shape)).toEqual([
      `config file ${shape}: mcp.toolsets: expected a list of toolsets, e.g. [inventory, history]; found a mapping`,
    ]);
    expect(parseToolsets(' , ')).toEqual({
      problem:
        'names no toolset; the toolsets are inventory, capacity, history, status (leave it unset for every read-only one)',
    });
  });

  it('reaches `proxmox-inventory mcp` over stdio', async () => {
    const c = new Client({ name: 'toolsets-stdio', version: '1' });
    await c.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: ['--import', 'tsx', 'src/cli.ts', 'mcp'],
        env: {
          PATH: process.env.PATH ?? '',
          DATA_DIR: mkdtempSync(join(tmpdir(), 'pi-toolsets-data-')),
          LOG_LEVEL: 'error',
          MCP_TOOLSETS: 'capacity',
        },
        stderr: 'ignore',
      }),
    );
    try {
      expect(await listed(c)).toEqual(namesOf('capacity'));
    } finally {
      await c.close();
    }
  }, 30_000);

  it('reaches `serve`’s HTTP endpoint', async () => {
    const port = await freePort();
    const daemon = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve'], {
      env: {
        PATH: process.env.PATH ?? '',
        PVE_URL: h.sim.url,
        PVE_TOKEN_ID: h.sim.tokens.auditor.id,
        PVE_TOKEN_SECRET: h.sim.tokens.auditor.secret,
        PVE_CLUSTER_NAME: 'lab',
        DATA_DIR: mkdtempSync(join(tmpdir(), 'pi-toolsets-serve-')),
        SNAPSHOT_SCHEDULE: 'off',
        MCP_HTTP_PORT: String(port),
        MCP_TOOLSETS: 'status,history',
        LOG_LEVEL: 'error',
      },
      stdio: 'ignore',
    });
    try {
      const url = new URL(`http://127.0.0.1:${port}/mcp`);
      const c = new Client({ name: 'toolsets-http', version: '1' });
      for (const deadline = Date.now() + 30_000; ; await new Promise((r) => setTimeout(r, 100)))
        try {
          await c.connect(new StreamableHTTPClientTransport(url));
          break;
        } catch (err) {
          if (Date.now() > deadline) throw err;
        }
      expect(await listed(c)).toEqual(namesOf('history', 'status'));
      await c.close();
    } finally {
      await stopChild(daemon);
    }
  }, 40_000);
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createNetServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}
