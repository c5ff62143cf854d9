/**
 * Which change signals a token's privileges rule out: the `update VM` lines of /cluster/log need
 * Sys.Syslog on / (Cluster.pm `log`). Checked on what the simulator's two tokens answer through
 * the client, and on hand-made answers for the edge cases.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpProxmoxClient } from '../../src/proxmox/http-client.js';
import type { AccessPermissions } from '../../src/proxmox/types.js';
import { Secret } from '../../src/secret.js';
import { startSimulator, type Simulator } from '../../src/sim/server.js';
import { clusterLogProblem, signalProblems } from '../../src/sync/signals.js';

const PROBLEM =
  "the token lacks Sys.Syslog on /, so /cluster/log hides other users' config edits; they are seen by the sweep (every 6 h) instead (grant a role with Sys.Syslog, README: The API token)";

let sim: Simulator;

async function permissionsOf(token: 'full' | 'auditor', path?: string): Promise<AccessPermissions> {
  const client = createHttpProxmoxClient({
    cluster: 'sim',
    url: sim.url,
    tokenId: sim.tokens[token].id,
    tokenSecret: new Secret(sim.tokens[token].secret),
    tls: {},
    retries: 0,
  });
  try {
    return await client.permissions(path);
  } finally {
    await client.close();
  }
}

beforeAll(async () => {
  sim = await startSimulator({ tls: false, seed: 3, nodes: 2, guests: 10 });
});

afterAll(async () => {
  await sim?.close();
});

describe('clusterLogProblem / signalProblems', () => {
  it('the root token (Sys.Syslog on /) has no problem, with or without ?path=/', async () => {
    for (const perms of [await permissionsOf('full', '/'), await permissionsOf('full')]) {
      expect(clusterLogProblem(perms)).toBeUndefined();
      expect(signalProblems(perms)).toBeNull();
    }
  });

  it('the PVEAuditor token lacks Sys.Syslog: one sentence saying what is missed and how to fix it', async () => {
    for (const perms of [await permissionsOf('auditor', '/'), await permissionsOf('auditor')]) {
      expect(clusterLogProblem(perms)).toBe(PROBLEM);
      expect(signalProblems(perms)).toEqual({ log: PROBLEM });
    }
  });

  it('Sys.Syslog on / counts whatever its propagate flag; elsewhere it does not count', () => {
    expect(clusterLogProblem({ '/': { 'Sys.Audit': true, 'Sys.Syslog': false } })).toBeUndefined();
    expect(clusterLogProblem({ '/nodes': { 'Sys.Syslog': true }, '/': { 'Sys.Audit': true } })).toBe(PROBLEM);
    expect(clusterLogProblem({ '/': {} })).toBe(PROBLEM);
    expect(clusterLogProblem({})).toBe(PROBLEM);
  });

  it('names the sweep as configured', () => {
    expect(clusterLogProblem({}, 30)).toContain('; they are seen by the sweep (every 30 min) instead (grant');
    expect(clusterLogProblem({}, 60)).toContain('; they are seen by the hourly sweep instead (grant');
    expect(clusterLogProblem({}, 240)).toContain('; they are seen by the sweep (every 4 h) instead (grant');
    expect(clusterLogProblem({}, 0)).toContain('; no sweep re-reads those configs either (the sweep is off) (grant');
  });
});
