/**
 * What the command line loads: `--version`, help and a usage error load no command, and a command
 * loads only its own module, not the daemon's or the simulator's. Every test and every MCP client
 * start spawns the CLI, so a module imported for nothing is paid hundreds of times. The modules a
 * process resolved are recorded by a loader hook (test/support/record-loads.mjs), not timed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'pi-cli-loading-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let runs = 0;

/** Runs the CLI from source; its exit status, output and every module URL it resolved. */
function loads(
  args: string[],
  env: Record<string, string> = {},
): { status: number | null; stderr: string; urls: string[] } {
  const file = join(dir, `loads-${++runs}.txt`);
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--import', './test/support/record-loads.mjs', 'src/cli.ts', ...args],
    { env: { PATH: process.env.PATH ?? '', LOADS_FILE: file, ...env }, encoding: 'utf8', timeout: 30_000 },
  );
  return { status: r.status, stderr: r.stderr, urls: readFileSync(file, 'utf8').split('\n').filter(Boolean) };
}

/** main.ts, any command module, the simulator's server, and the libraries only they and `action KIND` use. */
const HEAVY = [
  '/src/main.ts',
  '/src/commands/',
  '/src/sim/server.ts',
  '/src/mcp/server.ts',
  '/src/config.ts',
  '/src/store/db.ts',
  '/node_modules/undici/',
  '/node_modules/selfsigned/',
  '/node_modules/bullmq/',
  '/node_modules/ioredis/',
  '/node_modules/@modelcontextprotocol/',
  '/node_modules/drizzle-orm/',
  '/node_modules/zod/',
];

/** The small module DEMO lives in is the one command-named module that `help` reads. */
const heavyIn = (urls: string[], allowed: string[] = ['/src/commands/demo-settings.ts']): string[] =>
  urls.filter((url) => HEAVY.some((part) => url.includes(part)) && !allowed.some((part) => url.includes(part)));

describe('the command line loads only the command that runs', () => {
  it.each([
    { line: '--version', status: 0 },
    { line: 'help', status: 0 },
    { line: 'mcp --help', status: 0 },
    { line: 'nope', status: 2 },
    { line: 'sim --host 0.0.0.0', status: 2 },
    { line: 'action list --limit 0', status: 2 },
    { line: 'webhooks deliveries --since yesterday-ish', status: 2 },
  ])('$line loads no command, no daemon and no simulator', ({ line, status }) => {
    const r = loads(line.split(' '));
    expect(r.status, r.stderr).toBe(status);
    expect(r.urls.some((url) => url.includes('/src/cli.ts'))).toBe(true);
    expect(heavyIn(r.urls).slice(0, 5)).toEqual([]);
  });

  it('snapshot loads its own command and the store, not the daemon, the simulator or the other commands', () => {
    const r = loads(['snapshot', '--label', 'loading'], { DATA_DIR: join(dir, 'data') });
    expect(r.status, r.stderr).toBe(0);
    expect(r.urls.some((url) => url.includes('/src/commands/snapshot.ts'))).toBe(true);
    expect(
      r.urls.filter((url) =>
        [
          '/src/main.ts',
          '/node_modules/bullmq/',
          '/src/sim/server.ts',
          '/node_modules/selfsigned/',
          '/src/commands/demo.ts',
          '/src/commands/sim.ts',
        ].some((p) => url.includes(p)),
      ),
    ).toEqual([]);
  });
});
