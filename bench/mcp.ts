/**
 * MCP benchmark at 10,000 guests: per-call latency of read tools over stdio (`proxmox-inventory mcp`)
 * and over Streamable HTTP (`serve`), both the built daemon in its own process; the size of a
 * 50-guest page and of tools/list. Tokens two ways: characters / 4 (the usual rule of thumb) and
 * o200k_base, a real BPE vocabulary (gpt-tokenizer); Claude's tokenizer is not public. The same 50
 * guests in the layout of the original ProxmoxMCP's VM list (an emoji line and five bullet lines
 * per guest) are counted with the same vocabulary, for comparison.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ListToolsResultSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';

const GUESTS = 10_000;
// A p99 from 300 calls is the 3rd-slowest call and swings with one GC pause; 2,000 make it steady.
const CALLS = 2_000;

function waitFor(child: ChildProcess, stream: 'stdout' | 'stderr', pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let out = '';
    child[stream]!.on('data', (d: Buffer) => {
      out += d;
      const m = pattern.exec(out);
      if (m) resolve(m);
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code}: ${out.slice(-500)}`)));
  });
}

interface PageGuest {
  vmid: number;
  name: string | null;
  node: string;
  status: string;
  maxcpu: number | null;
  mem: number | null;
  maxmem: number | null;
}

/** The layout of ProxmoxMCP's VM list (formatting/templates.py vm_list), rebuilt here as a baseline. */
function emojiLayout(guests: PageGuest[]): string {
  const gb = (n: number | null): string => `${((n ?? 0) / 2 ** 30).toFixed(2)} GB`;
  const lines = ['🖥️ Virtual Machines'];
  for (const g of guests) {
    const pct = g.maxmem ? ((g.mem ?? 0) / g.maxmem) * 100 : 0;
    lines.push(
      '',
      `🖥️ ${g.name ?? ''} (ID: ${g.vmid})`,
      `  • Status: ${g.status.toUpperCase()}`,
      `  • Node: ${g.node}`,
      `  • CPU Cores: ${g.maxcpu ?? 'N/A'}`,
      `  • Memory: ${gb(g.mem)} / ${gb(g.maxmem)} (${pct.toFixed(1)}%)`,
    );
  }
  return lines.join('\n');
}

async function latency(call: () => Promise<unknown>): Promise<{ median: number; p99: number }> {
  for (let i = 0; i < 30; i++) await call();
  const times: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const t = performance.now();
    await call();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)]!, p99: times[Math.floor(times.length * 0.99)]! };
}

function toolCall(client: Client, name: string, args: Record<string, unknown>): () => Promise<unknown> {
  return async () => {
    const r = (await client.callTool({ name, arguments: args })) as CallToolResult;
    if (r.isError) throw new Error(`${name} answered an error: ${JSON.stringify(r.content)}`);
  };
}

/**
 * The SDK's HTTP client transport passes one AbortSignal to every fetch, and undici's listeners on
 * it outlive the requests: past 1,500 calls Node warns on every call. It is the benchmark's client
 * (our server makes a transport per request), so the warning is said once instead of thousands of times.
 */
function quietClientSignalWarning(): void {
  let said = false;
  process.removeAllListeners('warning');
  process.on('warning', (w) => {
    if (w.name !== 'MaxListenersExceededWarning') process.stderr.write(`${w.name}: ${w.message}\n`);
    else if (!said)
      process.stderr.write(
        "(the SDK HTTP client transport keeps one abort listener per call on a shared signal: Node's MaxListenersExceededWarning, shown once)\n",
      );
    said ||= w.name === 'MaxListenersExceededWarning';
  });
}

export async function benchMcp(): Promise<void> {
  quietClientSignalWarning();
  const dir = mkdtempSync(join(tmpdir(), 'pi-bench-mcp-'));
  const envFile = join(dir, 'sim.env');
  const sim = spawn(
    process.execPath,
    [
      'dist/cli.js',
      'sim',
      '--http',
      '--port',
      '0',
      '--guests',
      String(GUESTS),
      '--nodes',
      '16',
      '--write-env',
      envFile,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await waitFor(sim, 'stdout', /Ctrl-C stops it\./);
  const env = Object.fromEntries(
    readFileSync(envFile, 'utf8')
      .split('\n')
      .filter((l) => /^PVE_/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  const daemonEnv = {
    PATH: process.env.PATH ?? '',
    ...env,
    DATA_DIR: join(dir, 'data'),
    LOG_LEVEL: 'info',
    SYNC_INTERVAL_SECONDS: '0',
    SNAPSHOT_SCHEDULE: 'off',
    MCP_HTTP_PORT: '0',
  };
  const once = spawn(process.execPath, ['dist/cli.js', 'sync', '--once'], {
    env: daemonEnv,
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  await new Promise((r) => once.once('exit', r));
  const serve = spawn(process.execPath, ['dist/cli.js', 'serve'], {
    env: daemonEnv,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const url = (await waitFor(serve, 'stderr', /"mcp":"(http:\/\/[^"]+)"/))[1]!;

  const stdio = new Client({ name: 'bench', version: '1' });
  await stdio.connect(
    new StdioClientTransport({
      command: process.execPath,
      args: ['dist/cli.js', 'mcp'],
      env: { ...daemonEnv, LOG_LEVEL: 'error' },
    }),
  );
  const http = new Client({ name: 'bench', version: '1' });
  await http.connect(new StreamableHTTPClientTransport(new URL(url)));

  const tools = new Set((await stdio.listTools()).tools.map((t) => t.name));
  const page = (await stdio.callTool({ name: 'list_guests', arguments: { limit: 50 } })) as CallToolResult;
  const pageText = (page.content[0] as { text: string }).text;
  const toolsListBytes = JSON.stringify(await stdio.listTools()).length;
  const someVmid = (page.structuredContent as { guests: Array<{ vmid: number }> }).guests[7]!.vmid;
  const cases: Array<[string, Record<string, unknown>]> = [
    ['list_guests', { status: 'running', tag: 'prod', limit: 50 }],
    ['list_guests', { protection: true, limit: 50 }],
    ['list_guests', { storage: 'ceph-vm', sort: 'maxmem', order: 'desc', limit: 50 }],
    ['list_guests', { countBy: 'tag', status: 'running' }],
    ['get_guest', { vmid: someVmid }],
    ['inventory_overview', {}],
    ['find_capacity', { cores: 4, memoryGiB: 8 }],
  ];

  process.stdout.write(
    `\nMCP: ${GUESTS.toLocaleString('en')} guests on 16 nodes; the built daemon; ${CALLS} calls per tool after 30 warm-up calls\n`,
  );
  process.stdout.write(
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}\n\n`,
  );
  process.stdout.write(
    '| tool | arguments | stdio median ms | stdio p99 ms | HTTP median ms | HTTP p99 ms |\n|---|---|---:|---:|---:|---:|\n',
  );
  const row = (name: string, args: string, s: { median: number; p99: number }, h: typeof s): void => {
    const ms = [s.median, s.p99, h.median, h.p99].map((n) => n.toFixed(2)).join(' | ');
    process.stdout.write(`| ${name} | ${args} | ${ms} |\n`);
  };
  // The floor under every row: a JSON-RPC round trip that does no work, over the same transport.
  row('(ping)', '', await latency(() => stdio.ping()), await latency(() => http.ping()));
  // Client.listTools also compiles a validator per output schema on every call: that is the client's
  // cost, not the server's, so the bare request is timed.
  const listTools = (c: Client) => () => c.request({ method: 'tools/list' }, ListToolsResultSchema);
  row('(tools/list)', '', await latency(listTools(stdio)), await latency(listTools(http)));
  for (const [name, args] of cases) {
    if (!tools.has(name)) {
      process.stdout.write(`| ${name} | ${JSON.stringify(args)} | (tool not built yet) | | | |\n`);
      continue;
    }
    const s = await latency(toolCall(stdio, name, args));
    row(name, `\`${JSON.stringify(args)}\``, s, await latency(toolCall(http, name, args)));
  }
  process.stdout.write(`(load average after the calls: ${loadavg()[0]!.toFixed(1)})\n`);
  const sameFacts = ['vmid', 'name', 'node', 'status', 'maxcpu', 'mem', 'maxmem'];
  const wide = (await stdio.callTool({
    name: 'list_guests',
    arguments: { limit: 50, fields: sameFacts },
  })) as CallToolResult;
  const renderings: Array<[string, string]> = [
    ['ours, default columns (vmid name type node status)', pageText],
    [`ours, fields ${sameFacts.join(',')}`, (wide.content[0] as { text: string }).text],
    ["the same fields in ProxmoxMCP's layout", emojiLayout((wide.structuredContent as { guests: PageGuest[] }).guests)],
  ];
  const guestsOnPage = (page.structuredContent as { guests: unknown[] }).guests.length;
  const perGuest = (n: number): string => (n / guestsOnPage).toFixed(1);
  process.stdout.write(`\n50-guest page of list_guests (the text a model reads, freshness line included):\n\n`);
  process.stdout.write(
    '| rendering | bytes | tokens (chars/4) | per guest | tokens (o200k_base) | per guest |\n|---|---:|---:|---:|---:|---:|\n',
  );
  for (const [label, text] of renderings) {
    const tokens = countTokens(text);
    process.stdout.write(
      `| ${label} | ${Buffer.byteLength(text)} | ${Math.round(text.length / 4)} | ${perGuest(text.length / 4)} | ${tokens} | ${perGuest(tokens)} |\n`,
    );
  }
  process.stdout.write(
    `\nstructured content of the default page: ${JSON.stringify(page.structuredContent).length} bytes\n`,
  );
  process.stdout.write(`tools/list: ${toolsListBytes} bytes for ${tools.size} tools\n`);

  await stdio.close();
  await http.close();
  serve.kill('SIGTERM');
  sim.kill('SIGTERM');
}
