/**
 * The storage reads other Proxmox clients make (ProxmoxMCP's get_storage: `GET /storage`, then
 * `GET /nodes/localhost/storage/{id}/status` per entry): values against the simulator's state,
 * the `type` filter, storage.cfg node restrictions, the unknown-storage error, offline nodes and
 * permissions. Read with the read-only auditor token, as a monitoring client would be set up.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPermission } from '../../src/sim/params.js';
import { ROUTES } from '../../src/sim/routes.js';
import { startSimulator, type Simulator } from '../../src/sim/server.js';
import { PveHttpError, type SimStorage } from '../../src/sim/state.js';
import { checkErrorResponse, checkStorageConfig, checkStorageStatus } from '../contract/pve-shapes.js';
import { checkAgainstSchema, loadEndpointSchema } from '../contract/schema-check.js';

type Entry = Record<string, unknown>;

interface Answer {
  status: number;
  reason: string;
  text: string;
  body: Entry;
}

let sim: Simulator;

async function get(path: string, token: 'auditor' | 'full' = 'auditor'): Promise<Answer> {
  const { id, secret } = sim.tokens[token];
  const res = await fetch(`${sim.url}/api2/json${path}`, { headers: { Authorization: `PVEAPIToken=${id}=${secret}` } });
  const text = await res.text();
  return { status: res.status, reason: res.statusText, text, body: text ? (JSON.parse(text) as Entry) : {} };
}

async function data<T = Entry[]>(path: string): Promise<T> {
  const res = await get(path);
  expect(res.status, `${path}: ${res.text.slice(0, 200)}`).toBe(200);
  return res.body.data as T;
}

const STATUS = 'GET /nodes/{node}/storage/{storage}/status';

function schemaProblems(endpoint: string, payload: unknown): string[] {
  return checkAgainstSchema(payload, loadEndpointSchema(endpoint).returns).problems;
}

beforeAll(async () => {
  sim = await startSimulator({ tls: false, seed: 5, nodes: 3, guests: 90, taskDelayMs: 30 });
});

afterAll(async () => {
  await sim?.close();
});

describe('GET /storage (storage.cfg)', () => {
  it('lists every storage once with its type, content, plugin keys and one digest of the whole file', async () => {
    const list = await data('/storage');
    expect(checkStorageConfig(list)).toEqual([]);
    expect(schemaProblems('GET /storage', list)).toEqual([]);
    expect(list.map((e) => e.storage)).toEqual(sim.cluster.storages.map((s) => s.storage));
    for (const s of sim.cluster.storages) {
      const entry = list.find((e) => e.storage === s.storage);
      expect(entry).toMatchObject({ type: s.plugintype, content: s.content, ...s.config });
    }
    expect(new Set(list.map((e) => e.digest))).toEqual(new Set([sim.cluster.storageDigest()]));
    expect(list[0]!.digest).toMatch(/^[0-9a-f]{40}$/);
  });

  it('carries shared:1 on the shared types only and no nodes key for storages on every node', async () => {
    const list = await data('/storage');
    expect(Object.fromEntries(list.map((e) => [e.storage, e.shared]))).toEqual({
      local: undefined,
      'local-lvm': undefined,
      'ceph-vm': 1,
      'nfs-backup': 1,
    });
    expect(list.filter((e) => 'nodes' in e)).toEqual([]);
    expect(list.find((e) => e.storage === 'local')).toEqual({
      storage: 'local',
      type: 'dir',
      path: '/var/lib/vz',
      content: 'iso,vztmpl,backup',
      digest: sim.cluster.storageDigest(),
    });
  });

  it.each([
    ['nfs', ['nfs-backup']],
    ['lvmthin', ['local-lvm']],
    ['rbd', ['ceph-vm']],
    ['zfspool', []],
  ])('?type=%s lists %j', async (type, expected) => {
    const list = await data(`/storage?type=${type}`);
    expect(list.map((e) => e.storage)).toEqual(expected);
    expect(list.every((e) => e.type === type)).toBe(true);
  });

  it('?type= outside the schema enum → 400 errors.type', async () => {
    const res = await get('/storage?type=ceph');
    expect([res.status, res.reason]).toEqual([400, 'Parameter verification failed.']);
    expect(Object.keys(res.body.errors as Entry)).toEqual(['type']);
    expect(res.body.errors).toEqual({
      type: expect.stringMatching(/^value 'ceph' does not have a value in the enumeration 'btrfs, cephfs, /) as string,
    });
    expect(checkErrorResponse(res.status, res.reason, res.text)).toEqual([]);
  });

  it('the digest is the same on every read and for the same seed', async () => {
    const other = await startSimulator({ tls: false, seed: 5, nodes: 3, guests: 1 });
    try {
      expect(other.cluster.storageDigest()).toBe(sim.cluster.storageDigest());
    } finally {
      await other.close();
    }
    expect((await data('/storage'))[0]!.digest).toBe((await data('/storage'))[0]!.digest);
  });
});

describe('GET /nodes/{node}/storage/{storage}/status', () => {
  it('agrees with /nodes/{node}/storage and /cluster/resources for every node and storage', async () => {
    const resources = await data('/cluster/resources?type=storage');
    for (const node of sim.cluster.nodes.map((n) => n.name)) {
      const index = await data(`/nodes/${node}/storage`);
      for (const s of sim.cluster.storages) {
        const status = await data<Entry>(`/nodes/${node}/storage/${s.storage}/status`);
        expect(checkStorageStatus(status)).toEqual([]);
        expect(schemaProblems(STATUS, status)).toEqual([]);
        const { storage, used_fraction: fraction, ...sameFields } = index.find((e) => e.storage === s.storage)!;
        expect([storage, status]).toEqual([s.storage, sameFields]);
        expect(fraction).toBe((status.used as number) / (status.total as number));
        expect(status).toMatchObject({
          type: s.plugintype,
          content: s.content,
          active: 1,
          enabled: 1,
          shared: s.shared ? 1 : 0,
          total: s.maxdisk,
        });
        expect((status.used as number) + (status.avail as number)).toBe(status.total);
        const resource = resources.find((e) => e.id === `storage/${node}/${s.storage}`)!;
        expect([resource.disk, resource.maxdisk]).toEqual([status.used, status.total]);
      }
    }
  });

  it('reports the bytes the guests on it allocate: local storage per node, shared storage cluster-wide', async () => {
    const usage = sim.cluster.storageUsage();
    expect(await data<Entry>('/nodes/pve2/storage/local-lvm/status')).toMatchObject({
      used: usage.get('pve2/local-lvm'),
    });
    expect(await data<Entry>('/nodes/pve3/storage/ceph-vm/status')).toMatchObject({ used: usage.get('ceph-vm') });
    const before = await data<Entry>('/nodes/pve2/storage/local-lvm/status');
    const untouched = await data<Entry>('/nodes/pve3/storage/local-lvm/status');
    const vmid = sim.createGuest({ type: 'qemu', node: 'pve2', storage: 'local-lvm', diskGiB: 64 });
    try {
      const after = await data<Entry>('/nodes/pve2/storage/local-lvm/status');
      expect((after.used as number) - (before.used as number)).toBe(64 * 2 ** 30);
      expect((after.avail as number) - (before.avail as number)).toBe(-64 * 2 ** 30);
      expect(await data<Entry>('/nodes/pve3/storage/local-lvm/status')).toEqual(untouched);
    } finally {
      sim.deleteGuest(vmid, true);
    }
  });

  it('`localhost` is the node that answers (the local node of /cluster/status), as ProxmoxMCP calls it', async () => {
    const status = await data('/cluster/status');
    const local = status.find((e) => e.type === 'node' && e.local === 1)!.name as string;
    for (const s of sim.cluster.storages) {
      expect(await data<Entry>(`/nodes/localhost/storage/${s.storage}/status`)).toEqual(
        await data<Entry>(`/nodes/${local}/storage/${s.storage}/status`),
      );
    }
    expect(await data('/nodes/localhost/storage')).toEqual(await data(`/nodes/${local}/storage`));
  });

  it('an id storage.cfg lacks → 400 errors.storage "No such storage." (Status.pm read_status), on localhost too', async () => {
    for (const node of ['pve1', 'localhost']) {
      const res = await get(`/nodes/${node}/storage/nope/status`);
      expect([res.status, res.reason]).toEqual([400, 'Parameter verification failed.']);
      expect(res.body).toEqual({
        message: 'Parameter verification failed.\n',
        data: null,
        errors: { storage: 'No such storage.' },
      });
      expect(checkErrorResponse(res.status, res.reason, res.text)).toEqual([]);
    }
  });

  it('a malformed storage id fails the schema format check; an unknown node its hostname lookup', async () => {
    const bad = await get('/nodes/pve1/storage/9lives/status');
    expect([bad.status, bad.body.errors]).toEqual([400, { storage: "invalid format - invalid storage ID '9lives'" }]);
    const unknown = await get('/nodes/pve9/storage/local/status');
    expect([unknown.status, unknown.reason]).toEqual([
      500,
      "hostname lookup 'pve9' failed - failed to get address info for: pve9: Name or service not known",
    ]);
  });

  it('an offline node → 595 (the request is proxied to it)', async () => {
    sim.setNodeOnline('pve3', false);
    try {
      const res = await get('/nodes/pve3/storage/nfs-backup/status');
      expect([res.status, res.reason]).toEqual([
        595,
        'Errors during connection establishment, proxy handshake: No route to host',
      ]);
      expect(checkErrorResponse(res.status, res.reason, res.text)).toEqual([]);
    } finally {
      sim.setNodeOnline('pve3', true);
    }
  });
});

describe('a storage storage.cfg restricts to some nodes', () => {
  const restricted: SimStorage = {
    storage: 'fast-zfs',
    plugintype: 'zfspool',
    content: 'images,rootdir',
    shared: false,
    nodes: ['pve1', 'pve3'],
    maxdisk: 4 * 2 ** 40,
    baseUsed: 2 ** 30,
    config: { pool: 'rpool/fast', sparse: 1 },
  };
  let digestBefore: string;

  beforeAll(() => {
    digestBefore = sim.cluster.storageDigest();
    sim.cluster.storages.push(restricted);
  });
  afterAll(() => {
    sim.cluster.storages.splice(sim.cluster.storages.indexOf(restricted), 1);
  });

  it('GET /storage lists it with `nodes`, and every entry carries the new file digest', async () => {
    const list = await data('/storage');
    expect(checkStorageConfig(list)).toEqual([]);
    expect(list.find((e) => e.storage === 'fast-zfs')).toEqual({
      storage: 'fast-zfs',
      type: 'zfspool',
      pool: 'rpool/fast',
      sparse: 1,
      content: 'images,rootdir',
      nodes: 'pve1,pve3',
      digest: sim.cluster.storageDigest(),
    });
    expect(sim.cluster.storageDigest()).not.toBe(digestBefore);
    expect(new Set(list.map((e) => e.digest)).size).toBe(1);
    expect((await data('/storage?type=zfspool')).map((e) => e.storage)).toEqual(['fast-zfs']);
  });

  it('status on a node it is enabled on has its sizes', async () => {
    const status = await data<Entry>('/nodes/pve3/storage/fast-zfs/status');
    expect(status).toEqual({
      type: 'zfspool',
      content: 'images,rootdir',
      active: 1,
      enabled: 1,
      shared: 0,
      total: 4 * 2 ** 40,
      used: 2 ** 30,
      avail: 4 * 2 ** 40 - 2 ** 30,
    });
  });

  it('status on another node answers enabled 0, active 0 and zero sizes (storage_info still knows it), not an error', async () => {
    const status = await data<Entry>('/nodes/pve2/storage/fast-zfs/status');
    expect(status).toEqual({
      type: 'zfspool',
      content: 'images,rootdir',
      active: 0,
      enabled: 0,
      shared: 0,
      total: 0,
      used: 0,
      avail: 0,
    });
    expect(checkStorageStatus(status)).toEqual([]);
    expect(schemaProblems(STATUS, status)).toEqual([]);
    const index = await data('/nodes/pve2/storage');
    expect(index.find((e) => e.storage === 'fast-zfs')).toEqual({ storage: 'fast-zfs', ...status });
  });

  it('/cluster/resources has it only on the nodes it is enabled on', async () => {
    const resources = await data('/cluster/resources?type=storage');
    expect(resources.filter((e) => e.storage === 'fast-zfs').map((e) => e.node)).toEqual(['pve1', 'pve3']);
  });
});

describe('permissions', () => {
  it('the auditor token (Datastore.Audit) reads the config and every status; so does the full token', async () => {
    for (const path of ['/storage', '/nodes/pve1/storage/local/status', '/nodes/localhost/storage/ceph-vm/status']) {
      expect((await get(path, 'auditor')).status, path).toBe(200);
      expect((await get(path, 'full')).body, path).toEqual((await get(path, 'auditor')).body);
    }
  });

  it('status needs Datastore.Audit or Datastore.AllocateSpace on /storage/{storage} (the schema check)', () => {
    /** [status, reason] of the refusal, or undefined when the check passes. */
    const refusal = (privs: string[]): unknown => {
      try {
        checkPermission(STATUS, new Set(privs), { node: 'pve1', storage: 'local' });
        return undefined;
      } catch (err) {
        return err instanceof PveHttpError ? [err.status, err.reason] : err;
      }
    };
    expect(refusal(['VM.Audit', 'Sys.Audit', 'Pool.Audit'])).toEqual([
      403,
      'Permission check failed (/storage/local, Datastore.Audit|Datastore.AllocateSpace)',
    ]);
    expect(refusal(['Datastore.AllocateSpace'])).toBeUndefined();
    expect(refusal(['Datastore.Audit'])).toBeUndefined();
  });

  it('GET /storage is open to every user but lists only the storages the caller may audit or allocate on', () => {
    const route = ROUTES.find((r) => r.method === 'GET' && r.path === '/storage')!;
    const list = (privs: string[]): unknown =>
      route.handler({
        cluster: sim.cluster,
        params: {},
        user: 'mon@pve!ro',
        privs: new Set(privs),
        fingerprint: undefined,
      });
    expect(() => checkPermission('GET /storage', new Set(), {})).not.toThrow();
    expect(list(['VM.Audit', 'Sys.Audit'])).toEqual([]);
    expect((list(['Datastore.AllocateSpace']) as Entry[]).map((e) => e.storage)).toEqual(
      sim.cluster.storages.map((s) => s.storage),
    );
  });
});
