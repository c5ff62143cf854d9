/**
 * completion/complete over the real SDK client, against a real SQLite file the test fills with its
 * own SQL (clusters, nodes, live and deleted guests, names in several cases); every expectation is
 * computed with the test's own SQL (string prefixes with CAST and LIKE) or written out, never with
 * the queries under test. Also: at 10,000 guests a completion costs about what a tool call does.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { CompleteRequest } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { createMcpServer } from '../../src/mcp/server.js';
import { openStore, type Store } from '../../src/store/db.js';

const GUEST = 'proxmox://guest/{cluster}/{vmid}';
const NODE = 'proxmox://node/{cluster}/{node}';
const CLUSTER = 'proxmox://cluster/{name}';

interface Row {
  cluster: string;
  vmid: number;
  node: string;
  name: string | null;
  deleted?: boolean;
}

function fill(store: Store, clusters: string[], nodes: Array<[string, string]>, guests: Row[]): void {
  const now = Date.now();
  const { sqlite } = store;
  sqlite.transaction(() => {
    for (const name of clusters)
      sqlite.prepare('INSERT INTO clusters (name, last_success_at) VALUES (?, ?)').run(name, now);
    for (const [cluster, node] of nodes)
      sqlite
        .prepare("INSERT INTO nodes (cluster, node, status, online, updated_at) VALUES (?, ?, 'online', 1, ?)")
        .run(cluster, node, now);
    const insert = sqlite.prepare(
      `INSERT INTO guests (cluster, vmid, type, node, name, status, last_seen_at, first_seen_at, updated_at, deleted_at)
       VALUES (?, ?, 'qemu', ?, ?, 'running', ?, ?, ?, ?)`,
    );
    for (const g of guests) insert.run(g.cluster, g.vmid, g.node, g.name, now, now, now, g.deleted ? now : null);
  })();
}

async function connect(store: Store | undefined): Promise<Client> {
  const server = createMcpServer({
    store,
    now: Date.now,
    staleAfterMs: Infinity,
    log: createLogger({ level: 'silent' }),
    version: 'test',
  });
  const client = new Client({ name: 'complete', version: '1' });
  const [a, b] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(a), client.connect(b)]);
  return client;
}

const tempStore = (): Store => openStore(join(mkdtempSync(join(tmpdir(), 'pi-complete-')), 'inventory.db'));

let store: Store;
let client: Client;

/** Guests of `lab`: 150 named web-N, three more web names in other cases, 200 db-N, one without a name, one deleted. */
const labGuests: Row[] = [
  ...Array.from({ length: 150 }, (_, i) => ({ cluster: 'lab', vmid: 100 + i, node: 'pve1', name: `web-${i + 1}` })),
  { cluster: 'lab', vmid: 250, node: 'pve2', name: 'web' },
  { cluster: 'lab', vmid: 251, node: 'pve2', name: 'Web-Admin' },
  { cluster: 'lab', vmid: 252, node: 'pve2', name: 'webserver' },
  ...Array.from({ length: 200 }, (_, i) => ({ cluster: 'lab', vmid: 1000 + i, node: 'pve10', name: `db-${i}` })),
  { cluster: 'lab', vmid: 2000, node: 'pve10', name: null },
  { cluster: 'lab', vmid: 1234_0, node: 'pve10', name: 'webgone', deleted: true },
];
/** `edge` shares vmids 100–119 and the name "web" with lab; two names differ in case only. */
const edgeGuests: Row[] = [
  ...Array.from({ length: 20 }, (_, i) => ({ cluster: 'edge', vmid: 100 + i, node: 'pve1', name: `edge-${i}` })),
  { cluster: 'edge', vmid: 130, node: 'edge-a', name: 'web' },
  { cluster: 'edge', vmid: 131, node: 'edge-a', name: 'Web-Edge1' },
  { cluster: 'edge', vmid: 132, node: 'edge-a', name: 'web-edge2' },
];

beforeAll(async () => {
  store = tempStore();
  fill(
    store,
    ['lab', 'lab-west', 'edge'],
    [
      ['lab', 'pve1'],
      ['lab', 'pve2'],
      ['lab', 'pve10'],
      ['edge', 'pve1'],
      ['edge', 'edge-a'],
    ],
    [...labGuests, ...edgeGuests],
  );
  client = await connect(store);
});
afterAll(async () => {
  await client.close();
  store.close();
});

type Ref = CompleteRequest['params']['ref'];
const complete = async (ref: Ref, name: string, value: string, chosen?: Record<string, string>) =>
  (await client.complete({ ref, argument: { name, value }, ...(chosen ? { context: { arguments: chosen } } : {}) }))
    .completion;
const resource = (uri: string): Ref => ({ type: 'ref/resource', uri });
const prompt = (name: string): Ref => ({ type: 'ref/prompt', name });

/** Live vmids starting with `digits` as text, ascending, once each: the test's own SQL. */
function vmidsLike(digits: string, cluster?: string): string[] {
  return (
    store.sqlite
      .prepare(
        `SELECT DISTINCT vmid FROM guests WHERE deleted_at IS NULL AND (@cluster IS NULL OR cluster = @cluster)
         AND CAST(vmid AS TEXT) LIKE @digits || '%' ORDER BY vmid`,
      )
      .pluck()
      .all({ digits, cluster: cluster ?? null }) as number[]
  ).map(String);
}

/** Live names starting with `typed` in any case (LIKE ignores ASCII case), ranked as completions promise. */
function namesLike(typed: string, cluster?: string): string[] {
  const names = store.sqlite
    .prepare(
      `SELECT DISTINCT name FROM guests WHERE deleted_at IS NULL AND name IS NOT NULL
       AND (@cluster IS NULL OR cluster = @cluster) AND name LIKE @typed || '%'`,
    )
    .pluck()
    .all({ typed, cluster: cluster ?? null }) as string[];
  const caseDiffers = (n: string): number => (n.startsWith(typed) ? 0 : 1);
  return names.sort((a, b) => a.length - b.length || caseDiffers(a) - caseDiffers(b) || (a < b ? -1 : 1));
}

const page = (all: string[]) => ({ values: all.slice(0, 100), total: all.length, hasMore: all.length > 100 });

describe('completion/complete', () => {
  it('is declared as a capability', () => {
    expect(client.getServerCapabilities()?.completions).toEqual({});
  });

  it('completes cluster names by prefix in any case, shortest first', async () => {
    expect(await complete(resource(CLUSTER), 'name', 'LA')).toEqual({
      values: ['lab', 'lab-west'],
      total: 2,
      hasMore: false,
    });
    expect((await complete(resource(GUEST), 'cluster', '')).values).toEqual(['lab', 'edge', 'lab-west']);
    expect(await complete(resource(NODE), 'cluster', 'x')).toEqual({ values: [], total: 0, hasMore: false });
  });

  it('completes node names within the cluster chosen first, and every cluster’s otherwise', async () => {
    expect((await complete(resource(NODE), 'node', 'pve1', { cluster: 'lab' })).values).toEqual(['pve1', 'pve10']);
    expect((await complete(resource(NODE), 'node', '', { cluster: 'edge' })).values).toEqual(['pve1', 'edge-a']);
    expect((await complete(resource(NODE), 'node', 'PVE')).values).toEqual(['pve1', 'pve2', 'pve10']);
    expect((await complete(resource(NODE), 'node', 'pve', { cluster: 'nowhere' })).values).toEqual([]);
  });

  it('completes a vmid from digits: live vmids with that prefix, ascending, at most 100 with the total', async () => {
    for (const [digits, cluster] of [
      ['1', 'lab'],
      ['1', undefined],
      ['12', 'lab'],
      ['', 'lab'],
      ['', undefined],
      ['2000', 'lab'],
      ['12340', 'lab'], // deleted
      ['0', 'lab'],
      ['9999999999', undefined],
    ] as const) {
      const chosen = cluster ? { cluster } : undefined;
      expect(await complete(resource(GUEST), 'vmid', digits, chosen), `${digits} in ${cluster}`).toEqual(
        page(vmidsLike(digits, cluster)),
      );
    }
    expect((await complete(resource(GUEST), 'vmid', '12', { cluster: 'lab' })).values.slice(0, 3)).toEqual([
      '120',
      '121',
      '122',
    ]);
  });

  it('completes a guest name from letters: exact first, then shorter, then the case typed, at most 100', async () => {
    const web = await complete(resource(GUEST), 'vmid', 'web', { cluster: 'lab' });
    expect(web.values.slice(0, 11)).toEqual(['web', ...Array.from({ length: 9 }, (_, i) => `web-${i + 1}`), 'web-10']);
    expect(web.values.at(-1)).toBe('web-99');
    expect(web).toMatchObject({ total: 153, hasMore: true });
    expect(web).toEqual(page(namesLike('web', 'lab')));
    expect(web.values).not.toContain('webgone'); // deleted
    // Of the same length, the name in the case typed comes first.
    expect((await complete(resource(GUEST), 'vmid', 'web-', { cluster: 'edge' })).values).toEqual([
      'web-edge2',
      'Web-Edge1',
    ]);
    expect((await complete(resource(GUEST), 'vmid', 'Web-', { cluster: 'edge' })).values).toEqual([
      'Web-Edge1',
      'web-edge2',
    ]);
    for (const [typed, cluster] of [
      ['db-1', 'lab'],
      ['WEB', undefined],
      ['edge-1', 'edge'],
      ['web', 'edge'],
      ['nothing', undefined],
    ] as const)
      expect(
        await complete(resource(GUEST), 'vmid', typed, cluster ? { cluster } : undefined),
        `${typed} in ${cluster}`,
      ).toEqual(page(namesLike(typed, cluster)));
  });

  it('completes prompt arguments, narrowed by the arguments chosen first', async () => {
    expect((await complete(prompt('maintenance_plan'), 'node', 'pve', { cluster: 'edge' })).values).toEqual(['pve1']);
    expect((await complete(prompt('maintenance_plan'), 'cluster', 'e')).values).toEqual(['edge']);
    expect((await complete(prompt('capacity_review'), 'cores', '1')).values).toEqual(['1', '16']);
    expect((await complete(prompt('change_review'), 'since', '')).values).toEqual(['1h', '24h', '7d']);
    expect((await complete(prompt('daily_report'), 'cluster', 'lab-')).values).toEqual(['lab-west']);
    // An argument without a completer has nothing to offer.
    expect(await complete(prompt('daily_report'), 'colour', 'b')).toEqual({ values: [], total: 0, hasMore: false });
  });

  it('an unknown prompt or template is invalid params (-32602) naming the known ones', async () => {
    await expect(complete(prompt('nope'), 'x', '')).rejects.toMatchObject({
      code: -32602,
      message: expect.stringMatching(/no prompt nope; the prompts are daily_report, capacity_review/),
    });
    await expect(complete(resource('proxmox://vm/{id}'), 'id', '')).rejects.toMatchObject({
      code: -32602,
      message: expect.stringContaining(`the templates are ${CLUSTER}, ${GUEST}, ${NODE}`),
    });
  });

  it('before the first sync offers no inventory values, and the usual sizes still', async () => {
    const empty = await connect(undefined);
    expect(await empty.complete({ ref: resource(GUEST), argument: { name: 'vmid', value: '1' } })).toEqual({
      completion: { values: [], total: 0, hasMore: false },
    });
    expect(
      (await empty.complete({ ref: prompt('capacity_review'), argument: { name: 'memoryGiB', value: '' } })).completion
        .values,
    ).toEqual(['1', '2', '4', '8', '16', '32', '64']);
    await empty.close();
  });
});

describe('at 10,000 guests', () => {
  let big: Store;
  let bigClient: Client;
  const words = ['web', 'db', 'cache', 'proxy', 'mail', 'k8s-worker', 'k8s-master', 'backup', 'ci', 'vpn'];

  beforeAll(async () => {
    big = tempStore();
    const guests: Row[] = Array.from({ length: 10_000 }, (_, i) => ({
      cluster: i % 5 === 0 ? 'edge' : 'lab',
      vmid: 100 + i,
      node: `pve${i % 16}`,
      name: `${words[i % words.length]}-${i}`,
    }));
    fill(big, ['lab', 'edge'], [], guests);
    bigClient = await connect(big);
  });
  afterAll(async () => {
    await bigClient.close();
    big.close();
  });

  it('answers the widest prefixes in the time class of a tool call', async () => {
    const asks: Array<[string, Record<string, string> | undefined]> = [
      ['', undefined],
      ['1', undefined],
      ['', { cluster: 'lab' }],
      ['k8s', undefined],
      ['c', { cluster: 'lab' }],
    ];
    for (const [value, chosen] of asks) {
      const ask = () =>
        bigClient.complete({
          ref: resource(GUEST),
          argument: { name: 'vmid', value },
          ...(chosen ? { context: { arguments: chosen } } : {}),
        });
      const first = await ask();
      expect(first.completion.values).toHaveLength(100);
      const times: number[] = [];
      for (let i = 0; i < 60; i++) {
        const t = performance.now();
        await ask();
        times.push(performance.now() - t);
      }
      times.sort((a, b) => a - b);
      // Idle, these take 0.2–1.5 ms; the bound leaves room for a loaded CI machine and catches a scan in JavaScript.
      expect(times[30], `median for ${JSON.stringify(value)} ${JSON.stringify(chosen)}`).toBeLessThan(25);
    }
    expect(
      (await bigClient.complete({ ref: resource(GUEST), argument: { name: 'vmid', value: '' } })).completion,
    ).toMatchObject({ total: 10_000, hasMore: true });
    expect(
      (
        await bigClient.complete({
          ref: resource(GUEST),
          argument: { name: 'vmid', value: 'k8s' },
          context: { arguments: { cluster: 'lab' } },
        })
      ).completion.total,
    ).toBe(big.sqlite.prepare("SELECT count(*) FROM guests WHERE cluster = 'lab' AND name LIKE 'k8s%'").pluck().get());
  });
});
