/**
 * The command line's answers to mistakes and failures, as a user trial met them: one line saying
 * what to change (and where the help is), the exit status README promises, never a stack. The CLI
 * is spawned where its parsing and exit status are the point; the disk-full report is also called
 * directly with a real SqliteError, since a full file system cannot be made portably.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { describeFailure } from '../src/cli-errors.js';

const CLI = ['--import', 'tsx', 'src/cli.ts'];
const dir = mkdtempSync(join(tmpdir(), 'pi-cli-errors-'));
const VERSION = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;

/** A configuration that needs no Proxmox: the commands below stop before any request. */
const env: Record<string, string> = {
  PVE_URL: 'https://pve.example.invalid:8006',
  PVE_TOKEN_ID: 'inventory@pve!sync',
  PVE_TOKEN_SECRET: '5f1e2d3c-aaaa-bbbb-cccc-0123456789ab',
  PVE_CLUSTER_NAME: 'lab',
  DATA_DIR: join(dir, 'data'),
  ACTIONS: 'power,snapshot',
};

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], extra: Record<string, string> = {}, shell?: string): Promise<Run> {
  return new Promise((resolve) => {
    // With `shell`, a shell line runs first (`ulimit`) and then execs the CLI with the arguments.
    const [file, argv] = shell
      ? ['sh', ['-c', `${shell}; exec "$0" "$@"`, process.execPath, ...CLI, ...args]]
      : [process.execPath, [...CLI, ...args]];
    const child = spawn(file, argv, { env: { PATH: process.env.PATH ?? '', ...env, ...extra }, cwd: process.cwd() });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs two at a time: the machine running the tests is shared. */
async function runAll(cases: string[][]): Promise<Run[]> {
  const runs: Run[] = [];
  for (let i = 0; i < cases.length; i += 2) runs.push(...(await Promise.all(cases.slice(i, i + 2).map((c) => run(c)))));
  return runs;
}

const SEE_ACTION_HELP = 'see proxmox-inventory action --help\n';

describe('action: a mistake in an option or argument is one line, exit 2, said the shell’s way', () => {
  it('option values, vmids and kinds', async () => {
    const cases: Array<[string[], string]> = [
      [
        ['action', 'shutdown', '101', '--timeout', '0'],
        'action shutdown: --timeout: expected a whole number of seconds from 1 to 3600, got "0"',
      ],
      // A negative number after an option is its value, not an option.
      [
        ['action', 'shutdown', '101', '--timeout', '-1'],
        'action shutdown: --timeout: expected a whole number of seconds from 1 to 3600, got "-1"',
      ],
      [
        ['action', 'start', '101', '--timeout', '30'],
        'action start: --timeout is not an option of action start; its options are --cluster NAME and --yes',
      ],
      [
        ['action', 'snapshot-create', '101', '--name', '1bad'],
        'action snapshot-create: --name: a snapshot name is a letter, then 1–39 letters, digits, - or _ (Proxmox rule), e.g. "before-upgrade", got "1bad"',
      ],
      [['action', 'snapshot-delete', '101'], 'action snapshot-delete: --name N is required'],
      [
        ['action', 'start', '99999999999999999999'],
        'action start: a vmid is a whole number from 100 to 999999999, as Proxmox VE numbers guests; got "99999999999999999999"',
      ],
      [
        ['action', 'snapshot_create', '101'],
        'action snapshot-create: --name N is required', // the ACTIONS spelling is accepted, answered in the CLI's
      ],
      [
        ['action', 'bogus', '101'],
        'action: unknown kind "bogus"; the kinds are start, shutdown, stop, reboot, suspend, resume, snapshot-create, snapshot-rollback, snapshot-delete (and list, show ID, cancel ID)',
      ],
      [
        ['action', 'list', '--since', 'yesterdayish'],
        'action list: --since: neither an ISO 8601 time nor a duration back from now; use an ISO 8601 time ("2025-01-02T03:04:05Z"; UTC when it has no offset) or a duration back from now ("90s", "15m", "2h", "7d", "1h30m")',
      ],
      [
        ['action', 'list', '--yes'],
        'action list: --yes is not an option of action list; its options are --state S, --since TIME and --limit N',
      ],
    ];
    const runs = await runAll(cases.map(([args]) => args));
    cases.forEach(([args, line], i) => {
      expect(runs[i]!.stderr, args.join(' ')).toBe(`${line}\n${SEE_ACTION_HELP}`);
      expect(runs[i]!.code, args.join(' ')).toBe(2);
    });
  }, 300_000);

  it('an unknown cluster names the configured ones (exit 2); an unknown vmid points at the CLI, not MCP tools (exit 1)', async () => {
    const [cluster, state, missing, otherCluster] = await runAll([
      ['action', 'start', '101', '--cluster', 'nope'],
      ['action', 'list', '--state', 'done'],
      ['action', 'start', '999'],
      ['action', 'start', '999', '--cluster', 'lab'],
    ]);
    // Option values checked against the configuration are usage errors too, pointing at the help.
    expect(cluster!.stderr).toBe(`action start: --cluster: no cluster nope; configured: lab\n${SEE_ACTION_HELP}`);
    expect(cluster!.code).toBe(2);
    expect(state!.stderr).toBe(
      `action list: --state: expected one of queued, running, succeeded, failed, expired, cancelled, got "done"\n${SEE_ACTION_HELP}`,
    );
    expect(state!.code).toBe(2);
    expect(missing!.stderr).toBe(
      'action start: No guest 999 in the inventory. A guest created since the last sync is there after the next (serve syncs on its schedule, `proxmox-inventory sync --once` now).\n',
    );
    expect(missing!.code).toBe(1);
    expect(otherCluster!.stderr).toMatch(/^action start: No guest 999 in cluster lab in the inventory\. /);
    for (const r of [missing!, otherCluster!]) expect(r.stderr).not.toMatch(/list_guests|search_inventory/);
  }, 180_000);
});

describe('other commands: usage errors without the whole help', () => {
  it('an unknown command points at --help; --version and -V print the version', async () => {
    const [bogus, version, short, help] = await runAll([['bogus'], ['--version'], ['-V'], ['help']]);
    expect(bogus!.stderr).toBe(
      'unknown command "bogus"; the commands are serve, sync, snapshot, cluster, mcp, check, action, webhooks, sim, demo and help\nsee proxmox-inventory --help\n',
    );
    expect(bogus!.code).toBe(2);
    for (const r of [version!, short!]) {
      expect(r.stdout).toBe(`${VERSION}\n`);
      expect(r.code).toBe(0);
    }
    expect(help!.stdout).toMatch(/^ {2}--version +the version of proxmox-inventory \(also -V\)$/m);
    const readme = readFileSync('README.md', 'utf8').split('\n## Commands\n')[1]!.split('\n## ')[0]!;
    expect(readme).toMatch(/^proxmox-inventory --version +.*-V/m);
  }, 180_000);

  // `… | head -1` closes the pipe early: Node threw EPIPE with a stack, and `webhooks add` lost the
  // secret it prints once, after saving the subscription.
  it.each(['--version', 'help', 'webhooks list'])(
    'a reader that goes away early (%s | head -0) ends nothing: no stack, the command’s own status',
    async (line) => {
      const child = spawn(process.execPath, [...CLI, ...line.split(' ')], {
        env: { PATH: process.env.PATH ?? '', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout.destroy(); // the reader is gone before the command writes
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      const code = await new Promise((r) => child.on('close', r));
      expect(stderr).toBe('');
      expect(code).toBe(0);
    },
    60_000,
  );

  // A label no table can show was refused by the store: exit 1, and no pointer to the help.
  it('a snapshot label with a control character or over 200 characters is a usage error (exit 2)', async () => {
    const [bell, long] = await runAll([
      ['snapshot', '--label', 'pre\u0007x'],
      ['snapshot', '--label', 'x'.repeat(201)],
    ]);
    expect(bell!.stderr).toBe(
      'snapshot: --label: The snapshot label holds a control character (U+0007 at character 4); give one line of plain text.\nsee proxmox-inventory snapshot --help\n',
    );
    expect(long!.stderr).toBe(
      'snapshot: --label: The snapshot label has 201 characters; give one of at most 200.\nsee proxmox-inventory snapshot --help\n',
    );
    for (const r of [bell!, long!]) expect(r.code).toBe(2);
  }, 60_000);

  // They read the inventory only, yet asked for a Proxmox cluster's settings (exit 2).
  it('the read-only action and webhooks commands need no Proxmox settings, only DATA_DIR', async () => {
    const dataOnly = { PVE_URL: '', PVE_TOKEN_ID: '', PVE_TOKEN_SECRET: '', PVE_CLUSTER_NAME: '', ACTIONS: '' };
    for (const args of [
      ['webhooks', 'list'],
      ['webhooks', 'deliveries'],
      ['action', 'list'],
    ]) {
      const r = await run(args, dataOnly);
      expect(r.stderr, args.join(' ')).toBe('');
      expect(r.code, args.join(' ')).toBe(0);
    }
  }, 60_000);

  it('webhooks add refuses localhost at once unless WEBHOOK_ALLOW_CIDRS names it', async () => {
    const refused = await run(['webhooks', 'add', 'https://localhost/x', '--events', 'guest.*']);
    expect(refused.stderr).toBe(
      'webhooks add: localhost (127.0.0.1) is a loopback address, which webhooks may not reach; if the receiver is yours, add 127.0.0.1/32 to WEBHOOK_ALLOW_CIDRS\n',
    );
    expect(refused.code).toBe(2);
    const allowed = await run(['webhooks', 'add', 'https://localhost/x', '--events', 'guest.*'], {
      WEBHOOK_ALLOW_CIDRS: '127.0.0.0/8',
    });
    expect(allowed.stdout).toMatch(/^wh_\w+ added: guest\.\* → https:\/\/localhost\/x\n/);
    expect(allowed.code).toBe(0);
  }, 180_000);

  it('serve that cannot write its lock file (a full disk; here a file-size limit) says so in one line and leaves no empty lock behind', async () => {
    const dataDir = join(dir, 'lock-data');
    const extra = { DATA_DIR: dataDir, MCP_HTTP_PORT: '0', ACTIONS: '' };
    for (const attempt of [1, 2]) {
      // The second start must meet the same cause, not an empty serve.lock naming no holder.
      const r = await run(['serve'], extra, 'ulimit -f 0');
      expect(r.stderr, `attempt ${attempt}`).toBe(
        `serve: cannot write ${join(dataDir, 'serve.lock')} (EFBIG: larger than this process's file-size limit (ulimit -f)); raise the limit\n`,
      );
      expect(r.code).toBe(1);
      expect(existsSync(join(dataDir, 'serve.lock'))).toBe(false);
    }
  }, 60_000);

  it('serve with actions and no redis-server on PATH says what to install, in one line (exit 1)', async () => {
    // A PATH that holds node only: redis-server cannot be found.
    const bin = mkdtempSync(join(tmpdir(), 'pi-cli-nodeonly-'));
    symlinkSync(process.execPath, join(bin, 'node'));
    const r = await run(['serve'], { PATH: bin, DATA_DIR: join(dir, 'serve-data'), MCP_HTTP_PORT: '0' });
    expect(r.stderr).toContain(
      'redis-server is not installed (it is not on PATH), and the action queue needs a Redis: install it (apt-get install redis-server), or set REDIS_URL to an existing Redis.\n',
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.code).toBe(1);
  }, 60_000);
});

describe('a DATA_DIR that cannot be created: one line naming it and the fix, at once', () => {
  /** The command's output, or a note that it was still running after `ms` (then it is killed). */
  function runWithin(ms: number, args: string[], extra: Record<string, string>): Promise<Run> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [...CLI, ...args], {
        env: { PATH: process.env.PATH ?? '', ...env, ...extra },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d));
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve({ code: null, stdout, stderr: `${stderr}(still running after ${ms} ms)` });
      }, ms);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  // Node's recursive mkdir retried for ever on /proc's ENOENT: `sync --once` hung with no output.
  it.skipIf(!existsSync('/proc/self'))(
    'under /proc (a file system that takes no new directories)',
    async () => {
      const dataDir = `/proc/pi-test-${process.pid}/data`;
      const r = await runWithin(30_000, ['sync', '--once'], { DATA_DIR: dataDir });
      expect(r.stderr).toBe(
        `sync: cannot create the directory /proc/pi-test-${process.pid} (ENOENT: this file system takes no new directories, like /proc and /sys); choose a directory on a writable disk with DATA_DIR (dataDir in a config file)\n`,
      );
      expect(r.code).toBe(1);
    },
    60_000,
  );

  // Root met "let this user write there" under /sys, where no mode would let anyone write.
  it.each([
    [false, 'permission denied); let this user write there, or choose another directory with DATA_DIR'],
    [
      true,
      'refused even to root: a special file system such as /sys, an immutable file, or a security module); choose another directory with DATA_DIR',
    ],
  ])('a refusal to root (%s) is not blamed on the user’s permissions', (root, said) => {
    const error = Object.assign(new Error('EACCES'), { code: 'EACCES', syscall: 'mkdir', path: '/sys/pi' });
    const context = { command: 'sync', help: '', inventoryFile: () => undefined, root };
    expect(describeFailure(error, context).text).toBe(
      `sync: cannot create the directory /sys/pi (EACCES: ${said} (dataDir in a config file)`,
    );
  });

  it('under a regular file: named by the configuration check, before anything is opened', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, '');
    const r = await runWithin(30_000, ['sync', '--once'], { DATA_DIR: join(file, 'data') });
    expect(r.stderr).toBe(
      `DATA_DIR: ${join(file, 'data')} cannot be created: ${file} is a file; point it at a directory (it is created if missing)\n`,
    );
    expect(r.code).toBe(2);
  }, 60_000);
});

describe('a full or failing disk under the inventory: one line naming the file and the fix, exit 1', () => {
  it('SQLITE_FULL from a real database (max_page_count reached) names the file, free space and DATA_DIR', () => {
    const path = join(dir, 'small.db');
    const db = new Database(path);
    let error: unknown;
    try {
      db.exec('CREATE TABLE t (b BLOB)');
      db.pragma('max_page_count = 4');
      db.prepare('INSERT INTO t VALUES (zeroblob(100000))').run();
    } catch (e) {
      error = e;
    } finally {
      db.close();
    }
    expect((error as { code?: string }).code).toBe('SQLITE_FULL');
    const report = describeFailure(error, { command: 'snapshot', help: '', inventoryFile: () => path });
    expect(report).toEqual({
      exitCode: 1,
      text: `snapshot: cannot write ${path}: the disk holding it is full (SQLITE_FULL); free space there, or point DATA_DIR (dataDir in a config file) at a directory on another disk`,
    });
    // Without the file (its configuration unreadable), DATA_DIR still says where.
    expect(describeFailure(error, { command: 'sync', help: '', inventoryFile: () => undefined }).text).toMatch(
      /^sync: cannot write the inventory in DATA_DIR: /,
    );
  });

  it('a write SQLite cannot make (SQLITE_IOERR, here from a file-size limit) in `snapshot`: no stack', async () => {
    const dataDir = join(dir, 'limited');
    const first = await run(['snapshot'], { DATA_DIR: dataDir });
    expect(first.code, first.stderr).toBe(0);
    // ulimit -f 2: no file may grow past 1 or 2 KiB (the block is 512 or 1024 bytes by shell), so
    // the WAL cannot take the snapshot's pages.
    const limited = await run(['snapshot'], { DATA_DIR: dataDir }, 'ulimit -f 2');
    expect(limited.stderr).toMatch(
      new RegExp(
        `^snapshot: cannot read or write ${join(dataDir, 'inventory.db').replace(/[.]/g, '\\.')} \\(SQLITE_IOERR\\w*: disk I/O error\\); the disk holding it is full or failing: free space there or check the disk, or point DATA_DIR \\(dataDir in a config file\\) at a directory on another disk\n$`,
      ),
    );
    expect(limited.code).toBe(1);
  }, 180_000);
});
