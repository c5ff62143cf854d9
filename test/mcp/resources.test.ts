/** MCP resources over the real SDK client: listed, templated and read from the synced store. */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { createMcpServer } from '../../src/mcp/server.js';
import { startHarness, type SyncHarness } from '../sync/helpers.js';

let h: SyncHarness;
let client: Client;

beforeAll(async () => {
  h = await startHarness({ guests: 30, nodes: 2, seed: 71 });
  await h.sync.runCycle();
  const server = createMcpServer({
    store: h.store,
    now: Date.now,
    staleAfterMs: Infinity,
    log: createLogger({ level: 'silent' }),
    version: 'test',
  });
  client = new Client({ name: 'res', version: '1' });
  const [a, b] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(a), client.connect(b)]);
});
afterAll(async () => {
  await client.close();
  await h.close();
});

describe('resources', () => {
  it('offers three templates and lists the cluster, every node and the guests', async () => {
    const { resourceTemplates } = await client.listResourceTemplates();
    expect(resourceTemplates.map((t) => t.uriTemplate).sort()).toEqual([
      'proxmox://cluster/{name}',
      'proxmox://guest/{cluster}/{vmid}',
      'proxmox://node/{cluster}/{node}',
    ]);
    const uris = (await client.listResources()).resources.map((r) => r.uri);
    expect(uris).toContain('proxmox://cluster/lab');
    expect(uris.filter((u) => u.startsWith('proxmox://node/lab/'))).toEqual([
      'proxmox://node/lab/pve1',
      'proxmox://node/lab/pve2',
    ]);
    expect(uris.filter((u) => u.startsWith('proxmox://guest/lab/'))).toHaveLength(30);
  });

  it('reads a guest, a node and the cluster as JSON with freshness', async () => {
    const vmid = [...h.sim.cluster.guests.keys()][0]!;
    const guest = await client.readResource({ uri: `proxmox://guest/lab/${vmid}` });
    const body = JSON.parse((guest.contents[0] as { text: string }).text) as {
      vmid: number;
      node: string;
      freshness: { asOf: string };
    };
    expect(body).toMatchObject({
      vmid,
      node: h.sim.cluster.guests.get(vmid)!.node,
      freshness: { asOf: expect.any(String) },
    });
    const node = JSON.parse(
      ((await client.readResource({ uri: 'proxmox://node/lab/pve2' })).contents[0] as { text: string }).text,
    ) as { node: string };
    expect(node.node).toBe('pve2');
    const cluster = JSON.parse(
      ((await client.readResource({ uri: 'proxmox://cluster/lab' })).contents[0] as { text: string }).text,
    ) as { cluster: string; nodes: unknown[] };
    expect(cluster).toMatchObject({ cluster: 'lab', nodes: expect.any(Array) });
  });

  it('an unknown guest is an error naming the URI', async () => {
    await expect(client.readResource({ uri: 'proxmox://guest/lab/99999' })).rejects.toThrow(
      /proxmox:\/\/guest\/lab\/99999: no guest lab\/99999 in the inventory/,
    );
  });
});
