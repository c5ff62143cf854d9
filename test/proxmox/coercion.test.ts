/**
 * The client's coercion of real wire data: recorded responses from real clusters (and the
 * legacy string-number shapes of PVE ≤ 8.1) served over HTTP by a tiny fixture server.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpProxmoxClient } from '../../src/proxmox/http-client.js';
import type { ProxmoxClient } from '../../src/proxmox/client.js';
import { Secret } from '../../src/secret.js';

const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`../fixtures/pve/recorded/${name}`, import.meta.url), 'utf8'));

/** Path → response body; what the client sees is exactly these bytes. */
const routes = new Map<string, unknown>();
let server: Server;
let client: ProxmoxClient;
const warnings: Array<{ message: string; fields: Record<string, unknown> }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const body = routes.get(new URL(req.url!, 'http://x').pathname.replace('/api2/json', ''));
    res.writeHead(body === undefined ? 501 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body ?? { data: null }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  client = createHttpProxmoxClient({
    cluster: 'fixtures',
    url: `http://127.0.0.1:${port}`,
    tokenId: 'a@pve!b',
    tokenSecret: new Secret('s'),
    tls: {},
    retries: 0,
    onWarning: (message, fields) => warnings.push({ message, fields }),
  });
});
afterAll(async () => {
  await client.close();
  await new Promise((r) => server.close(r));
});

describe('coercion of recorded responses', () => {
  it('reads the 4-node go-proxmox /cluster/resources', async () => {
    routes.set('/cluster/resources', fixture('cluster-resources.4node.go-proxmox.json'));
    const r = await client.clusterResources();
    expect(r.guests.map((g) => g.vmid)).toEqual([100, 101, 102, 200]);
    expect(r.guests.find((g) => g.vmid === 101)).toMatchObject({ template: true, status: 'stopped', maxcpu: 4 });
    expect(r.guests.find((g) => g.vmid === 102)!.tags).toEqual(['go-proxmox+cloud-init']);
    expect(r.nodes).toHaveLength(4);
    expect(r.storage.length).toBe(12);
  });

  it('keeps an offline node and its storage without stats (Heimdall #584)', async () => {
    routes.set('/cluster/resources', fixture('cluster-resources.offline-node.heimdall-issue-584.json'));
    const r = await client.clusterResources();
    expect(r.nodes).toEqual([{ id: 'node/pve', type: 'node', node: 'pve', status: 'unknown' }]);
    expect(r.storage.every((s) => s.status === 'unknown' && s.disk === undefined && s.shared === false)).toBe(true);
    expect(r.storage[0]!.content).toEqual(['vztmpl', 'iso', 'backup']);
  });

  it('splits tags on ";" and reads the sdn entry as other (single node, DirkTheDaring/px)', async () => {
    routes.set('/cluster/resources', fixture('cluster-resources.single-node.DirkTheDaring-px.json'));
    const r = await client.clusterResources();
    expect(r.guests.map((g) => `${g.type}/${g.vmid}`)).toEqual(['qemu/100', 'lxc/103']);
    expect(r.other).toEqual([{ id: 'sdn/pve/localnetwork', type: 'sdn' }]);
    routes.set('/cluster/resources', fixture('cluster-resources.vms-only.packer-plugin-proxmox.json'));
    expect((await client.clusterResources()).guests.find((g) => g.vmid === 101)!.tags).toEqual(['blue', 'red']);
  });

  it('reads /cluster/status booleans from 0/1', async () => {
    routes.set('/cluster/status', fixture('cluster-status.4node.go-proxmox.json'));
    const s = await client.clusterStatus();
    expect(s.cluster).toEqual({ name: 'clustername', nodes: 4, version: 4, quorate: true });
    expect(s.nodes.filter((n) => n.local).map((n) => n.name)).toEqual(['node1']);
    expect(s.nodes.every((n) => n.online === true)).toBe(true);
  });

  it('reads PVE 8.1 and PVE 7 configs alike: every value as text, digest apart', async () => {
    routes.set('/nodes/pve/qemu/100/config', fixture('qemu-config.vm100.pve8.1.packer-plugin-proxmox.json'));
    routes.set('/nodes/pve/qemu/107/config', fixture('qemu-config.vm107.pve7.CRASH-Tech-proxmox-operator.json'));
    const pve81 = await client.guestConfig({ node: 'pve', type: 'qemu', vmid: 100 });
    const pve7 = await client.guestConfig({ node: 'pve', type: 'qemu', vmid: 107 });
    expect(pve81).toMatchObject({
      digest: '1ac0a42d3ead982a5631ee77a9444b44e5ff5456',
      values: { memory: '2048', cores: '1', numa: '0' },
    });
    expect(pve7).toMatchObject({
      digest: 'a2019681a11059dc5602d474c3443b907db213b7',
      values: { memory: '8192', cores: '8', agent: '0' },
    });
    expect(pve81.values).not.toHaveProperty('digest');
  });

  it('reads the node list with fingerprints, and a node task history', async () => {
    routes.set('/nodes', fixture('nodes.4node.go-proxmox.json'));
    const nodes = await client.nodes();
    expect(nodes[0]).toMatchObject({
      node: 'node1',
      maxcpu: 12,
      ssl_fingerprint: expect.stringMatching(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/),
    });
  });
});

describe('coercion of legacy and surprising data', () => {
  it('reads only decimal text as a number', async () => {
    routes.set('/cluster/resources', {
      data: [
        {
          id: 'qemu/100',
          type: 'qemu',
          vmid: 100,
          node: 'pve',
          status: 'running',
          maxmem: '0x10',
          mem: '',
          cpu: ' 0.25 ',
        },
      ],
    });
    const [g] = (await client.clusterResources()).guests;
    expect([g!.maxmem, g!.mem, g!.cpu]).toEqual([undefined, undefined, 0.25]);
  });

  it('turns string numbers into numbers (PVE ≤ 8.1 lxc vmid, old disk values)', async () => {
    routes.set('/cluster/resources', {
      data: [
        {
          id: 'lxc/113',
          type: 'lxc',
          vmid: '113',
          node: 'pve',
          status: 'running',
          disk: '744189952',
          maxmem: '536870912',
          template: '0',
          cpu: '0.5',
        },
      ],
    });
    const [g] = (await client.clusterResources()).guests;
    expect(g).toMatchObject({ vmid: 113, disk: 744_189_952, maxmem: 536_870_912, template: false, cpu: 0.5 });
  });

  it('skips an entry it cannot read with a warning, keeps the rest, and keeps unknown types as other', async () => {
    warnings.length = 0;
    routes.set('/cluster/resources', {
      data: [
        { id: 'qemu/100', type: 'qemu', vmid: 100, node: 'pve', status: 'running' },
        { id: 'qemu/x', type: 'qemu', vmid: 'not-a-number', node: 'pve' },
        { id: 'openvz/5', type: 'openvz', vmid: 5 },
        { id: 'network/pve/zone/localnetwork', type: 'network', node: 'pve' },
      ],
    });
    const r = await client.clusterResources();
    expect(r.guests.map((g) => g.vmid)).toEqual([100]);
    expect(r.other.map((o) => o.type)).toEqual(['openvz', 'network']);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({
      message: expect.stringContaining('unexpected shape'),
      fields: { id: 'qemu/x', field: 'vmid' },
    });
  });

  it('reads a guest without RRD data (status only, no stats) with defaults', async () => {
    routes.set('/cluster/resources', { data: [{ id: 'qemu/300', type: 'qemu', vmid: 300, node: 'pve' }] });
    const [g] = (await client.clusterResources()).guests;
    expect(g).toMatchObject({ vmid: 300, status: 'unknown', template: false, tags: [] });
    expect(g!.maxmem).toBeUndefined();
  });

  it('reports a body that is not the documented shape as a protocol error', async () => {
    routes.set('/version', { data: 'nine' });
    await expect(client.version()).rejects.toMatchObject({ kind: 'protocol', path: '/version' });
    routes.set('/cluster/tasks', { data: { not: 'a list' } });
    await expect(client.clusterTasks()).rejects.toMatchObject({ kind: 'protocol' });
  });
});
