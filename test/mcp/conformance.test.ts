/**
 * The official MCP conformance suite (@modelcontextprotocol/conformance, its active server
 * scenarios) against `serve`'s Streamable HTTP endpoint, the daemon in its own process syncing the
 * simulator. A scenario fails when one of its checks fails or warns (the suite's own rule). The
 * failures expected are listed in test/conformance/baseline.yaml, each with its reason: a failure
 * not listed fails this test, and so does a listed scenario that passes (a stale entry).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument, isScalar, isSeq } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../src/sim/server.js';
import { stopChild } from '../sync/helpers.js';

const SUITE = fileURLToPath(
  new URL('../../node_modules/@modelcontextprotocol/conformance/dist/index.js', import.meta.url),
);
const BASELINE = fileURLToPath(new URL('../conformance/baseline.yaml', import.meta.url));

interface Check {
  id: string;
  status: 'SUCCESS' | 'FAILURE' | 'WARNING' | 'INFO' | 'SKIPPED';
  errorMessage?: string;
}
interface ScenarioResult {
  scenario: string;
  checks: Check[];
}
interface SuiteRun {
  exitCode: number | null;
  stdout: string;
  results: ScenarioResult[];
}

let sim: Simulator;
let daemon: ChildProcess;
let base: string;
let log = '';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** Polls /readyz until the first sync has succeeded, so the tools have an inventory to answer from. */
async function untilReady(ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (daemon.exitCode !== null)
      throw new Error(`serve exited with ${daemon.exitCode}; its log:\n${log.slice(-3000)}`);
    const status = await fetch(`${base}/readyz`).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`serve was not ready within ${ms} ms; its log:\n${log.slice(-3000)}`);
}

/** The baseline: scenario → reason (the comment on its line). */
function readBaseline(): Map<string, string> {
  const doc = parseDocument(readFileSync(BASELINE, 'utf8'));
  const server = doc.get('server', true);
  if (!isSeq(server)) throw new Error(`${BASELINE}: expected a list under "server"`);
  return new Map(
    server.items.map((item) => {
      if (!isScalar(item)) throw new Error(`${BASELINE}: every entry is a scenario name`);
      return [String(item.value), (item.comment ?? '').trim()];
    }),
  );
}

/** Runs the suite's active server scenarios against `url` and reads the checks each one saved. */
function runSuite(url: string): Promise<SuiteRun> {
  const outputDir = mkdtempSync(join(tmpdir(), 'pi-conformance-'));
  const child = spawn(
    process.execPath,
    [SUITE, 'server', '--url', url, '--output-dir', outputDir, '--expected-failures', BASELINE],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stdout += d.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (exitCode) => {
      const results = readdirSync(outputDir).map((dir) => ({
        scenario: /^server-(.+)-\d{4}-\d\d-\d\dT[\d-]+Z$/.exec(dir)?.[1] ?? dir,
        checks: JSON.parse(readFileSync(join(outputDir, dir, 'checks.json'), 'utf8')) as Check[],
      }));
      rmSync(outputDir, { recursive: true, force: true });
      resolve({ exitCode, stdout, results });
    });
  });
}

const failed = (r: ScenarioResult): boolean => r.checks.some((c) => c.status === 'FAILURE' || c.status === 'WARNING');
const why = (r: ScenarioResult): string =>
  r.checks
    .filter((c) => c.status === 'FAILURE' || c.status === 'WARNING')
    .map((c) => `${c.id}: ${c.status}${c.errorMessage ? ` (${c.errorMessage})` : ''}`)
    .join('; ');

beforeAll(async () => {
  sim = await startSimulator({ tls: false, guests: 30, nodes: 2, seed: 14 });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  daemon = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve'], {
    env: {
      PATH: process.env.PATH ?? '',
      PVE_URL: sim.url,
      PVE_TOKEN_ID: sim.tokens.auditor.id,
      PVE_TOKEN_SECRET: sim.tokens.auditor.secret,
      PVE_CLUSTER_NAME: 'lab',
      DATA_DIR: mkdtempSync(join(tmpdir(), 'pi-conformance-data-')),
      SNAPSHOT_SCHEDULE: 'off',
      MCP_HTTP_PORT: String(port),
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  daemon.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  await untilReady();
}, 40_000);

afterAll(async () => {
  await stopChild(daemon);
  await sim?.close();
});

describe('the MCP conformance suite against serve', () => {
  it('passes every server scenario but the baseline’s, and each baselined one still fails', async () => {
    const baseline = readBaseline();
    // The URL names 127.0.0.1: the suite's DNS-rebinding check sends it as Host and Origin.
    const run = await runSuite(`${base}/mcp`);
    const ran = Number(/Running active suite \((\d+) scenarios\)/.exec(run.stdout)?.[1]);
    expect(run.results.length, run.stdout).toBe(ran);
    expect(ran).toBeGreaterThan(20);

    const unexpected = run.results
      .filter((r) => failed(r) && !baseline.has(r.scenario))
      .map((r) => `${r.scenario}: ${why(r)}`);
    const stale = run.results.filter((r) => !failed(r) && baseline.has(r.scenario)).map((r) => r.scenario);
    expect(unexpected, 'failures not in test/conformance/baseline.yaml').toEqual([]);
    expect(stale, 'baselined scenarios that now pass: remove them from test/conformance/baseline.yaml').toEqual([]);
    // The suite applies the same baseline by itself; its exit code agrees.
    expect(run.exitCode, run.stdout.slice(-2000)).toBe(0);

    const scenarios = new Set(run.results.map((r) => r.scenario));
    for (const [scenario, reason] of baseline) {
      expect(scenarios.has(scenario), `baseline entry ${scenario} names no scenario the suite ran`).toBe(true);
      expect(reason.length, `baseline entry ${scenario} has no reason`).toBeGreaterThan(10);
    }
    expect(log).not.toMatch(/"level":(50|60)/);
  }, 60_000);
});
