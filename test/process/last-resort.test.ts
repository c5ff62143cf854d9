/**
 * The daemon's last resort (runUntilStopped): an exception or rejection that nothing caught is
 * logged, the close step runs (store and port released), and the process exits with EXIT_FATAL
 * for its supervisor to restart it, instead of dying mid-write or running on in an unknown state.
 * A signal still closes it with 0. Each case runs in a real child process.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { RELAYED_SIGNAL_MS } from '../../src/lifecycle.js';
import { EXIT_FATAL } from '../../src/version.js';

/** A module run in its own Node process, as the daemon runs: its exit status and output. */
function node(script: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function run(body: string, closeMs = 0): { status: number | null; stdout: string; stderr: string } {
  const script = `
    import { runUntilStopped } from './src/lifecycle.ts';
    import { createLogger } from './src/log.ts';
    const log = createLogger({ level: 'info' });
    const keepAlive = setInterval(() => {}, 1000);
    const done = runUntilStopped(async () => {
      clearInterval(keepAlive);
      await new Promise((r) => setTimeout(r, ${closeMs}));
      process.stdout.write('closed\\n');
    }, log);
    ${body}
    const code = await done;
    process.stdout.write('code ' + code + '\\n');
    process.exitCode = code;
  `;
  return node(script);
}

/** A daemon that holds signals while `start` runs, then runs until stopped; its close says "closed". */
function runHeld(start: string): { status: number | null; stdout: string; stderr: string } {
  return node(`
    import { holdSignalsWhileStarting, runUntilStopped } from './src/lifecycle.ts';
    import { createLogger } from './src/log.ts';
    const log = createLogger({ level: 'info' });
    const keepAlive = setInterval(() => {}, 1000);
    const holding = holdSignalsWhileStarting(log);
    ${start}
    const code = await runUntilStopped(async () => { clearInterval(keepAlive); process.stdout.write('closed\\n'); }, log, { holding });
    process.stdout.write('code ' + code + '\\n');
    process.exitCode = code;
  `);
}

describe('runUntilStopped', () => {
  it('closes and resolves EXIT_FATAL after an uncaught exception', () => {
    const r = run(`setTimeout(() => { throw new Error('boom from a timer'); }, 50);`);
    expect(r.stdout).toBe(`closed\ncode ${EXIT_FATAL}\n`);
    expect(r.status).toBe(EXIT_FATAL);
    expect(r.stderr).toContain('"level":60');
    expect(r.stderr).toContain('boom from a timer');
  });

  it('closes and resolves EXIT_FATAL after an unhandled rejection', () => {
    const r = run(`setTimeout(() => { void Promise.reject(new Error('nobody awaited me')); }, 50);`);
    expect(r.stdout).toBe(`closed\ncode ${EXIT_FATAL}\n`);
    expect(r.stderr).toContain('nobody awaited me');
    expect(r.stderr).toContain('unhandledRejection');
  });

  it('closes once and resolves 0 on SIGTERM', () => {
    const r = run(`setTimeout(() => process.kill(process.pid, 'SIGTERM'), 50);`);
    expect(r.stdout).toBe('closed\ncode 0\n');
    expect(r.status).toBe(0);
  });

  // npm, tsx and the shell each pass one Ctrl-C on: the old code listened once, so the second copy
  // found no listener and ended the process in the middle of its close.
  it('lets the close finish when the same Ctrl-C arrives twice, milliseconds apart', () => {
    const twice = `process.kill(process.pid, 'SIGINT'); setTimeout(() => process.kill(process.pid, 'SIGINT'), 20);`;
    const r = run(`setTimeout(() => { ${twice} }, 50);`, 300);
    expect(r.stdout).toBe('closed\ncode 0\n');
    expect(r.status).toBe(0);
  });

  it('exits at once, with 130, on a second signal after the first has had its time', () => {
    const later = `setTimeout(() => process.kill(process.pid, 'SIGINT'), ${RELAYED_SIGNAL_MS + 200});`;
    const r = run(`setTimeout(() => { process.kill(process.pid, 'SIGINT'); ${later} }, 50);`, 10_000);
    expect(r.stdout).toBe('');
    expect(r.status).toBe(130);
    expect(r.stderr).toContain('second signal: exiting at once, without a clean shutdown');
  });

  // A signal sent while the start blocks (a long synchronous write) waits in Node's signal handle:
  // removing the hold's listener before adding the next closed that handle and lost the signal.
  it('a signal held while starting closes at once, even one still on its way at the handover', () => {
    const r = runHeld(`
      await new Promise((r) => setTimeout(r, 50));
      process.kill(process.pid, 'SIGTERM');
      const until = Date.now() + 100;
      while (Date.now() < until); // the start blocks: the signal is not taken yet
    `);
    expect(r.stdout).toBe('closed\ncode 0\n');
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('"msg":"shutting down"');
  });

  it('a signal while starting is kept, and the daemon closes once the start is done', () => {
    const r = runHeld(`
      setTimeout(() => process.kill(process.pid, 'SIGINT'), 50);
      await new Promise((r) => setTimeout(r, 300)); // the start goes on after the signal
      process.stdout.write('started\\n');
    `);
    expect(r.stdout).toBe('started\nclosed\ncode 0\n');
    expect(r.stderr).toContain('stopping once the start has finished');
    expect(r.status).toBe(0);
  });

  it('exits anyway when the close step hangs past its deadline', () => {
    const script = `
      import { runUntilStopped } from './src/lifecycle.ts';
      import { createLogger } from './src/log.ts';
      setInterval(() => {}, 1000);
      void runUntilStopped(() => new Promise(() => {}), createLogger({ level: 'info' }), { closeDeadlineMs: 200 });
      setTimeout(() => { throw new Error('fault'); }, 50);
    `;
    const r = node(script);
    expect(r.status).toBe(EXIT_FATAL);
    expect(r.stderr).toContain('shutdown did not finish in time');
  });
});
