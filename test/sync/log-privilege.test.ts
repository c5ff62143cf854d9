/**
 * The cluster-log signal needs Sys.Syslog on /: with an audit-only token the simulator (as
 * Proxmox) hides other users' `update VM` lines, so the sync records that the signal is missing
 * (clusters.signal_problems, shown by sync_status), and with a token that has it, it records none.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { createHttpProxmoxClient } from '../../src/proxmox/http-client.js';
import { Secret } from '../../src/secret.js';
import { startSimulator, type Simulator } from '../../src/sim/server.js';
import { openStore, type Store } from '../../src/store/db.js';
import { syncStatus } from '../../src/store/queries.js';
import { createClusterSync, DEFAULT_SYNC_SETTINGS, type ClusterSync } from '../../src/sync/cycle.js';

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({ tls: false, guests: 30, nodes: 2, seed: 83, taskDelayMs: 5 });
});
afterAll(() => sim.close());

function syncAs(token: { id: string; secret: string }): { store: Store; sync: ClusterSync } {
  const client = createHttpProxmoxClient({
    cluster: 'lab',
    url: sim.url,
    tokenId: token.id,
    tokenSecret: new Secret(token.secret),
    tls: {},
    retries: 0,
  });
  const store = openStore(join(mkdtempSync(join(tmpdir(), 'pi-syslog-')), 'inventory.db'));
  const sync = createClusterSync({
    store,
    client,
    cluster: 'lab',
    settings: { ...DEFAULT_SYNC_SETTINGS, sweepEveryMs: 0 },
    log: createLogger({ level: 'silent' }),
  });
  return { store, sync };
}

const problems = (store: Store): unknown =>
  store.sqlite.prepare("SELECT signal_problems AS p FROM clusters WHERE name = 'lab'").pluck().get();

describe('the cluster log signal and Sys.Syslog', () => {
  it('an audit-only token: the problem is recorded and shown, and a UI edit by another user is not signalled', async () => {
    const { store, sync } = syncAs(sim.tokens.auditor);
    expect((await sync.runCycle()).ok).toBe(true);
    expect(JSON.parse(problems(store) as string)).toEqual({
      log: expect.stringMatching(
        /^the token lacks Sys\.Syslog on \/, so \/cluster\/log hides other users' config edits/,
      ) as string,
    });
    expect(syncStatus(store).clusters[0]).toMatchObject({
      signalProblems: { log: expect.stringContaining('Sys.Syslog') as string },
    });
    const qemu = [...sim.cluster.guests.values()].find(
      (g) => g.type === 'qemu' && !g.values.lock && g.values.template !== '1',
    )!;
    sim.updateGuest(qemu.vmid, { config: { description: 'edited in the UI' } }); // writes `update VM …` as root@pam
    const cycle = await sync.runCycle();
    expect(cycle.configsFetched).toBe(0); // the line is invisible to this token: only the sweep would find the edit
    store.close();
  });

  it('a token with Sys.Syslog: no problem recorded, and the same edit is read in the next cycle', async () => {
    const { store, sync } = syncAs(sim.tokens.full);
    expect((await sync.runCycle()).ok).toBe(true);
    expect(problems(store)).toBeNull();
    const qemu = [...sim.cluster.guests.values()].find(
      (g) => g.type === 'qemu' && !g.values.lock && g.values.template !== '1',
    )!;
    sim.updateGuest(qemu.vmid, { config: { description: 'edited in the UI again' } });
    expect((await sync.runCycle()).configsFetched).toBe(1);
    store.close();
  });
});
