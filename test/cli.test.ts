/**
 * The command line end to end, as an operator runs it: `sim` in one process, `check` in another
 * with the credentials `sim` wrote, and configuration errors with their exit status.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
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
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...CLI, ...args], {
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
      /^lab: ok in \d+ ms · 200 guests, 3 nodes · 206 API calls \(.*\) · 200 configs read · changes: guest\.created 200\n$/,
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
  }, 30_000);

  it('serve refuses to expose MCP beyond loopback without a token', async () => {
    const result = await run(['serve'], {
      PVE_URL: 'https://pve:8006',
      PVE_TOKEN_ID: 'a@pve!b',
      PVE_TOKEN_SECRET: 's',
      MCP_HTTP_HOST: '0.0.0.0',
      DATA_DIR: join(dir, 'refused'),
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      'MCP_HTTP_HOST (mcp.http.host): 0.0.0.0 is reachable from other machines; set MCP_BEARER_TOKEN',
    );
  });

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
    expect(result.stderr).toContain('invalid configuration (2 problems):');
    expect(result.stderr).toContain('PVE_TOKEN_ID: expected an API token id');
    expect(result.stderr).toContain('PVE_TOKEN_SECRET: missing');
  });

  it('rejects an unknown command or a bad flag with the usage text', async () => {
    const bogus = await run(['bogus']);
    expect(bogus.code).toBe(2);
    expect(bogus.stderr).toMatch(/^unknown command "bogus"\n\nproxmox-inventory <command>/);
    const badFlag = await run(['sim', '--guests', 'many']);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toContain('--guests: expected a whole number, got "many"');
    const fraction = await run(['sim', '--port', '1.5']);
    expect(fraction.stderr).toContain('--port: expected a whole number, got "1.5"');
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
