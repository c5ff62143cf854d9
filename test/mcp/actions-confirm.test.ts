/**
 * What keeps a destructive action from running unasked, and a caller within its scope: the plan
 * and its token (bound to the request and the caller, single use, expiring), MCP elicitation for a
 * client that declares it (accept and decline), read-only and narrow callers over stdio-like
 * memory and over real HTTP with labelled bearer tokens, and bad input to every write tool. The
 * simulator's write log proves nothing was sent when nothing should be.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { startMcpHttp, type McpHttpEndpoint } from '../../src/mcp/http.js';
import { createMcpServer } from '../../src/mcp/server.js';
import { Secret } from '../../src/secret.js';
import {
  callerWith,
  connect,
  guestsOf,
  startActionRig,
  writesFor,
  type ActionRig,
  type GuestPick,
} from './actions-support.js';

let rig: ActionRig;
let running: GuestPick;
let other: GuestPick;
const answers: string[] = [];

const actionCount = (): number =>
  (rig.h.store.sqlite.prepare('SELECT count(*) AS n FROM actions').get() as { n: number }).n;

beforeAll(async () => {
  rig = await startActionRig(21);
  const live = guestsOf(rig).filter((g) => g.status === 'running');
  [running, other] = [live[0]!, live[1]!];
}, 60_000);

afterAll(async () => {
  await rig?.close();
});

describe('the plan and its token', () => {
  it('no token: a plan only (name, node, status now → after), nothing queued, nothing sent', async () => {
    const mcp = await connect(rig, { caller: callerWith('alice') });
    const [rows, posts] = [actionCount(), rig.h.sim.writes().length];
    const r = await mcp.call('guest_power', { vmid: running.vmid, action: 'stop' });
    answers.push(r.text);
    expect(r.isError).toBe(false);
    expect(r.structured).toMatchObject({
      outcome: 'confirmation_required',
      plan: { kind: 'stop', vmid: running.vmid, node: running.node, statusNow: 'running', becomes: 'stopped' },
    });
    expect(r.text).toContain(`stop lab/${running.vmid}`);
    expect(r.text).toContain('(running now → stopped)');
    expect(r.text).toContain(`"confirmation": "${r.structured!.confirmation as string}"`);
    expect([actionCount(), rig.h.sim.writes().length]).toEqual([rows, posts]);
    // Only the SHA-256 is stored.
    const stored = JSON.stringify(rig.h.store.sqlite.prepare('SELECT * FROM action_confirmations').all());
    expect(stored).not.toContain(r.structured!.confirmation as string);
    await mcp.client.close();
  });

  it('a changed parameter, another guest, another caller, a reused or an expired token is refused with a fix', async () => {
    const alice = await connect(rig, { caller: callerWith('alice') });
    const bob = await connect(rig, { caller: callerWith('bob') });
    const later = await connect(rig, { caller: callerWith('alice'), now: () => Date.now() + 6 * 60_000 });
    const plan = await alice.call('guest_power', { vmid: running.vmid, action: 'shutdown', timeout: 60 });
    const token = plan.structured!.confirmation as string;
    const [rows, posts] = [actionCount(), rig.h.sim.writes().length];

    const changed = await alice.call('guest_power', {
      vmid: running.vmid,
      action: 'shutdown',
      timeout: 61,
      confirmation: token,
    });
    expect(changed.isError).toBe(true);
    expect(changed.text).toContain('issued for a different request');
    const otherGuest = await alice.call('guest_power', {
      vmid: other.vmid,
      action: 'shutdown',
      timeout: 60,
      confirmation: token,
    });
    expect(otherGuest.text).toContain('issued for a different request');
    const otherKind = await alice.call('guest_power', { vmid: running.vmid, action: 'stop', confirmation: token });
    expect(otherKind.text).toContain('issued for a different request');
    const byBob = await bob.call('guest_power', {
      vmid: running.vmid,
      action: 'shutdown',
      timeout: 60,
      confirmation: token,
    });
    expect(byBob.text).toContain('issued to another caller');
    const expired = await later.call('guest_power', {
      vmid: running.vmid,
      action: 'shutdown',
      timeout: 60,
      confirmation: token,
    });
    expect(expired.text).toContain('has expired (tokens are valid for 5 minutes)');
    const made = await alice.call('guest_power', {
      vmid: running.vmid,
      action: 'shutdown',
      timeout: 60,
      confirmation: 'made-up',
    });
    expect(made.text).toContain('not one this server issued');
    expect([actionCount(), rig.h.sim.writes().length], 'none of those queued or sent anything').toEqual([rows, posts]);
    for (const r of [changed, otherGuest, otherKind, byBob, expired, made]) {
      expect(r.isError).toBe(true);
      expect(r.text).toContain('without "confirmation"');
    }

    // The right request still can use it (a refusal for another request does not spend it), once.
    const ok = await alice.call('guest_power', {
      vmid: running.vmid,
      action: 'shutdown',
      timeout: 60,
      confirmation: token,
      waitSeconds: 20,
    });
    expect(ok.structured!.outcome, ok.text).toBe('queued');
    expect((ok.structured!.action as { state: string }).state).toBe('succeeded');
    const again = await alice.call('guest_power', {
      vmid: running.vmid,
      action: 'shutdown',
      timeout: 60,
      confirmation: token,
    });
    expect(again.isError).toBe(true);
    expect(again.text).toContain('already used');
    expect(writesFor(rig, running.vmid).filter((w) => w.endsWith('/status/shutdown'))).toHaveLength(1);
    answers.push(...[plan, ok, again].map((r) => r.text));
    await Promise.all([alice, bob, later].map((c) => c.client.close()));
  }, 60_000);

  it('a retry with the same idempotency key and token answers the earlier action, not "already used"', async () => {
    const alice = await connect(rig, { caller: callerWith('alice') });
    const args = { vmid: other.vmid, action: 'reboot', idempotencyKey: 'reboot-other-1' };
    const plan = await alice.call('guest_power', args);
    const confirmation = plan.structured!.confirmation as string;
    const first = await alice.call('guest_power', { ...args, confirmation });
    expect(first.structured!.outcome, first.text).toBe('queued');
    // The answer was lost on the way back; the agent sends the very same call again.
    const retry = await alice.call('guest_power', { ...args, confirmation });
    expect(retry.isError, retry.text).toBe(false);
    expect(retry.structured!.outcome).toBe('earlier');
    expect((retry.structured!.action as { id: string }).id).toBe((first.structured!.action as { id: string }).id);
    await alice.client.close();
  }, 30_000);

  it('a non-destructive kind needs no confirmation', async () => {
    const mcp = await connect(rig, { caller: callerWith('alice') });
    const r = await mcp.call('guest_power', { vmid: running.vmid, action: 'start', waitSeconds: 20 });
    expect(r.structured!.outcome, r.text).toBe('queued');
    expect((r.structured!.action as { state: string }).state).toBe('succeeded');
    await mcp.client.close();
  }, 30_000);
});

describe('elicitation', () => {
  it('a client that declares it is asked with the plan: decline and cancel queue nothing, accept queues', async () => {
    const shown: string[] = [];
    let reply: 'accept' | 'decline' | 'cancel' = 'decline';
    const mcp = await connect(rig, {
      caller: callerWith('eve'),
      elicit: (message) => {
        shown.push(message);
        return reply === 'accept' ? { action: 'accept', content: { confirm: true } } : { action: reply };
      },
    });
    const [rows, posts] = [actionCount(), rig.h.sim.writes().length];
    const declined = await mcp.call('guest_power', { vmid: other.vmid, action: 'reboot' });
    expect(declined.structured).toMatchObject({ outcome: 'declined', plan: { kind: 'reboot', vmid: other.vmid } });
    expect(declined.text).toMatch(/^Not queued: the user declined reboot/);
    reply = 'cancel';
    expect((await mcp.call('guest_power', { vmid: other.vmid, action: 'reboot' })).text).toContain(
      'the user cancelled',
    );
    expect([actionCount(), rig.h.sim.writes().length]).toEqual([rows, posts]);
    expect(shown[0]).toContain(`Confirm: reboot lab/${other.vmid}`);
    expect(shown[0]).toContain('(running now → running)');

    reply = 'accept';
    const accepted = await mcp.call('guest_power', { vmid: other.vmid, action: 'reboot', waitSeconds: 20 });
    expect(accepted.structured!.outcome, accepted.text).toBe('queued');
    expect(accepted.structured!.action).toMatchObject({
      state: 'succeeded',
      requestedBy: { transport: 'mcp-stdio', client: 'actions-test 2.1', principal: 'eve' },
    });
    expect(shown).toHaveLength(3);
    // A "yes" without the box ticked is no yes.
    reply = 'accept';
    const unticked = await connect(rig, {
      caller: callerWith('eve'),
      elicit: () => ({ action: 'accept', content: { confirm: false } }),
    });
    expect((await unticked.call('guest_power', { vmid: other.vmid, action: 'stop' })).structured!.outcome).toBe(
      'declined',
    );
    await Promise.all([mcp.client.close(), unticked.client.close()]);
  }, 60_000);
});

describe('scopes', () => {
  it('a read-only caller sees no write or action tool, and calling one is refused naming its scope', async () => {
    const mcp = await connect(rig, { caller: callerWith('reader', []) });
    const names = (await mcp.client.listTools()).tools.map((t) => t.name);
    expect(names).not.toContain('guest_power');
    expect(names).not.toContain('list_actions');
    const r = await mcp.call('guest_power', { vmid: running.vmid, action: 'start' });
    expect(r.isError).toBe(true);
    expect(r.text).toBe(
      'guest_power is not offered: the scope of reader allows no action (read-only); an operator can add power to it.',
    );
    await mcp.client.close();
  });

  it('a server without actions says how to enable them', async () => {
    const mcp = await connect(rig, { caller: undefined, actions: undefined });
    const r = await mcp.call('guest_snapshot', { vmid: running.vmid, action: 'create', name: 'x1' });
    expect(r.text).toContain(
      'actions are off on this server; an operator enables them with ACTIONS (e.g. ACTIONS=snapshot)',
    );
    await mcp.client.close();
  });

  it('a kind outside the scope is refused naming the scope; a tool of another group is not offered', async () => {
    const mcp = await connect(rig, { caller: callerWith('carol', ['start']) });
    const posts = rig.h.sim.writes().length;
    const r = await mcp.call('guest_power', { vmid: running.vmid, action: 'stop' });
    expect(r.isError).toBe(true);
    expect(r.text).toContain('stop is outside the scope of "carol", which may ask for start.');
    expect((await mcp.call('guest_snapshot', { vmid: running.vmid, action: 'create', name: 'x1' })).text).toContain(
      'the scope of carol allows start; an operator can add snapshot to it',
    );
    expect(rig.h.sim.writes().length).toBe(posts);
    await mcp.client.close();
  });
});

describe('over HTTP: labelled bearer tokens', () => {
  const OPS = 'ops-token-0123456789abcdef';
  const READER = 'reader-token-0123456789abcdef';
  let endpoint: McpHttpEndpoint;
  let open: McpHttpEndpoint;

  beforeAll(async () => {
    const deps = {
      createServer: (caller: Parameters<typeof createMcpServer>[0]['caller']) =>
        createMcpServer({
          store: rig.h.store,
          now: Date.now,
          staleAfterMs: Infinity,
          log: createLogger({ level: 'silent' }),
          version: 'test',
          caller,
          actions: rig.actions,
        }),
      readiness: () => ({ ready: true, clusters: [] }),
      log: createLogger({ level: 'silent' }),
    };
    const base = {
      host: '127.0.0.1',
      port: 0,
      token: undefined,
      allowedOrigins: [],
      allowedHosts: [],
      maxBodyBytes: 65536,
    };
    endpoint = await startMcpHttp(
      {
        ...base,
        tokens: [
          { label: 'ops', token: new Secret(OPS), kinds: ['start', 'stop'] },
          { label: 'reader', token: new Secret(READER), kinds: [] },
        ],
      },
      deps,
    );
    open = await startMcpHttp(base, deps);
  });

  afterAll(async () => {
    await endpoint?.close();
    await open?.close();
  });

  async function httpClient(url: string, token?: string): Promise<Client> {
    const client = new Client({ name: 'http-test', version: '1' });
    const headers: Record<string, string> = {
      'user-agent': 'ops-agent/1.4',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    };
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
    return client;
  }
  const text = (r: unknown): string => ((r as CallToolResult).content[0] as { text: string }).text;

  it('the reader token lists no write tool and is refused; the ops token lists its kinds only', async () => {
    const reader = await httpClient(endpoint.url, READER);
    const readerNames = (await reader.listTools()).tools.map((t) => t.name);
    expect(readerNames).not.toContain('guest_power');
    const refused = text(
      await reader.callTool({ name: 'guest_power', arguments: { vmid: running.vmid, action: 'start' } }),
    );
    expect(refused).toContain('the scope of reader allows no action (read-only)');
    expect(refused).toContain('over HTTP, actions need a bearer token whose scope names them');
    const ops = await httpClient(endpoint.url, OPS);
    const power = (await ops.listTools()).tools.find((t) => t.name === 'guest_power')!;
    expect((power.inputSchema.properties as Record<string, { enum: string[] }>).action!.enum).toEqual([
      'start',
      'stop',
    ]);
    expect((await ops.listTools()).tools.map((t) => t.name)).not.toContain('guest_snapshot');
    await Promise.all([reader.close(), ops.close()]);
  });

  it('no token on a server without tokens: "loopback", read-only', async () => {
    const client = await httpClient(open.url);
    expect((await client.listTools()).tools.map((t) => t.name)).not.toContain('guest_power');
    expect(
      text(await client.callTool({ name: 'guest_power', arguments: { vmid: running.vmid, action: 'start' } })),
    ).toContain('the scope of loopback allows no action');
    await client.close();
  });

  it('a stop over HTTP: a plan and token (no elicitation on the stateless endpoint), then queued under the label, never the token', async () => {
    const ops = await httpClient(endpoint.url, OPS);
    const posts = rig.h.sim.writes().length;
    const plan = (await ops.callTool({
      name: 'guest_power',
      arguments: { vmid: other.vmid, action: 'stop' },
    })) as CallToolResult;
    expect(plan.structuredContent).toMatchObject({ outcome: 'confirmation_required' });
    expect(rig.h.sim.writes().length).toBe(posts);
    const done = (await ops.callTool({
      name: 'guest_power',
      arguments: {
        vmid: other.vmid,
        action: 'stop',
        confirmation: plan.structuredContent!.confirmation,
        waitSeconds: 20,
      },
    })) as CallToolResult;
    expect(done.structuredContent!.action).toMatchObject({
      state: 'succeeded',
      // The stateless endpoint never sees the client's initialize: its User-Agent names it.
      requestedBy: { transport: 'mcp-http', client: 'ops-agent/1.4', principal: 'ops' },
    });
    answers.push(text(plan), text(done), JSON.stringify(done.structuredContent));
    const rows = JSON.stringify(rig.h.store.sqlite.prepare('SELECT * FROM actions').all());
    for (const secret of [OPS, READER, rig.h.sim.tokens.full.secret]) {
      expect(rows).not.toContain(secret);
      expect(answers.join('\n')).not.toContain(secret);
    }
    await ops.close();
  }, 30_000);
});

describe('bad input to every write tool', () => {
  it('random arguments never throw past the server, never show a stack, and queue nothing when refused', async () => {
    const mcp = await connect(rig, { caller: callerWith('fuzz') });
    const vmids = guestsOf(rig).map((g) => g.vmid);
    const junk = fc.oneof(
      fc.jsonValue(),
      fc.string({ maxLength: 200 }),
      fc.constantFrom('', ' ', 'stop', 'create', 'current', '1e3', 'NaN', '-1', '../x', 'a'.repeat(300), '\u202e'),
      fc.constantFrom(...vmids),
      fc.integer(),
      fc.boolean(),
    );
    const keys = [
      'vmid',
      'cluster',
      'action',
      'name',
      'timeout',
      'forceStop',
      'todisk',
      'description',
      'vmstate',
      'start',
      'force',
      'idempotencyKey',
      'waitSeconds',
      'confirmation',
    ];
    const key = fc.oneof(
      { arbitrary: fc.constantFrom(...keys), weight: 8 },
      { arbitrary: fc.string({ maxLength: 12 }), weight: 1 },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('guest_power', 'guest_snapshot'),
        fc.dictionary(key, junk, { maxKeys: 6 }),
        async (tool, args) => {
          const before = actionCount();
          const r = await mcp.call(tool, { ...args, waitSeconds: 0 });
          expect(r.text).not.toMatch(/\n\s+at /);
          expect(r.text).not.toContain(rig.h.sim.tokens.full.secret);
          if (r.isError) expect(actionCount()).toBe(before);
          else expect(['queued', 'earlier', 'confirmation_required']).toContain(r.structured!.outcome);
        },
      ),
      { numRuns: 150 },
    );
    await mcp.client.close();
  }, 120_000);
});
