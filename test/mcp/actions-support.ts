/**
 * The action path as `serve` wires it, for the actions-*.test.ts files: the simulator over HTTP, a
 * synced SQLite inventory, a private redis-server, the BullMQ queue and worker (refreshing through
 * the cluster sync), and MCP clients connected to our server with a caller of the test's choosing.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { ElicitRequestSchema, type CallToolResult, type ElicitResult } from '@modelcontextprotocol/sdk/types.js';
import { ACTION_KINDS, type ActionKindName } from '../../src/actions/catalogue.js';
import { createActionQueue, startActionWorker, type ActionQueue, type ActionWorker } from '../../src/actions/queue.js';
import type { SubmitDeps } from '../../src/actions/submit.js';
import { createLogger } from '../../src/log.js';
import { createMcpServer, type McpDeps } from '../../src/mcp/server.js';
import type { ActionsContext, Caller } from '../../src/mcp/tool.js';
import { redisConnection } from '../../src/queue/redis.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';
import { startHarness, type SyncHarness } from '../sync/helpers.js';

export interface ActionRig {
  h: SyncHarness;
  redis: TestRedis;
  queue: ActionQueue;
  worker: ActionWorker;
  actions: ActionsContext;
  close(): Promise<void>;
}

export async function startActionRig(seed: number): Promise<ActionRig> {
  const h = await startHarness({ guests: 16, nodes: 2, seed });
  if (!(await h.sync.runCycle()).ok) throw new Error('first sync failed');
  const redis = await startTestRedis();
  const prefix = `t${seed}`;
  const queue = createActionQueue(redisConnection(redis.url, 'queue'), prefix);
  const worker = startActionWorker({
    store: h.store,
    client: () => h.client,
    refresh: async (_cluster, vmid, why) => void (await h.sync.refreshGuest(vmid, why)),
    log: h.log,
    now: Date.now,
    connection: redisConnection(redis.url, 'worker'),
    prefix,
    settings: { reconcileEveryMs: 1_000, stopGraceMs: 2_000 },
  });
  const submit: SubmitDeps = { store: h.store, queue, settings: { ttlMs: 300_000, perMinute: 10_000 }, now: Date.now };
  const actions: ActionsContext = { submit, waitMaxSeconds: 30, confirmTtlMs: 300_000 };
  return {
    h,
    redis,
    queue,
    worker,
    actions,
    async close() {
      await worker.stop();
      await queue.close();
      await redis.stop();
      await h.close();
    },
  };
}

export const callerWith = (principal: string, kinds: readonly ActionKindName[] = ACTION_KINDS): Caller => ({
  transport: 'mcp-stdio',
  client: null,
  principal,
  kinds: new Set(kinds),
});

export interface Connected {
  client: Client;
  call(name: string, args: Record<string, unknown>): Promise<Answer>;
}

export interface Answer {
  isError: boolean;
  text: string;
  structured: Record<string, unknown> | undefined;
  raw: CallToolResult;
}

/**
 * A real SDK client over memory. `elicit`: the client declares form elicitation and answers each
 * request with it (recording the messages it was shown).
 */
export async function connect(
  rig: ActionRig,
  deps: Partial<McpDeps> & { elicit?: (message: string) => ElicitResult },
): Promise<Connected> {
  const server = createMcpServer({
    store: rig.h.store,
    now: Date.now,
    staleAfterMs: Infinity,
    log: createLogger({ level: 'silent' }),
    version: 'test',
    actions: rig.actions,
    ...deps,
  });
  const client = new Client(
    { name: 'actions-test', version: '2.1' },
    deps.elicit ? { capabilities: { elicitation: { form: {} } } } : {},
  );
  if (deps.elicit) {
    const answer = deps.elicit;
    client.setRequestHandler(ElicitRequestSchema, (req) => answer(req.params.message));
  }
  const [a, b] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(a), client.connect(b)]);
  await client.listTools(); // the client then checks each structuredContent against its output schema
  return {
    client,
    async call(name, args) {
      const raw = (await client.callTool({ name, arguments: args })) as CallToolResult;
      return {
        isError: raw.isError === true,
        text: raw.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n'),
        structured: raw.structuredContent as Record<string, unknown> | undefined,
        raw,
      };
    },
  };
}

export interface GuestPick {
  vmid: number;
  type: 'qemu' | 'lxc';
  node: string;
  status: string;
}

/** Live, unlocked, non-template guests of the synced inventory. */
export function guestsOf(rig: ActionRig): GuestPick[] {
  return rig.h.store.sqlite
    .prepare(
      `SELECT vmid, type, node, status FROM guests
       WHERE deleted_at IS NULL AND template = 0 AND lock IS NULL AND stale = 0 AND hastate IS NULL ORDER BY vmid`,
    )
    .all() as GuestPick[];
}

/** The simulator's write requests about one guest. */
export const writesFor = (rig: ActionRig, vmid: number): string[] =>
  rig.h.sim
    .writes()
    .map((w) => `${w.method} ${w.path}`)
    .filter((line) => new RegExp(`/(qemu|lxc)/${vmid}(/|$)`).test(line));
