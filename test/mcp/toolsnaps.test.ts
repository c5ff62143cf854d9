/**
 * What the model sees of each tool, snapshotted: a change to a name, description, schema or
 * annotation shows in review as a diff of test/mcp/__toolsnaps__/<tool>.json. A missing, different
 * or leftover snapshot fails, on CI and locally alike; after an intended change, rewrite them with
 *   UPDATE_TOOLSNAPS=1 npx vitest run test/mcp/toolsnaps.test.ts   (or vitest's -u)
 * and commit the diff. (toMatchFileSnapshot is not used: outside CI it writes a missing snapshot
 * and passes, so a new tool without one went unnoticed.)
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { ACTION_KINDS, type ActionKindName } from '../../src/actions/catalogue.js';
import type { SubmitDeps } from '../../src/actions/submit.js';
import { createMcpServer } from '../../src/mcp/server.js';
import type { ActionsContext, Caller } from '../../src/mcp/tool.js';
import { actionReadTools, actionTools, allTools } from '../../src/mcp/tools/index.js';

const DIR = fileURLToPath(new URL('__toolsnaps__/', import.meta.url));
const HOW =
  'If the change is intended, rewrite the snapshots with UPDATE_TOOLSNAPS=1 npx vitest run test/mcp/toolsnaps.test.ts and commit them.';
/** UPDATE_TOOLSNAPS=1, or vitest run with -u. */
const updating = (): boolean =>
  process.env.UPDATE_TOOLSNAPS === '1' || expect.getState().snapshotState?.snapshotUpdateState === 'all';

/** Listing needs no queue: the context is only read when a write tool is called. */
const ACTIONS: ActionsContext = { submit: {} as SubmitDeps, waitMaxSeconds: 60, confirmTtlMs: 300_000 };
const callerWith = (kinds: readonly ActionKindName[]): Caller => ({
  transport: 'mcp-stdio',
  client: null,
  principal: 'snap',
  kinds: new Set(kinds),
});

/** tools/list as a client sees it: read-only (no caller), or for a caller with these kinds. */
async function listed(kinds?: readonly ActionKindName[]) {
  const server = createMcpServer({
    store: undefined,
    now: Date.now,
    staleAfterMs: Infinity,
    log: createLogger({ level: 'silent' }),
    version: 'snapshot',
    ...(kinds ? { caller: callerWith(kinds), actions: ACTIONS } : {}),
  });
  const client = new Client({ name: 'snap', version: '1' });
  const [a, b] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(a), client.connect(b)]);
  const tools = (await client.listTools()).tools;
  await client.close();
  return tools;
}

/** Every tool's snapshot name; the action tools as a caller with every kind sees them. */
const snapshotted = [...allTools, ...actionReadTools, ...actionTools].map((t) => t.name);

describe('tool snapshots', () => {
  it.each(snapshotted)('%s matches its snapshot', async (name) => {
    const readOnly = allTools.some((t) => t.name === name);
    const tool = (await listed(readOnly ? undefined : ACTION_KINDS)).find((t) => t.name === name);
    const text = JSON.stringify(tool, null, 2) + '\n';
    const file = `${DIR}${name}.json`;
    if (updating()) {
      writeFileSync(file, text);
      return;
    }
    expect(existsSync(file), `no snapshot test/mcp/__toolsnaps__/${name}.json. ${HOW}`).toBe(true);
    expect(text, `${name} differs from test/mcp/__toolsnaps__/${name}.json. ${HOW}`).toBe(readFileSync(file, 'utf8'));
  });

  it('every snapshot belongs to a tool', () => {
    const names = new Set(snapshotted.map((n) => `${n}.json`));
    const leftover = readdirSync(DIR).filter((f) => !names.has(f));
    if (updating()) {
      for (const f of leftover) rmSync(`${DIR}${f}`);
      return;
    }
    expect(leftover, `snapshots of tools that no longer exist. ${HOW}`).toEqual([]);
  });

  it('the whole tools/list stays small', async () => {
    const server = createMcpServer({
      store: undefined,
      now: Date.now,
      staleAfterMs: Infinity,
      log: createLogger({ level: 'silent' }),
      version: 'snapshot',
    });
    const client = new Client({ name: 'snap', version: '1' });
    const [a, b] = InMemoryTransport.createLinkedPair();
    await Promise.all([server.connect(a), client.connect(b)]);
    const bytes = JSON.stringify(await client.listTools()).length;
    await client.close();
    expect(bytes).toBeLessThan(12_000); // the 12 KB, read as the smaller 12,000 bytes
  });
});

describe('what a caller is offered', () => {
  it('a read-only caller (no kinds, or no actions context) sees exactly the read tools, byte for byte', async () => {
    const plain = JSON.stringify(await listed());
    expect(JSON.stringify(await listed([]))).toBe(plain);
    expect(plain).not.toMatch(/guest_power|guest_snapshot|list_actions|get_action/);
  });

  it('a caller with start only: guest_power lists start alone, not destructive; no snapshot tool', async () => {
    const tools = await listed(['start']);
    const names = tools.map((t) => t.name);
    expect(names).toContain('list_actions');
    expect(names).toContain('get_action');
    expect(names).not.toContain('guest_snapshot');
    const power = tools.find((t) => t.name === 'guest_power')!;
    expect((power.inputSchema.properties as Record<string, { enum?: string[] }>).action!.enum).toEqual(['start']);
    expect(Object.keys(power.inputSchema.properties!)).not.toContain('timeout');
    expect(power.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: false, openWorldHint: true });
    expect(power.description).not.toMatch(/\bstop\b/);
  });

  it('stop makes guest_power destructive; snapshot delete alone lists delete and force', async () => {
    expect((await listed(['start', 'stop'])).find((t) => t.name === 'guest_power')!.annotations!.destructiveHint).toBe(
      true,
    );
    const snap = (await listed(['snapshot_delete'])).find((t) => t.name === 'guest_snapshot')!;
    expect((snap.inputSchema.properties as Record<string, { enum?: string[] }>).action!.enum).toEqual(['delete']);
    expect(Object.keys(snap.inputSchema.properties!)).toContain('force');
    expect(Object.keys(snap.inputSchema.properties!)).not.toContain('vmstate');
    expect(snap.annotations!.destructiveHint).toBe(true);
  });

  it('every kind listed stays small too (under 20,000 bytes)', async () => {
    expect(JSON.stringify(await listed(ACTION_KINDS)).length).toBeLessThan(20_000);
  });
});
