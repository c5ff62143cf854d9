/**
 * docs/proxmox-tokens.md followed literally against the simulator's permission model: its `pveum`
 * lines (read from the file, so the doc is the source) create the user, roles, ACL entries and
 * the two tokens; then `check` and `sync --once` run as an operator runs them with the sync token,
 * every action kind runs through the queue and worker with the action token, the action role
 * proves minimal (without any one of its privileges, each kind that needs it ends failed with
 * Proxmox's 403 naming it), and the sync token cannot start a guest.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACTION_KINDS, CATALOGUE, type ActionKindName } from '../src/actions/catalogue.js';
import { createActionQueue, startActionWorker, type ActionQueue, type ActionWorker } from '../src/actions/queue.js';
import { checkRequest, submitAction } from '../src/actions/submit.js';
import { createLogger } from '../src/log.js';
import type { ProxmoxClient } from '../src/proxmox/client.js';
import { ProxmoxApiError } from '../src/proxmox/errors.js';
import { createHttpProxmoxClient } from '../src/proxmox/http-client.js';
import { redisConnection } from '../src/queue/redis.js';
import { Secret } from '../src/secret.js';
import { endpointSchema, permits } from '../src/sim/params.js';
import { startSimulator, type SimToken, type Simulator } from '../src/sim/server.js';
import type { SimGuest } from '../src/sim/state.js';
import { FINAL_STATES, getAction, type ActionRow } from '../src/store/actions.js';
import { openStore, type Store } from '../src/store/db.js';
import { createClusterSync, DEFAULT_SYNC_SETTINGS, type ClusterSync } from '../src/sync/cycle.js';
import { startTestRedis, type TestRedis } from './support/redis.js';

const DOC = readFileSync(new URL('../docs/proxmox-tokens.md', import.meta.url), 'utf8');
const CLUSTER = 'lab';

/** Every `pveum` line of the doc's shell blocks, in order: the recipe an operator types. */
function recipe(): string[] {
  const blocks = [...DOC.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks.flatMap((b) => b.split('\n').filter((line) => line.startsWith('pveum ')));
}

/** The value the doc gives a variable (`PVE_TOKEN_ID=inventory@pve!sync`). */
function docValue(variable: string): string {
  const m = new RegExp(`\`${variable}=([^\`\\s]+)\``).exec(DOC);
  if (!m) throw new Error(`docs/proxmox-tokens.md names no ${variable}=…`);
  return m[1]!;
}

/** The roles the recipe grants to a token on / (`pveum acl modify / --tokens 'ID' --roles A,B`). */
function rolesOfToken(lines: string[], tokenId: string): string[] {
  return lines
    .filter((l) => l.includes(`'${tokenId}'`) && /^pveum (acl modify|aclmod) /.test(l))
    .flatMap((l) => /--roles (\S+)/.exec(l)![1]!.split(','));
}

function rolePrivileges(lines: string[], role: string): string[] {
  const line = lines.find((l) => l.startsWith(`pveum role add ${role} `));
  if (!line) throw new Error(`the recipe adds no role ${role}`);
  return /-privs "([^"]*)"/.exec(line)![1]!.split(/[\s,]+/);
}

let sim: Simulator;
let lines: string[];
const tokens = new Map<string, SimToken>();
let syncToken: SimToken;
let actionToken: SimToken;
let actionRole: string;
let actionPrivileges: string[];

beforeAll(async () => {
  sim = await startSimulator({ tls: true, seed: 21, nodes: 3, guests: 60, lxcRatio: 0.4, taskDelayMs: 20 });
  lines = recipe();
  for (const line of lines) {
    const out = sim.access.pveum(line) as SimToken | undefined;
    if (out?.id) tokens.set(out.id, out);
  }
  syncToken = tokens.get(docValue('PVE_TOKEN_ID'))!;
  actionToken = tokens.get(docValue('PVE_ACTION_TOKEN_ID'))!;
  const roles = rolesOfToken(lines, actionToken.id);
  expect(roles).toHaveLength(1);
  actionRole = roles[0]!;
  actionPrivileges = rolePrivileges(lines, actionRole);
});

afterAll(async () => {
  await sim?.close();
});

function clientFor(token: SimToken): ProxmoxClient {
  return createHttpProxmoxClient({
    cluster: CLUSTER,
    url: sim.url,
    tokenId: token.id,
    tokenSecret: new Secret(token.secret),
    tls: { fingerprint: sim.fingerprint },
    retries: 0,
    timeoutMs: 5_000,
  });
}

function cli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
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

describe('the recipe in docs/proxmox-tokens.md', () => {
  it('makes two privilege-separated tokens: the sync one reads, the action one holds exactly its role', () => {
    expect(lines.length).toBeGreaterThanOrEqual(8);
    expect([...sim.access.privilegesOf(syncToken.id)!].sort()).toEqual([
      'Datastore.Audit',
      'Mapping.Audit',
      'Pool.Audit',
      'SDN.Audit',
      'Sys.Audit',
      'Sys.Syslog',
      'VM.Audit',
      'VM.GuestAgent.Audit',
    ]);
    expect([...sim.access.privilegesOf(actionToken.id)!].sort()).toEqual([...actionPrivileges].sort());
  });

  it('check prints no missing-privilege warning and sync --once works with the sync token', async () => {
    const env = {
      PVE_URL: sim.url,
      PVE_TOKEN_ID: syncToken.id,
      PVE_TOKEN_SECRET: syncToken.secret,
      PVE_FINGERPRINT: sim.fingerprint!,
      PVE_CLUSTER_NAME: CLUSTER,
      DATA_DIR: mkdtempSync(join(tmpdir(), 'pi-docs-tokens-')),
    };
    const check = await cli(['check'], env);
    expect(check.stderr).toBe('');
    expect(check.stdout).toMatch(/^lab: ok, Proxmox VE [\d.]+, 3 nodes \(3 online, quorate\), 60 guests .*\n$/);
    expect(check.code).toBe(0);

    const sync = await cli(['sync', '--once'], env);
    expect(sync.code, sync.stdout + sync.stderr).toBe(0);
    expect(sync.stdout).toMatch(/^lab: /);
    expect(sync.stdout).not.toMatch(/warning|FAILED|privilege/i);
    expect(sync.stdout + sync.stderr).not.toContain(syncToken.secret);
  }, 60_000);

  it('the sync token cannot start a guest: 403 naming VM.PowerMgmt', async () => {
    const client = clientFor(syncToken);
    const g = [...sim.cluster.guests.values()].find((x) => x.status === 'stopped' && x.values.template !== '1')!;
    const err = await client.post(`/nodes/${g.node}/${g.type}/${g.vmid}/status/start`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProxmoxApiError);
    expect(err).toMatchObject({ status: 403, reason: `Permission check failed (/vms/${g.vmid}, VM.PowerMgmt)` });
    expect(sim.cluster.guests.get(g.vmid)!.status).toBe('stopped');
    await client.close();
  });
});

describe('actions with the action token', () => {
  let redis: TestRedis;
  let store: Store;
  let sync: ClusterSync;
  let queue: ActionQueue;
  let worker: ActionWorker;
  const clients: ProxmoxClient[] = [];
  const used = new Set<number>();

  beforeAll(async () => {
    const syncClient = clientFor(syncToken);
    const actionClient = clientFor(actionToken);
    clients.push(syncClient, actionClient);
    store = openStore(join(mkdtempSync(join(tmpdir(), 'pi-docs-tokens-')), 'inventory.db'));
    const log = createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, done) => done() }) });
    sync = createClusterSync({
      store,
      client: syncClient,
      cluster: CLUSTER,
      settings: { ...DEFAULT_SYNC_SETTINGS, sweepEveryMs: 0 },
      log,
    });
    await sync.runCycle();
    redis = await startTestRedis();
    queue = createActionQueue(redisConnection(redis.url, 'queue'), `docs${process.pid}`);
    worker = startActionWorker({
      store,
      client: (cluster) => (cluster === CLUSTER ? actionClient : undefined),
      tokenId: () => actionToken.id,
      refresh: async (_cluster, vmid, why) => void (await sync.refreshGuest(vmid, why)),
      log,
      now: Date.now,
      connection: redisConnection(redis.url, 'worker'),
      prefix: `docs${process.pid}`,
      settings: { reconcileEveryMs: 1_000, stopGraceMs: 2_000 },
      findTaskForMs: 2_000,
    });
  });

  afterAll(async () => {
    await worker?.stop().catch(() => undefined);
    await queue?.close().catch(() => undefined);
    for (const c of clients) await c.close();
    store?.close();
    await redis?.stop();
  });

  function take(type: 'qemu' | 'lxc', status: 'running' | 'stopped', withSnapshot = false): SimGuest {
    const g = [...sim.cluster.guests.values()].find(
      (x) =>
        x.type === type &&
        x.status === status &&
        (!withSnapshot || x.snapshots.length > 0) &&
        !x.values.lock &&
        x.values.template !== '1' &&
        !x.ha &&
        !used.has(x.vmid),
    );
    if (!g) throw new Error(`no free ${status} ${type} guest left`);
    used.add(g.vmid);
    return g;
  }

  async function run(kind: ActionKindName, vmid: number, params: Record<string, unknown> = {}): Promise<ActionRow> {
    const checked = checkRequest(store, { kind, vmid, params }, Date.now());
    const { action } = await submitAction(
      { store, queue, settings: { ttlMs: 300_000, perMinute: 1_000_000 }, now: Date.now },
      checked,
      { transport: 'mcp-http', client: 'vitest/1.0', principal: 'docs' },
    );
    const deadline = Date.now() + 20_000;
    for (;;) {
      const row = getAction(store, action.id)!;
      if (FINAL_STATES.includes(row.state)) return row;
      if (Date.now() > deadline) throw new Error(`action ${kind} still ${row.state}`);
      await sleep(20);
    }
  }

  /** A guest and parameters each kind can run on, in an order where each leaves the next its state. */
  function plan(): Array<{ kind: ActionKindName; vmid: number; params?: Record<string, unknown> }> {
    const vm = take('qemu', 'running');
    const ct = take('lxc', 'stopped');
    return [
      { kind: 'start', vmid: ct.vmid },
      { kind: 'reboot', vmid: ct.vmid },
      { kind: 'suspend', vmid: vm.vmid },
      { kind: 'resume', vmid: vm.vmid },
      { kind: 'snapshot_create', vmid: vm.vmid, params: { name: `docs${vm.vmid}` } },
      { kind: 'snapshot_rollback', vmid: vm.vmid, params: { name: `docs${vm.vmid}` } },
      { kind: 'snapshot_delete', vmid: vm.vmid, params: { name: `docs${vm.vmid}` } },
      { kind: 'shutdown', vmid: ct.vmid },
      { kind: 'start', vmid: vm.vmid },
      { kind: 'stop', vmid: vm.vmid },
    ];
  }

  it('every action kind succeeds with the action token', async () => {
    const steps = plan();
    expect(new Set(steps.map((s) => s.kind))).toEqual(new Set(ACTION_KINDS));
    for (const step of steps) {
      const row = await run(step.kind, step.vmid, step.params);
      expect(row, `${step.kind} on ${step.vmid}: ${row.reason}`).toMatchObject({ state: 'succeeded' });
    }
    const writes = sim.writes().filter((w) => w.user === actionToken.id);
    expect(writes).toHaveLength(steps.length);
    expect(writes.every((w) => w.status === 200)).toBe(true);
  }, 120_000);

  /** The schema's permission check of the request a kind sends. */
  function checkOf(kind: ActionKindName): unknown {
    const request = CATALOGUE[kind].request({ cluster: CLUSTER, vmid: 100, type: 'qemu', node: 'pve1' }, { name: 'x' });
    const route = request.path
      .replace('/nodes/pve1/', '/nodes/{node}/')
      .replace('/100', '/{vmid}')
      .replace('/snapshot/x', '/snapshot/{snapname}');
    return (endpointSchema(`${request.method} ${route}`)?.permissions as { check?: unknown }).check;
  }

  it('without any one privilege of the action role, each kind needing it ends failed with the 403 naming it', async () => {
    for (const missing of actionPrivileges) {
      const rest = actionPrivileges.filter((p) => p !== missing);
      sim.access.pveum(`pveum role modify ${actionRole} -privs "${rest.join(' ')}"`);
      const broken = ACTION_KINDS.filter((k) => !permits(checkOf(k), new Set(rest), {}));
      // Each privilege of the role is needed by some kind: the role holds nothing extra.
      expect(broken, `no kind needs ${missing}`).not.toEqual([]);
      for (const kind of broken) {
        const existing = kind === 'snapshot_rollback' || kind === 'snapshot_delete';
        const g = take('qemu', kind === 'start' ? 'stopped' : 'running', existing);
        const params = kind === 'snapshot_create' ? { name: 'fresh' } : existing ? { name: g.snapshots[0]!.name } : {};
        const row = await run(kind, g.vmid, params);
        expect(row.state, `${kind} without ${missing}`).toBe('failed');
        const refused = /^Proxmox refused (\w+): 403 Permission check failed \((\S+), (\S+)\)$/.exec(row.reason ?? '');
        expect(refused, row.reason ?? '').not.toBeNull();
        expect(refused!.slice(1, 3)).toEqual([kind, `/vms/${g.vmid}`]);
        expect(refused![3]!.split('|')).toContain(missing);
      }
    }
    sim.access.pveum(`pveum role modify ${actionRole} -privs "${actionPrivileges.join(' ')}"`);
  }, 120_000);
});
