/**
 * The command line end to end, as an operator runs it: `sim` in one process, `check` in another
 * with the credentials `sim` wrote, and configuration errors with their exit status.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';

const CLI = ['--import', 'tsx', 'src/cli.ts'];
const dir = mkdtempSync(join(tmpdir(), 'pi-cli-'));
const children: ChildProcess[] = [];

function run(
  args: string[],
  env: Record<string, string> = {},
  command: string[] = [process.execPath, ...CLI],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command[0]!, [...command.slice(1), ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
      cwd: process.cwd(),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function startSim(args: string[]): Promise<{ child: ChildProcess; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CLI, 'sim', ...args], { env: { PATH: process.env.PATH ?? '' } });
    children.push(child);
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d;
      if (output.includes('Ctrl-C stops it.')) resolve({ child, output });
    });
    child.on('exit', (code) => reject(new Error(`sim exited with ${code}: ${output}`)));
  });
}

afterAll(() => {
  for (const child of children) child.kill('SIGTERM');
});

function parseEnv(file: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line);
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}

describe('proxmox-inventory CLI', () => {
  it('sim serves 10,000 guests over HTTPS; check connects with the pinned fingerprint it wrote', async () => {
    const envFile = join(dir, 'sim.env');
    writeFileSync(envFile, 'left over from before\n', { mode: 0o644 }); // an existing file must not stay readable
    const { output } = await startSim(['--guests', '10000', '--nodes', '16', '--port', '0', '--write-env', envFile]);
    expect(output).toMatch(/16 nodes, 10000 guests/);
    const fingerprint = /fingerprint {2}([0-9A-F:]{95})/.exec(output)![1]!;
    expect(statSync(envFile).mode & 0o777).toBe(0o600);
    const env = parseEnv(envFile);
    expect(env.PVE_FINGERPRINT).toBe(fingerprint);
    expect(output).not.toContain(env.PVE_TOKEN_SECRET); // the secret goes to the file only

    const check = await run(['check'], env);
    expect(check.stderr).toBe('');
    // version, resources, status and the token's privileges on / (the full token has Sys.Syslog: no warning)
    expect(check.stdout).toMatch(
      /^default: ok, Proxmox VE 9\.1\.1, 16 nodes \(16 online, quorate\), 10000 guests \(\d+ qemu, \d+ lxc\), 64 storage entries; 4 API calls in \d+ ms\n$/,
    );
    expect(check.code).toBe(0);

    // The read-only token the env file names in a comment: PVEAuditor, without Sys.Syslog.
    const [, auditorId, auditorSecret] = /^# read-only token: PVE_TOKEN_ID=(\S+) PVE_TOKEN_SECRET=(\S+)$/m.exec(
      readFileSync(envFile, 'utf8'),
    )!;
    const audited = await run(['check'], { ...env, PVE_TOKEN_ID: auditorId!, PVE_TOKEN_SECRET: auditorSecret! });
    expect(audited.stderr).toBe('');
    expect(audited.code).toBe(0);
    expect(audited.stdout).toMatch(
      new RegExp(
        '^default: ok, Proxmox VE 9\\.1\\.1, 16 nodes .*; 4 API calls in \\d+ ms\n' +
          "default: warning: the token lacks Sys\\.Syslog on /, so /cluster/log hides other users' config edits; they are seen by the sweep \\(every 6 h\\) instead " +
          '\\(grant a role with Sys\\.Syslog, README: The API token\\)\n$',
      ),
    );

    const unpinned = await run(['check'], { ...env, PVE_FINGERPRINT: '' });
    expect(unpinned.code).toBe(1);
    // The four reads go out together; whichever is refused first is named.
    expect(unpinned.stdout).toMatch(/default: FAILED: GET \/\S+ → self-signed certificate/);
    expect(unpinned.stdout).toContain(`PVE_FINGERPRINT=${fingerprint}`);
  }, 60_000);

  it('sync --once prints a line per cluster; snapshot takes one; serve syncs until SIGTERM and exits cleanly', async () => {
    const envFile = join(dir, 'sync.env');
    await startSim([
      '--guests',
      '200',
      '--nodes',
      '3',
      '--port',
      '0',
      '--http',
      '--write-env',
      envFile,
      '--task-delay',
      '10',
    ]);
    const env = { ...parseEnv(envFile), DATA_DIR: join(dir, 'data'), PVE_CLUSTER_NAME: 'lab' };

    const first = await run(['sync', '--once'], env);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(
      /^lab: ok in \d+ ms · 200 guests, 3 nodes · 209 API calls \(.*\/nodes\/\{node\}\/status 3\) · 200 configs read · changes: cluster\.imported 1, guest\.created 200\n$/,
    );
    const second = await run(['sync', '--once'], env);
    expect(second.stdout).toMatch(
      /^lab: ok in \d+ ms · 200 guests, 3 nodes · 4 API calls \(\/cluster\/resources 1, \/cluster\/status 1, \/cluster\/tasks 1, \/cluster\/log 1\) · 0 configs read · changes: none\n$/,
    );

    const snapshot = await run(['snapshot', '--label', 'before upgrade'], env);
    expect(snapshot.stdout).toMatch(/^snapshot 1 "before upgrade" taken at \S+: 200 guests, 3 nodes\n$/);

    const daemon = spawn(process.execPath, [...CLI, 'serve'], {
      env: {
        PATH: process.env.PATH ?? '',
        ...env,
        SYNC_INTERVAL_SECONDS: '1',
        SNAPSHOT_SCHEDULE: 'off',
        MCP_HTTP_PORT: '0',
      },
    });
    children.push(daemon);
    let log = '';
    daemon.stderr!.on('data', (d: Buffer) => (log += d));
    const mcpLine = /"mcp":"(http:\/\/127\.0\.0\.1:\d+\/mcp)"/;
    for (const deadline = Date.now() + 20_000; !mcpLine.test(log) && Date.now() < deadline;)
      await new Promise((r) => setTimeout(r, 50));
    const mcpUrl = mcpLine.exec(log)![1]!;
    expect((await fetch(mcpUrl.replace(/mcp$/, 'readyz'))).status).toBe(200); // synced within the window
    const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    expect(await (await fetch(mcpUrl.replace(/mcp$/, 'healthz'))).json()).toEqual({ ok: true, version });
    daemon.kill('SIGTERM');
    const code = await new Promise((r) => daemon.once('exit', r));
    expect(code).toBe(0);
    expect(log).toContain('"msg":"proxmox-inventory serving"');
    expect(log).toContain('"msg":"shutting down"');
    const db = new Database(join(dir, 'data', 'inventory.db'), { readonly: true });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(
      (db.prepare('SELECT count(*) AS n FROM sync_runs WHERE ok = 1').get() as { n: number }).n,
    ).toBeGreaterThanOrEqual(3);
    db.close();
  }, 90_000); // five processes started one after another (tsx each), on a shared CI machine

  it('serve refuses to expose MCP beyond loopback without a token', async () => {
    const result = await run(['serve'], {
      PVE_URL: 'https://pve:8006',
      PVE_TOKEN_ID: 'a@pve!b',
      PVE_TOKEN_SECRET: 's',
      MCP_HTTP_HOST: '0.0.0.0',
      DATA_DIR: join(dir, 'refused'),
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      'MCP_HTTP_HOST (mcp.http.host): "0.0.0.0" is reachable from other machines; set MCP_BEARER_TOKEN (or MCP_BEARER_TOKEN_FILE) so /mcp requires it, or listen on 127.0.0.1\n',
    );
  });

  it('MCP_HTTP_HOST=0.0.0.0 without a token does not stop the commands that never listen (sync --once, check)', async () => {
    const envFile = join(dir, 'wildcard.env');
    await startSim(['--guests', '5', '--nodes', '1', '--port', '0', '--http', '--write-env', envFile]);
    // serve's environment, shared with the one-off commands (a container's, a systemd unit's).
    const env = { ...parseEnv(envFile), DATA_DIR: join(dir, 'wildcard'), MCP_HTTP_HOST: '0.0.0.0' };
    const sync = await run(['sync', '--once'], env);
    expect(sync.stderr).not.toContain('MCP_HTTP_HOST');
    expect(sync.stdout).toMatch(/^default: ok in \d+ ms · 5 guests, 1 nodes · /);
    expect(sync.code).toBe(0);
    const check = await run(['check'], env);
    expect(check.stdout).toMatch(/^default: ok, /);
    expect(check.code).toBe(0);
    const serve = await run(['serve'], env);
    expect(serve.stderr).toMatch(/^MCP_HTTP_HOST \(mcp\.http\.host\): "0\.0\.0\.0" is reachable from other machines; /);
    expect(serve.code).toBe(2);
  }, 60_000);

  // A cluster's first sync that failed used to say "last-known inventory kept" of an inventory that never was.
  it('a failed sync --once says whether there was an inventory to keep', async () => {
    const envFile = join(dir, 'failing.env');
    const sim = await startSim(['--guests', '5', '--nodes', '1', '--port', '0', '--http', '--write-env', envFile]);
    const env = { ...parseEnv(envFile), DATA_DIR: join(dir, 'failing') };
    const never = await run(['sync', '--once'], { ...env, PVE_URL: 'http://127.0.0.1:1' });
    expect(never.stdout).toMatch(/^default: FAILED after \d+ ms: .+ \(no inventory of it yet\)\n$/);
    expect(never.code).toBe(1);
    expect((await run(['sync', '--once'], env)).code).toBe(0);
    sim.child.kill('SIGTERM');
    await new Promise((r) => sim.child.once('exit', r));
    const after = await run(['sync', '--once'], env);
    expect(after.stdout).toMatch(/^default: FAILED after \d+ ms: .+ \(last-known inventory kept, marked stale\)\n$/);
    expect(after.code).toBe(1);
  }, 60_000);

  it('serve says which setting to change when the MCP port is taken', async () => {
    const { createServer } = await import('node:net');
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const result = await run(['serve'], {
        PVE_URL: 'https://pve:8006',
        PVE_TOKEN_ID: 'a@pve!b',
        PVE_TOKEN_SECRET: 's',
        MCP_HTTP_PORT: String(port),
        SYNC_INTERVAL_SECONDS: '0',
        DATA_DIR: join(dir, 'busy'),
      });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(
        `cannot listen on 127.0.0.1:${port} (EADDRINUSE); choose another port with MCP_HTTP_PORT, or MCP_HTTP=off`,
      );
    } finally {
      blocker.close();
    }
  });

  it('sync without --once says what to use', async () => {
    const result = await run(['sync']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^sync: only `sync --once` exists; `serve` syncs on a schedule\n/);
  });

  it('reports every configuration problem and exits 2', async () => {
    const result = await run(['check'], { PVE_URL: 'https://pve:8006', PVE_TOKEN_ID: 'root@pam' });
    expect(result.code).toBe(2);
    // One line per problem, each naming its variable; no header.
    expect(result.stderr.split('\n')).toEqual([
      expect.stringMatching(/^PVE_TOKEN_ID: expected an API token id /),
      expect.stringMatching(/^PVE_TOKEN_SECRET: missing; /),
      '',
    ]);
  });

  it('rejects an unknown command or a bad flag in one line, pointing at the help', async () => {
    const bogus = await run(['bogus']);
    expect(bogus.code).toBe(2);
    expect(bogus.stderr).toMatch(
      /^unknown command "bogus"; the commands are serve, .*\nsee proxmox-inventory --help\n$/,
    );
    const badFlag = await run(['sim', '--guests', 'many']);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toBe(
      'sim: --guests: expected a whole number, got "many"\nsee proxmox-inventory sim --help\n',
    );
    const fraction = await run(['sim', '--port', '-1']);
    expect(fraction.stderr).toContain('sim: --port: expected a whole number from 0 to 65535, got "-1"');
  });

  it('sim refuses a non-loopback address and a bad LOG_LEVEL', async () => {
    const open = await run(['sim', '--host', '0.0.0.0', '--port', '0']);
    expect(open.code).toBe(2);
    expect(open.stderr).toMatch(
      /^--host: the simulator listens on loopback only \(127\.0\.0\.1, ::1\), not 0\.0\.0\.0\n/,
    );
    const loud = await run(['sim', '--port', '0'], { LOG_LEVEL: 'loud' });
    expect(loud.code).toBe(2);
    expect(loud.stderr).toContain('LOG_LEVEL: "loud" is not one of fatal, error, warn, info, debug, trace');
  });
});

/** A command's syntax as help or README writes it: its words and its options with their placeholders. */
interface Usage {
  positionals: string[];
  options: Map<string, string | null>;
}

/** `--name` and its placeholder, if it takes a value (`FILE`, `N`, `realistic|dense`). */
const OPTION = /--([a-z][a-z-]*)(?: ([A-Z]+|[a-z]+(?:\|[a-z]+)+))?/g;

function addOptions(usage: Usage, text: string): void {
  for (const [, name, value] of text.matchAll(OPTION)) usage.options.set(name!, value ?? null);
}

function parseSyntax(syntax: string): Usage {
  const usage: Usage = { positionals: [], options: new Map() };
  addOptions(usage, syntax);
  // Words outside brackets that are neither options nor their placeholders: `reset NAME`.
  const bare = syntax.replace(/\[[^\]]*\]/g, ' ').replace(OPTION, ' ');
  usage.positionals = bare.split(/\s+/).filter((w) => w && w !== '…');
  return usage;
}

/** The commands of `help`: a line each (two spaces in), options continuing on lines six spaces in. */
function helpCommands(help: string): Map<string, Usage> {
  const section = help.split('\nCommands:\n')[1]!.split('\n\n')[0]!;
  const commands = new Map<string, Usage>();
  let current: Usage | undefined;
  for (const line of section.split('\n')) {
    const command = /^ {2}([a-z]+)(.*)$/.exec(line);
    if (command) commands.set(command[1]!, (current = parseSyntax(command[2]!.split(/ {2,}/)[0]!)));
    else if (/^ {6}--/.test(line)) addOptions(current!, line);
  }
  return commands;
}

/** The commands of README's "## Commands" block: `proxmox-inventory <command> <syntax>  <what it does>`. */
function readmeCommands(readme: string): Map<string, Usage> {
  const section = readme.split('\n## Commands\n')[1]!.split('\n## ')[0]!;
  const block = section.split('```')[1]!;
  const commands = new Map<string, Usage>();
  for (const [, name, rest] of block.matchAll(/^proxmox-inventory ([a-z]+)(.*)$/gm))
    commands.set(name!, parseSyntax(rest!.split(/ {2,}/)[0]!));
  return commands;
}

/** Arguments that exercise every option of a usage (a value for each that takes one). */
function argumentsFor(usage: Usage): string[] {
  const words = usage.positionals.map((w) => (/^[A-Z]+$/.test(w) ? 'x' : w));
  const options = [...usage.options].flatMap(([name, value]) => [
    `--${name}`,
    ...(value === null ? [] : [value.includes('|') ? value.split('|')[0]! : '1']),
  ]);
  return [...words, ...options];
}

describe('help, the parser and README agree', () => {
  it('every command and option help lists is accepted, every one the parser accepts is listed, and README says the same', async () => {
    const help = await run(['help']);
    expect(help.code).toBe(0);
    const listed = helpCommands(help.stdout);

    const unknown = await run(['not-a-command']);
    const commands = /the commands are (.*)$/m.exec(unknown.stderr)![1]!.split(/, | and /);
    expect([...listed.keys()]).toEqual(commands);

    // Each command given every option help lists, then one it cannot know: the parser reaches the
    // last (so it accepted the others) and names what the command takes.
    const answers: Array<Awaited<ReturnType<typeof run>>> = [];
    // Two at a time: the machine running the tests is shared.
    for (let i = 0; i < commands.length; i += 2)
      answers.push(
        ...(await Promise.all(
          commands.slice(i, i + 2).map((c) => run([c, ...argumentsFor(listed.get(c)!), '--not-an-option'])),
        )),
      );
    commands.forEach((command, i) => {
      const { code, stderr } = answers[i]!;
      const first = stderr.split('\n')[0]!;
      expect(first, command).toMatch(
        new RegExp(`^${command}: unknown option --not-an-option; (its options are|it takes no options)`),
      );
      expect(code).toBe(2);
      const accepted: Usage = { positionals: [], options: new Map() };
      addOptions(accepted, first.split('; ')[1]!);
      expect(Object.fromEntries(accepted.options), command).toEqual(Object.fromEntries(listed.get(command)!.options));
    });

    const readme = readFileSync('README.md', 'utf8');
    const documented = readmeCommands(readme);
    expect([...documented.keys()]).toEqual(commands);
    for (const [command, usage] of documented) {
      const full = listed.get(command)!;
      expect(usage.positionals, command).toEqual(full.positionals);
      for (const [option, value] of usage.options)
        expect(full.options.get(option), `${command} --${option}`).toBe(value);
      // README abbreviates only the simulator's many options.
      if (command !== 'sim') expect(usage.options.size, command).toBe(full.options.size);
    }
  }, 120_000);

  it('help and README give the demo’s intervals, DATA_DIR and --port 0 alike', async () => {
    const help = (await run(['--help'])).stdout.replace(/\s+/g, ' ');
    const commandsSection = readFileSync('README.md', 'utf8').split('\n## Commands\n')[1]!.split('\n## ')[0]!;
    const readme = commandsSection.replace(/\s+/g, ' ');
    const demo = /(\d+)-guest cluster synced every (\d+) s into \.\/data\/demo, an out-of-band change every (\d+) s/;
    expect(demo.exec(help)?.slice(1)).toEqual(['300', '5', '3']);
    expect(demo.exec(readme)?.slice(1)).toEqual(demo.exec(help)?.slice(1));
    for (const text of [help, readme]) {
      expect(text).toContain('DATA_DIR');
      expect(text).toMatch(/--port (N \(8006; )?0 picks a free port/);
    }
  });
});

describe('startup and file failures: one sentence with the fix, no stack', () => {
  const noStack = (stderr: string): void => {
    expect(stderr).not.toMatch(/^\s+at /m);
    expect(stderr.trim().split('\n')).toHaveLength(1);
  };

  it('sim on a port in use says --port 0 picks a free one', async () => {
    const { createServer } = await import('node:net');
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const result = await run(['sim', '--port', String(port), '--write-env', join(dir, 'busy.env')]);
      expect(result.code).toBe(2);
      expect(result.stderr).toBe(
        `the simulator cannot listen on 127.0.0.1:${port}: the port is in use; choose another with --port N, or --port 0 for a free one\n`,
      );
    } finally {
      blocker.close();
    }
  });

  it('DATA_DIR that is a file is a configuration problem naming it', async () => {
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, '');
    const result = await run(['snapshot'], { DATA_DIR: file });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      `DATA_DIR: ${file} is a file, not a directory; point it at a directory (it is created if missing)\n`,
    );
  });

  // Root writes anywhere: the refusal needs an ordinary user (nobody), run with setpriv.
  const asNobody = process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0;
  it.skipIf(!asNobody)('a DATA_DIR this user may not create: the path, the reason and DATA_DIR', async () => {
    const parent = join(dir, 'root-only');
    mkdirSync(parent);
    chmodSync(dir, 0o755); // nobody may pass through, but not write in root-only
    const dataDir = join(parent, 'data');
    const result = await run(
      ['sync', '--once'],
      { PVE_URL: 'https://127.0.0.1:1', PVE_TOKEN_ID: 'a@pve!b', PVE_TOKEN_SECRET: 's', DATA_DIR: dataDir, HOME: dir },
      ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, ...CLI],
    );
    expect(result.code).toBe(1);
    noStack(result.stderr);
    expect(result.stderr).toContain(dataDir);
    expect(result.stderr).toMatch(/permission denied|may not be written/);
    expect(result.stderr).toMatch(/DATA_DIR|owner/);
  });

  it('serve refuses a 3-character token from MCP_BEARER_TOKEN_FILE on 0.0.0.0, as it would from MCP_BEARER_TOKEN', async () => {
    const tokenFile = join(dir, 'short.token');
    writeFileSync(tokenFile, 'abc\n');
    const result = await run(['serve'], {
      PVE_URL: 'https://pve:8006',
      PVE_TOKEN_ID: 'a@pve!b',
      PVE_TOKEN_SECRET: 's',
      MCP_HTTP_HOST: '0.0.0.0',
      MCP_BEARER_TOKEN_FILE: tokenFile,
      DATA_DIR: join(dir, 'short-token'),
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      `MCP_BEARER_TOKEN_FILE: the token in ${tokenFile} is too short; use at least 16 characters (e.g. \`openssl rand -hex 32\`)\n`,
    );
  });
});

describe('npm run extract-schema', () => {
  const SCRIPT = [process.execPath, '--import', 'tsx', 'scripts/extract-pve-schema.ts'];

  it('without its input says where the schema comes from', async () => {
    const result = await run([], {}, SCRIPT);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      'extract-schema: no API schema given (src/sim/pve-schema.json ships extracted; this only updates it): copy /usr/share/pve-docs/api-viewer/apidoc.js from a Proxmox VE node (package pve-docs) or download https://pve.proxmox.com/pve-docs/api-viewer/apidoc.js, then run `npm run extract-schema -- apidoc.js`\n',
    );
    const missing = await run([join(dir, 'apidoc.js')], {}, SCRIPT);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^extract-schema: cannot read .*apidoc\.js \(ENOENT\); copy \/usr\/share\/pve-docs/);
  });

  it('reads an apidoc.js (the schema, then the viewer’s code) back into the shipped file’s endpoints', async () => {
    const shipped = JSON.parse(readFileSync('src/sim/pve-schema.json', 'utf8')) as {
      endpoints: Record<string, { parameters: unknown; returns: unknown; permissions: unknown }>;
    };
    // The tree apidoc.js holds, with the descriptions the script drops; brackets and quotes in strings.
    const byPath = new Map<string, Record<string, unknown>>();
    for (const [endpoint, info] of Object.entries(shipped.endpoints)) {
      const [method, path] = endpoint.split(' ') as [string, string];
      const node = byPath.get(path) ?? {};
      node[method] = { ...info, description: 'a "quoted ] bracket" and [ another' };
      byPath.set(path, node);
    }
    const tree = [...byPath].map(([path, info]) => ({ path, text: path, info, leaf: 1 }));
    const apidoc = join(dir, 'apidoc.js');
    writeFileSync(
      apidoc,
      `const apiSchema = ${JSON.stringify(tree, null, 3)};\n\nExt.onReady(function() { const x = [[1], ']']; });\n`,
    );
    const out = join(dir, 'pve-schema.json');
    const result = await run([apidoc, out], {}, SCRIPT);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect((JSON.parse(readFileSync(out, 'utf8')) as typeof shipped).endpoints).toEqual(shipped.endpoints);
  });
});
