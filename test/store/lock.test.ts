/**
 * One `serve` per data directory (issue 8): the lock file, in-process for the cases a test cannot
 * stage with real processes (another host, a reboot, a file being written), and with real `serve`
 * processes against the simulator: the second is refused naming the first, `sync --once` still
 * runs beside it, a clean stop removes the lock, and a lock left by a SIGKILLed daemon is taken
 * over with a log line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../src/sim/server.js';
import { acquireDataDirLock, DataDirLockedError, LOCK_FILE } from '../../src/store/lock.js';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'pi-lock-'));
const holder = (dir: string): { pid: number; host: string; startedAt: string; bootId?: string } =>
  JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as { pid: number; host: string; startedAt: string };

describe('the data directory lock', () => {
  it('is created with the holder inside, refused to a second taker naming the first, and removed on release', () => {
    const dir = tmp();
    const lock = acquireDataDirLock(dir, {
      pid: 1111,
      host: 'box',
      bootId: 'boot-1',
      now: () => Date.parse('2025-01-02T03:04:05Z'),
      isAlive: () => true,
    });
    expect(holder(dir)).toEqual({
      pid: 1111,
      host: 'box',
      startedAt: '2025-01-02T03:04:05.000Z',
      bootId: 'boot-1',
      command: 'serve',
    });
    let refusal: unknown;
    try {
      acquireDataDirLock(dir, { pid: 2222, host: 'box', bootId: 'boot-1', isAlive: () => true });
    } catch (err) {
      refusal = err;
    }
    expect(refusal).toBeInstanceOf(DataDirLockedError);
    expect((refusal as Error).message).toBe(
      `another proxmox-inventory serve uses ${dir}: pid 1111 on host box, since 2025-01-02T03:04:05.000Z (lock file ${join(dir, LOCK_FILE)}). ` +
        "Two daemons on one inventory would both poll Proxmox and discard each other's cycles. " +
        'Stop it first (kill 1111), or give this daemon another DATA_DIR; `sync --once`, `mcp` and `snapshot` work beside it.',
    );
    lock.release();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });

  it('takes over a lock whose pid is gone, is its own, or dates from an earlier boot, saying why', () => {
    const cases = [
      { stale: { pid: 1111, bootId: 'boot-1' }, alive: false, reason: 'process 1111 is no longer running' },
      {
        stale: { pid: 2222, bootId: 'boot-1' },
        alive: true,
        reason: "its pid 2222 is this process's own (restarted with the same pid)",
      },
      { stale: { pid: 1111, bootId: 'boot-0' }, alive: true, reason: 'the host has restarted since it was taken' },
    ];
    for (const { stale, alive, reason } of cases) {
      const dir = tmp();
      writeFileSync(
        join(dir, LOCK_FILE),
        JSON.stringify({ ...stale, host: 'box', startedAt: '2025-01-01T00:00:00.000Z', command: 'serve' }),
      );
      const lock = acquireDataDirLock(dir, { pid: 2222, host: 'box', bootId: 'boot-1', isAlive: () => alive });
      expect(lock.tookOver).toEqual({
        holder: { ...stale, host: 'box', startedAt: '2025-01-01T00:00:00.000Z' },
        reason,
      });
      expect(holder(dir).pid).toBe(2222);
    }
  });

  it('never takes over a lock from another host, and says how to clear it', () => {
    const dir = tmp();
    writeFileSync(
      join(dir, LOCK_FILE),
      JSON.stringify({ pid: 1, host: 'old-container', startedAt: '2025-01-01T00:00:00.000Z', bootId: 'other' }),
    );
    expect(() =>
      acquireDataDirLock(dir, { pid: 1, host: 'new-container', bootId: 'boot-1', isAlive: () => false }),
    ).toThrow(/pid 1 on host old-container, .*another host than this one \(new-container\).*delete the lock file/);
    expect(holder(dir).host).toBe('old-container');
  });

  it('refuses a lock file that does not name its holder, once its creator has had time to write it', () => {
    const dir = tmp();
    writeFileSync(join(dir, LOCK_FILE), '');
    const started = Date.now();
    expect(() => acquireDataDirLock(dir, { settleMs: 200 })).toThrow(
      `${join(dir, LOCK_FILE)} exists but does not name its holder ("")`,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
  });

  it('release leaves a lock that is no longer its own', () => {
    const dir = tmp();
    const lock = acquireDataDirLock(dir, { pid: 1111, host: 'box' });
    writeFileSync(
      join(dir, LOCK_FILE),
      JSON.stringify({ pid: 3333, host: 'box', startedAt: '2025-01-01T00:00:00.000Z' }),
    );
    lock.release();
    expect(holder(dir).pid).toBe(3333);
  });
});

describe('two serve processes on one data directory', () => {
  let sim: Simulator;
  const dataDir = tmp();
  const children: ChildProcess[] = [];
  const RESOURCES = 'GET /cluster/resources';

  beforeAll(async () => {
    sim = await startSimulator({ tls: false, guests: 20, nodes: 2, seed: 97, taskDelayMs: 5 });
  });
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await sim.close();
  });

  const env = (): Record<string, string> => ({
    PATH: process.env.PATH ?? '',
    PVE_URL: sim.url,
    PVE_TOKEN_ID: sim.tokens.full.id,
    PVE_TOKEN_SECRET: sim.tokens.full.secret,
    PVE_CLUSTER_NAME: 'lab',
    DATA_DIR: dataDir,
    SYNC_INTERVAL_SECONDS: '1',
    SNAPSHOT_SCHEDULE: 'off',
    MCP_HTTP: 'off',
    LOG_LEVEL: 'info',
  });

  interface Run {
    child: ChildProcess;
    stdout: string;
    stderr: string;
    exited: Promise<number | null>;
  }
  function start(args: string[]): Run {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
      env: env(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    const run: Run = {
      child,
      stdout: '',
      stderr: '',
      exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
    };
    child.stdout!.on('data', (d: Buffer) => (run.stdout += d));
    child.stderr!.on('data', (d: Buffer) => (run.stderr += d));
    return run;
  }

  /** Resolves once `serve` logs that it serves (it holds the lock from then on). */
  async function serving(run: Run): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (!run.stderr.includes('"msg":"proxmox-inventory serving"')) {
      if (run.child.exitCode !== null) throw new Error(`serve exited with ${run.child.exitCode}: ${run.stderr}`);
      if (Date.now() > deadline) throw new Error(`serve did not start within 30 s: ${run.stderr}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async function stop(run: Run, signal: NodeJS.Signals): Promise<number | null> {
    run.child.kill(signal);
    return run.exited;
  }

  it('refuses the second serve naming the first (pid, host, lock file); sync --once still runs beside it; a clean stop removes the lock', async () => {
    const first = start(['serve']);
    await serving(first);
    const second = start(['serve']);
    expect(await second.exited).toBe(1);
    expect(second.stderr).toContain(
      `another proxmox-inventory serve uses ${dataDir}: pid ${first.child.pid} on host ${hostname()}, since `,
    );
    expect(second.stderr).toContain(`(lock file ${join(dataDir, LOCK_FILE)})`);
    expect(second.stderr).not.toContain('proxmox-inventory serving');

    const once = start(['sync', '--once']);
    expect(await once.exited).toBe(0);
    expect(once.stdout).toMatch(/^lab: ok in \d+ ms/);

    // The first one is still syncing, and still holds the lock.
    const reads = sim.counters().byEndpoint[RESOURCES] ?? 0;
    const deadline = Date.now() + 20_000;
    while ((sim.counters().byEndpoint[RESOURCES] ?? 0) <= reads && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    expect(sim.counters().byEndpoint[RESOURCES]).toBeGreaterThan(reads);
    expect(holder(dataDir).pid).toBe(first.child.pid);

    expect(await stop(first, 'SIGTERM')).toBe(0);
    expect(existsSync(join(dataDir, LOCK_FILE))).toBe(false);
  }, 60_000);

  it('takes over the lock a SIGKILLed serve left, with a log line naming it', async () => {
    const killed = start(['serve']);
    await serving(killed);
    await stop(killed, 'SIGKILL');
    expect(holder(dataDir).pid).toBe(killed.child.pid); // left behind

    const next = start(['serve']);
    await serving(next);
    const line = next.stderr.split('\n').find((l) => l.includes('took over the lock'));
    expect(JSON.parse(line!)).toMatchObject({
      level: 40,
      msg: 'took over the lock of a serve that did not stop cleanly',
      lock: join(dataDir, LOCK_FILE),
      pid: killed.child.pid,
      host: hostname(),
      reason: `process ${killed.child.pid} is no longer running`,
    });
    expect(holder(dataDir).pid).toBe(next.child.pid);
    expect(await stop(next, 'SIGTERM')).toBe(0);
    expect(existsSync(join(dataDir, LOCK_FILE))).toBe(false);
  }, 60_000);
});
