/**
 * `demo` as a new user meets it: the banner's promise about each sync against the cycles it then
 * prints. It runs in a directory of its own (it writes ./data/demo) on a free port.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { exitedProcess } from '../src/queue/embedded-redis.js';

const TSX = pathToFileURL(resolve('node_modules/tsx/dist/loader.mjs')).href;
const CLI = resolve('src/cli.ts');

/** What the four bulk calls of every cycle are; anything beyond them is a read of one guest or node. */
const BULK = ['/cluster/resources', '/cluster/status', '/cluster/tasks', '/cluster/log'];

/** The demo's stdout until `lines` cycle lines after the banner have been printed; then it is stopped and its directory removed. */
function demoOutput(lines: number, cwd = mkdtempSync(join(tmpdir(), 'pi-demo-'))): Promise<string> {
  const child = spawn(process.execPath, ['--import', TSX, CLI, 'demo'], {
    cwd,
    env: { PATH: process.env.PATH ?? '', MCP_HTTP_PORT: '0' },
  });
  return new Promise((done, fail) => {
    let out = '';
    const stop = setTimeout(() => {
      child.kill('SIGINT');
      fail(new Error(`no ${lines} cycle lines within 60 s: ${out}`));
    }, 60_000);
    child.on('error', fail);
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      const after = out.split('Ctrl-C stops the demo.')[1] ?? '';
      if (after.split('\n').filter((l) => / demo: ok in /.test(l)).length >= lines) {
        clearTimeout(stop);
        child.kill('SIGINT');
      }
    });
    child.on('close', () => {
      rmSync(cwd, { recursive: true, force: true });
      done(out);
    });
  });
}

describe('demo', () => {
  it('says what each sync costs as its cycles then show it: 4 bulk calls plus a config read per changed guest', async () => {
    const out = await demoOutput(2);
    expect(out).toContain('(4 bulk API calls, plus a config read per changed guest)');
    const cycles = out.split('\n').filter((l) => / demo: ok in /.test(l));
    for (const line of cycles) {
      const total = Number(/ (\d+) API calls \(/.exec(line)![1]);
      const byEndpoint = new Map(
        [...line.matchAll(/(\/[^ ,()]+) (\d+)/g)].map(([, endpoint, n]) => [endpoint!, Number(n)] as const),
      );
      const configs = Number(/ (\d+) configs read/.exec(line)![1]);
      for (const endpoint of BULK) expect(byEndpoint.get(endpoint), line).toBe(1);
      // Beyond the 4 bulk calls: the config reads (a changed guest's), and now and then the sweep's or a node's status.
      expect(total, line).toBeGreaterThanOrEqual(BULK.length + configs);
    }
  }, 90_000);

  // Stopped mid-start (Ctrl-C while its Redis came up), a demo leaves that Redis running; the next
  // demo wiped data/demo and with it the only way to find it again.
  it('stops a redis-server an interrupted demo left in data/demo before it wipes the directory', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'pi-demo-'));
    const dir = join(cwd, 'data/demo/redis');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const pidFile = join(dir, 'redis.pid');
    const orphan = spawn(
      'redis-server',
      ['--port', '0', '--unixsocket', join(dir, 'redis.sock'), '--pidfile', pidFile, '--dir', dir, '--save', ''],
      { detached: true, stdio: 'ignore' },
    );
    orphan.unref();
    try {
      for (let i = 0; i < 200 && !existsSync(pidFile); i++) await sleep(25);
      expect(existsSync(pidFile)).toBe(true);
      await demoOutput(0, cwd);
      expect(exitedProcess(orphan.pid!)).toBe(true);
    } finally {
      orphan.kill('SIGKILL');
    }
  }, 90_000);
});
