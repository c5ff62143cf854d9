/**
 * MCP resources over the real SDK client: listed (clusters and nodes, a page at a time), templated
 * and read from the synced store; a guest by vmid or name; and the JSON-RPC errors a client can act
 * on for URIs that name nothing.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { RESOURCES_PAGE } from '../../src/mcp/resources.js';
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
  it('offers three templates and lists the cluster and every node, not the guests', async () => {
    const { resourceTemplates } = await client.listResourceTemplates();
    expect(resourceTemplates.map((t) => t.uriTemplate).sort()).toEqual([
      'proxmox://cluster/{name}',
      'proxmox://guest/{cluster}/{vmid}',
      'proxmox://node/{cluster}/{node}',
    ]);
    const listed = await client.listResources();
    // Guests are left to the template: listing them cost 28k tokens at 2,000 guests.
    expect(listed.resources.map((r) => r.uri)).toEqual([
      'proxmox://cluster/lab',
      'proxmox://node/lab/pve1',
      'proxmox://node/lab/pve2',
    ]);
    expect(listed.nextCursor).toBeUndefined();
  });

  it(`pages through the nodes of a large cluster, ${RESOURCES_PAGE} at a time, following the cursor`, async () => {
    const big = await startHarness({ guests: 20, nodes: 2 * RESOURCES_PAGE + 30, seed: 72 });
    try {
      expect((await big.sync.runCycle()).ok).toBe(true);
      const server = createMcpServer({
        store: big.store,
        now: Date.now,
        staleAfterMs: Infinity,
        log: createLogger({ level: 'silent' }),
        version: 'test',
      });
      const paging = new Client({ name: 'res', version: '1' });
      const [a, b] = InMemoryTransport.createLinkedPair();
      await Promise.all([server.connect(a), paging.connect(b)]);
      const pages: string[][] = [];
      let cursor: string | undefined;
      do {
        const page = await paging.listResources(cursor === undefined ? {} : { cursor });
        pages.push(page.resources.map((r) => r.uri));
        cursor = page.nextCursor;
      } while (cursor);
      const nodes = (big.store.sqlite.prepare("SELECT node FROM nodes WHERE cluster = 'lab'").pluck().all() as string[])
        .map((n) => `proxmox://node/lab/${n}`)
        .sort();
      expect(pages.map((p) => p.length)).toEqual([RESOURCES_PAGE, RESOURCES_PAGE, 31]);
      expect(pages.flat()).toEqual(['proxmox://cluster/lab', ...nodes]);
      // What a client made up is refused as invalid params, not read as a place in the list.
      await expect(paging.listResources({ cursor: 'page-2' })).rejects.toMatchObject({ code: -32602 });
      await paging.close();
    } finally {
      await big.close();
    }
  }, 60_000);

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

  it('reads a guest by its name too, as completion offers names for letters typed', async () => {
    const named = h.store.sqlite
      .prepare(
        "SELECT vmid, name FROM guests WHERE cluster = 'lab' AND name IS NOT NULL GROUP BY lower(name) HAVING count(*) = 1 LIMIT 1",
      )
      .get() as { vmid: number; name: string };
    const byName = JSON.parse(
      ((await client.readResource({ uri: `proxmox://guest/lab/${named.name}` })).contents[0] as { text: string }).text,
    ) as { vmid: number };
    expect(byName.vmid).toBe(named.vmid);
  });
});

describe('resources/read errors (MCP: -32602 invalid params, -32002 resource not found; never -32603)', () => {
  const read = (uri: string, c = client) => c.readResource({ uri });
  const NOT_FOUND = -32002;
  const INVALID = -32602;

  it('a guest, node or cluster the inventory does not hold is not found, naming the URI', async () => {
    await expect(read('proxmox://guest/lab/99999')).rejects.toMatchObject({
      code: NOT_FOUND,
      message: expect.stringMatching(/proxmox:\/\/guest\/lab\/99999: no guest lab\/99999 in the inventory/),
    });
    await expect(read('proxmox://guest/lab/no-such-name')).rejects.toMatchObject({ code: NOT_FOUND });
    await expect(read('proxmox://guest/elsewhere/100')).rejects.toMatchObject({ code: NOT_FOUND });
    await expect(read('proxmox://node/lab/pve9')).rejects.toMatchObject({
      code: NOT_FOUND,
      message: expect.stringContaining('proxmox://node/lab/pve9: no node lab/pve9 in the inventory'),
    });
    await expect(read('proxmox://cluster/elsewhere')).rejects.toMatchObject({ code: NOT_FOUND });
    // A name is said as written, not as the URI escapes it (it said no guest lab/%C3%BCn%C3%AF).
    await expect(read('proxmox://guest/lab/ünï')).rejects.toMatchObject({
      code: NOT_FOUND,
      message: expect.stringContaining('no guest lab/ünï in the inventory'),
    });
  });

  it('a URI of no resource kind is not found, listing the templates', async () => {
    for (const uri of [
      'proxmox://guest/lab',
      'proxmox://vm/lab/100',
      'proxmox://guest/lab/100/disks',
      'https://example.com/x',
    ])
      await expect(read(uri), uri).rejects.toMatchObject({
        code: NOT_FOUND,
        message: expect.stringContaining(
          'no such resource; the resources are proxmox://cluster/{name}, proxmox://guest/{cluster}/{vmid}, proxmox://node/{cluster}/{node}',
        ),
      });
  });

  it('a malformed URI is invalid params', async () => {
    for (const uri of ['not a uri', '', 'proxmox://[bad/x', 'x'.repeat(5_000), 'proxmox://guest/lab/50%'])
      await expect(read(uri), uri.slice(0, 20)).rejects.toMatchObject({
        code: INVALID,
        message: expect.stringMatching(/-32602: uri: /),
      });
  });

  it('a name two guests share is invalid params listing their vmids', async () => {
    const [a, b] = [...h.sim.cluster.guests.keys()].slice(-2) as [number, number];
    h.store.sqlite.prepare("UPDATE guests SET name = 'twin' WHERE cluster = 'lab' AND vmid IN (?, ?)").run(a, b);
    await expect(read('proxmox://guest/lab/twin')).rejects.toMatchObject({
      code: INVALID,
      message: expect.stringContaining(
        `the name twin is held by guests ${[a, b].sort((x, y) => x - y).join(', ')} in lab; use the vmid`,
      ),
    });
  });

  it('before the first sync every read is not found, saying why', async () => {
    const server = createMcpServer({
      store: undefined,
      now: Date.now,
      staleAfterMs: Infinity,
      log: createLogger({ level: 'silent' }),
      version: 'test',
    });
    const empty = new Client({ name: 'res', version: '1' });
    const [a, b] = InMemoryTransport.createLinkedPair();
    await Promise.all([server.connect(a), empty.connect(b)]);
    await expect(read('proxmox://cluster/lab', empty)).rejects.toMatchObject({
      code: NOT_FOUND,
      message: expect.stringContaining('no inventory yet'),
    });
    await empty.close();
  });
});
