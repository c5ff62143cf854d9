/**
 * The operator documentation against the real thing. The snippets are read from the pages, not
 * copied here: every JSON snippet of docs/clients.md parses, each stdio server it names is started
 * and each URL is connected to with its Authorization header, against a real `serve` (simulator,
 * bearer token) and its inventory; the `claude mcp add` lines name the same; the Inspector commands
 * run as written. The metric names in docs/grafana-dashboard.json and docs/alerts.yaml must all be
 * in a /metrics scrape of that serve after a sync. docs/running.md's backup commands run against
 * the live inventory, and its systemd unit passes `systemd-analyze verify` where that exists.
 *
 * The pages' placeholders become this test's values: the install path's `node …/dist/cli.js` is
 * this checkout's src/cli.ts through tsx, /var/lib/proxmox-inventory the harness's DATA_DIR,
 * 127.0.0.1:8765 the port serve picked, and every token placeholder the bearer token serve has.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { startServeHarness, until, type ServeHarness } from './webhooks/serve-harness.js';

const run = promisify(execFile);
const TOKEN = 'docs-test-bearer-token-0123456789abcdef';
const PAGE_CLI = '/opt/proxmox-inventory/dist/cli.js';
const PAGE_DATA_DIR = '/var/lib/proxmox-inventory';
const PAGE_URL = 'http://127.0.0.1:8765/mcp';
/** What the pages write where the token goes: a literal placeholder or a client's variable. */
const TOKEN_PLACEHOLDERS = [
  '<token>',
  '${input:proxmox-token}',
  '${env:PROXMOX_INVENTORY_TOKEN}',
  '${PROXMOX_INVENTORY_TOKEN}',
  '$PROXMOX_INVENTORY_TOKEN',
];

const page = (name: string): string => readFileSync(join('docs', name), 'utf8');

function codeBlocks(markdown: string, lang: string): string[] {
  return [...markdown.matchAll(/^```(\w*)\n([\s\S]*?)^```/gm)].filter((m) => m[1] === lang).map((m) => m[2]!);
}

/** Words of one shell line: spaces split, double quotes group (no escapes in the pages' lines). */
function shellWords(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

function withToken(text: string): string {
  return TOKEN_PLACEHOLDERS.reduce((t, p) => t.split(p).join(TOKEN), text);
}

type Target =
  | { kind: 'stdio'; from: string; args: string[]; env: Record<string, string> }
  | { kind: 'http'; from: string; url: string; headers: Record<string, string> };

interface ServerEntry {
  type?: string;
  command?: string;
  args?: string[];
  env?: Record<string, string>;
  url?: string;
  headers?: Record<string, string>;
}

/** A JSON snippet's server: where it connects, as the client would (the page's values, not yet mapped). */
function targetOf(from: string, e: ServerEntry): Target {
  if (e.url) return { kind: 'http', from, url: e.url, headers: e.headers ?? {} };
  if (e.command === 'npx' && e.args?.includes('mcp-remote')) {
    const header = e.args[e.args.indexOf('--header') + 1]!;
    // mcp-remote expands ${VAR} in its arguments from the env the client gives it.
    const expanded = header.replace(/\$\{(\w+)\}/g, (_, name: string) => e.env?.[name] ?? '');
    const [name, ...value] = expanded.split(':');
    return {
      kind: 'http',
      from,
      url: e.args[e.args.indexOf('mcp-remote') + 1]!,
      headers: { [name!]: value.join(':') },
    };
  }
  expect(e.command, `${from}: a stdio server started with node`).toBe('node');
  return { kind: 'stdio', from, args: e.args ?? [], env: e.env ?? {} };
}

function jsonTargets(): Target[] {
  const targets: Target[] = [];
  for (const [i, text] of codeBlocks(page('clients.md'), 'json').entries()) {
    const snippet = JSON.parse(text) as {
      mcpServers?: Record<string, ServerEntry>;
      servers?: Record<string, ServerEntry>;
    };
    const servers = snippet.mcpServers ?? snippet.servers;
    expect(servers, `JSON snippet ${i + 1} names no servers`).toBeTruthy();
    for (const [name, entry] of Object.entries(servers!))
      targets.push(targetOf(`JSON snippet ${i + 1} (${name})`, entry));
  }
  return targets;
}

function claudeCodeTargets(): Target[] {
  const lines = codeBlocks(page('clients.md'), 'sh')
    .flatMap((b) => b.split('\n'))
    .filter((l) => l.startsWith('claude mcp add '));
  return lines.map((line): Target => {
    const words = shellWords(line);
    const dashes = words.indexOf('--');
    if (dashes >= 0) {
      const env = Object.fromEntries(
        words.flatMap((w, i) => (w === '--env' ? [words[i + 1]!.split('=') as [string, string]] : [])),
      );
      expect(words[dashes + 1]).toBe('node');
      return { kind: 'stdio', from: line, args: words.slice(dashes + 2), env };
    }
    expect(words.slice(0, 5)).toEqual(['claude', 'mcp', 'add', '--transport', 'http']);
    const [name, ...value] = words[words.indexOf('--header') + 1]!.split(':');
    return { kind: 'http', from: line, url: words[6]!, headers: { [name!]: value.join(':').trim() } };
  });
}

let h: ServeHarness;
let mcpUrl: string;
let guests: number;

beforeAll(async () => {
  h = await startServeHarness([{ name: 'lab', guests: 40, nodes: 2, seed: 11 }]);
  const serve = await h.serve({ MCP_HTTP: 'on', MCP_HTTP_PORT: '0', MCP_BEARER_TOKEN: TOKEN });
  const serving = serve
    .log()
    .split('\n')
    .map((l) => (l.startsWith('{') ? (JSON.parse(l) as { msg?: string; mcp?: string }) : {}))
    .find((l) => l.msg === 'proxmox-inventory serving');
  mcpUrl = serving!.mcp!;
  guests = await until('the first sync', () => {
    const n = h.store.sqlite.prepare('SELECT count(*) FROM guests WHERE deleted_at IS NULL').pluck().get() as number;
    return n > 0 && n;
  });
}, 120_000);

afterAll(async () => {
  await h?.close();
});

/** The page's values put to this test's: the URL and port, DATA_DIR, the checkout's CLI, the token. */
function mapped(text: string): string {
  return withToken(text).split(PAGE_URL).join(mcpUrl).split(PAGE_DATA_DIR).join(h.dataDir);
}

async function toolNames(client: Client): Promise<string[]> {
  return (await client.listTools()).tools.map((t) => t.name);
}

/** Stdio servers already started: the snippets name the same one, and each start costs seconds of tsx. */
const started = new Set<string>();

async function checkStdio(t: Extract<Target, { kind: 'stdio' }>): Promise<void> {
  expect(t.args, `${t.from}: node ${PAGE_CLI} mcp`).toEqual([PAGE_CLI, 'mcp']);
  expect(t.env, `${t.from}: DATA_DIR as the page says`).toEqual({ DATA_DIR: PAGE_DATA_DIR });
  const key = JSON.stringify([t.args, t.env]);
  if (started.has(key)) return;
  started.add(key);
  const client = new Client({ name: 'docs-test', version: '1' });
  await client.connect(
    new StdioClientTransport({
      command: process.execPath,
      args: ['--import', 'tsx', 'src/cli.ts', ...t.args.slice(1)],
      env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'error', DATA_DIR: mapped(t.env.DATA_DIR!) },
      stderr: 'ignore',
    }),
  );
  try {
    expect(await toolNames(client)).toContain('list_guests');
    const listed = await client.callTool({ name: 'list_guests', arguments: { limit: 1 } });
    expect((listed.structuredContent as { total: number }).total).toBe(guests);
  } finally {
    await client.close();
  }
}

async function checkHttp(t: Extract<Target, { kind: 'http' }>): Promise<void> {
  expect(t.url, t.from).toBe(PAGE_URL);
  expect(Object.keys(t.headers), t.from).toEqual(['Authorization']);
  expect(t.headers.Authorization, t.from).toMatch(/^Bearer \S+$/);
  const headers = { Authorization: withToken(t.headers.Authorization!) };
  const client = new Client({ name: 'docs-test', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(mapped(t.url)), { requestInit: { headers } }));
  try {
    expect(await toolNames(client)).toContain('list_guests');
  } finally {
    await client.close();
  }
}

describe('docs/clients.md', () => {
  it('every JSON snippet parses and names a stdio command or URL that answers, for each client', async () => {
    const targets = jsonTargets();
    // Claude Desktop (stdio, mcp-remote), VS Code, Cursor and Cline (HTTP and stdio each).
    expect(targets.filter((t) => t.kind === 'stdio')).toHaveLength(4);
    expect(targets.filter((t) => t.kind === 'http')).toHaveLength(4);
    for (const t of targets) await (t.kind === 'stdio' ? checkStdio(t) : checkHttp(t));
  }, 180_000);

  it('the claude mcp add lines name the same command and URL', async () => {
    const targets = claudeCodeTargets();
    expect(targets.map((t) => t.kind).sort()).toEqual(['http', 'stdio']);
    for (const t of targets) await (t.kind === 'stdio' ? checkStdio(t) : checkHttp(t));
  }, 120_000);

  it('the HTTP endpoint refuses the snippets without their token', async () => {
    const res = await fetch(mcpUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(res.status).toBe(401);
  });

  const inspectorLines = (): string[] =>
    codeBlocks(page('clients.md'), 'sh')
      .flatMap((b) => b.split('\n'))
      .filter((l) => l.startsWith('npx @modelcontextprotocol/inspector --cli'));

  /** An Inspector line from the page, run by a shell as an operator would, with the installed Inspector. */
  function inspector(line: string): Promise<{ stdout: string; stderr: string }> {
    const command = mapped(line)
      .replace('npx @modelcontextprotocol/inspector', 'node_modules/.bin/mcp-inspector')
      .replace(`node ${PAGE_CLI}`, `node --import tsx src/cli.ts`);
    return run('sh', ['-c', command], {
      timeout: 90_000,
      env: { PATH: process.env.PATH ?? '', PROXMOX_INVENTORY_TOKEN: TOKEN, LOG_LEVEL: 'error' },
    });
  }

  it('the Inspector CLI over stdio lists the tools', async () => {
    const line = inspectorLines().find((l) => !l.includes('--transport http'));
    expect(line).toBeDefined();
    const { tools } = JSON.parse((await inspector(line!)).stdout) as { tools: Array<{ name: string }> };
    expect(tools.map((t) => t.name)).toContain('list_guests');
  }, 120_000);

  it('the Inspector CLI over HTTP with the bearer token lists the tools (0.17+), or is refused as the page says (0.15)', async () => {
    const line = inspectorLines().find((l) => l.includes('--transport http'));
    expect(line).toContain('--header "Authorization: Bearer $PROXMOX_INVENTORY_TOKEN"');
    const version = (
      JSON.parse(readFileSync('node_modules/@modelcontextprotocol/inspector/package.json', 'utf8')) as {
        version: string;
      }
    ).version;
    const [major, minor] = version.split('.').map(Number);
    if (major! > 0 || minor! >= 17) {
      const { tools } = JSON.parse((await inspector(line!)).stdout) as { tools: Array<{ name: string }> };
      expect(tools.map((t) => t.name)).toContain('list_guests');
      return;
    }
    // The dev dependency (0.15, for Node 20) has no --header: the page says so. Without the option
    // the same command reaches serve and is refused for want of the token, so URL and transport are right.
    await expect(inspector(line!)).rejects.toThrow(/Arguments cannot be passed to a URL-based MCP server/);
    const withoutHeader = line!.replace(/ --header "[^"]*"/, '');
    await expect(inspector(withoutHeader)).rejects.toThrow(/missing or wrong bearer token/);
  }, 120_000);
});

describe('docs/grafana-dashboard.json and docs/alerts.yaml', () => {
  interface Panel {
    type: string;
    title: string;
    datasource?: { uid: string };
    targets?: Array<{ expr: string }>;
  }
  const dashboard = JSON.parse(page('grafana-dashboard.json')) as {
    __inputs: Array<{ name: string; pluginId: string }>;
    schemaVersion: number;
    panels: Panel[];
    templating: { list: Array<{ query: { query: string } }> };
  };

  it('is an importable dashboard on a ${DS_PROMETHEUS} input', () => {
    expect(dashboard.__inputs).toEqual([expect.objectContaining({ name: 'DS_PROMETHEUS', pluginId: 'prometheus' })]);
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    for (const p of dashboard.panels.filter((p) => p.type !== 'row')) {
      expect(p.datasource?.uid, p.title).toBe('${DS_PROMETHEUS}');
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
    }
  });

  it('uses only metric names a /metrics scrape of serve carries after a sync', async () => {
    const res = await fetch(mcpUrl.replace(/\/mcp$/, '/metrics'), { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/^proxmox_inventory_sync_cycles_total\{cluster="lab",outcome="ok"\} [1-9]/m);
    const types = new Map([...text.matchAll(/^# TYPE (\S+) (\w+)$/gm)].map((m) => [m[1]!, m[2]!]));

    const alerts = parseYaml(page('alerts.yaml')) as { groups: Array<{ rules: Array<{ expr: string }> }> };
    const expressions = [
      ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
      ...dashboard.templating.list.map((v) => v.query.query),
      ...alerts.groups.flatMap((g) => g.rules.map((r) => r.expr)),
    ];
    const names = new Set(
      expressions.flatMap((e) => e.match(/\b(?:proxmox_inventory|process|nodejs)_[a-z0-9_]+/g) ?? []),
    );
    expect(names.size).toBeGreaterThan(15);
    const unknown = [...names].filter((name) => {
      if (types.has(name)) return false;
      const histogram = name.replace(/_(bucket|sum|count)$/, '');
      return types.get(histogram) !== 'histogram';
    });
    expect(unknown).toEqual([]);
  });
});

describe('docs/running.md', () => {
  const hasSqlite3 = spawnSync('sqlite3', ['-version']).status === 0;
  const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;
  const running = page('running.md');

  it.skipIf(!hasSqlite3)('both backup commands copy the inventory while serve writes it', async () => {
    const lines = codeBlocks(running, 'sh')
      .flatMap((b) => b.split('\n'))
      .filter((l) => l.startsWith(`sqlite3 ${PAGE_DATA_DIR}/inventory.db`));
    expect(lines).toHaveLength(2);
    const dir = mkdtempSync(join(tmpdir(), 'pi-docs-backup-'));
    try {
      for (const [i, line] of lines.entries()) {
        const out = join(dir, String(i));
        await run('sh', ['-c', `mkdir ${out} && umask 077 && ${mapped(line).split('/backup/').join(`${out}/`)}`]);
        const [file] = readdirSync(out);
        const copy = new Database(join(out, file!), { readonly: true });
        try {
          expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
          expect(copy.prepare('SELECT count(*) FROM guests WHERE deleted_at IS NULL').pluck().get()).toBe(guests);
        } finally {
          copy.close();
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!hasSystemdAnalyze)('the systemd unit passes systemd-analyze verify', async () => {
    const [unit] = codeBlocks(running, 'ini').filter((b) => b.startsWith('[Unit]'));
    expect(unit).toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), 'pi-docs-unit-'));
    try {
      const file = join(dir, 'proxmox-inventory.service');
      writeFileSync(file, unit!);
      const { stderr } = await run('systemd-analyze', ['verify', file]);
      expect(stderr).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
