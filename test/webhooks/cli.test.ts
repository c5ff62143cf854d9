/**
 * `proxmox-inventory webhooks …` end to end, as an operator runs it: against a real inventory in a
 * temporary DATA_DIR, receivers on loopback (reached through the allowlist) verifying with the
 * standardwebhooks package, and the rows read back from the SQLite file. The CLI is spawned where
 * its parsing and exit status matter; the rest calls the command functions in this process with
 * the same environment (a spawn costs seconds on a loaded machine), capturing what they print.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import {
  runWebhooksAdd,
  runWebhooksDeliveries,
  runWebhooksList,
  runWebhooksRemove,
  runWebhooksReplay,
  runWebhooksRotateSecret,
  runWebhooksSetEnabled,
  runWebhooksShow,
  runWebhooksTest,
  type AddOptions,
} from '../../src/commands/webhooks.js';
import { openStore } from '../../src/store/db.js';
import { EVENT_TYPES, insertEvents } from '../../src/store/events.js';
import { generateWebhookSecret } from '../../src/webhooks/secret.js';
import { answer, startReceiver, type Receiver, type Respond } from './receiver.js';

const CLI = ['--import', 'tsx', 'src/cli.ts'];
const dir = mkdtempSync(join(tmpdir(), 'pi-webhooks-cli-'));
const dataDir = join(dir, 'data');
const env: Record<string, string> = {
  PVE_URL: 'https://pve.example.invalid:8006',
  PVE_TOKEN_ID: 'inventory@pve!sync',
  PVE_TOKEN_SECRET: '5f1e2d3c-aaaa-bbbb-cccc-0123456789ab',
  PVE_CLUSTER_NAME: 'prod',
  DATA_DIR: dataDir,
  WEBHOOK_ALLOW_CIDRS: '127.0.0.1/32',
};

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Every output of every run, to look for secrets in afterwards. */
const transcript: Run[] = [];

function cli(args: string[], extra: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...CLI, 'webhooks', ...args], {
      env: { PATH: process.env.PATH ?? '', ...env, ...extra },
      cwd: process.cwd(),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (code) => {
      const run = { code, stdout, stderr };
      transcript.push(run);
      resolve(run);
    });
  });
}

/** A command function run here, with `env` (and `extra`) as the environment and its output captured. */
async function call(fn: () => number | Promise<number>, extra: Record<string, string> = {}): Promise<Run> {
  const vars = { ...env, ...extra };
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  let stdout = '';
  let stderr = '';
  const capture = (add: (text: string) => void) => (chunk: string | Uint8Array) => {
    add(String(chunk));
    return true;
  };
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(capture((t) => (stdout += t)));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(capture((t) => (stderr += t)));
  try {
    const code = await fn();
    const run = { code, stdout, stderr };
    transcript.push(run);
    return run;
  } finally {
    out.mockRestore();
    err.mockRestore();
    for (const [k, v] of Object.entries(saved))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  }
}

const receivers: Receiver[] = [];
afterEach(async () => {
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

async function receiver(respond: Respond): Promise<Receiver> {
  const started = await startReceiver(respond);
  receivers.push(started);
  return started;
}

/** 204 when every secret given verifies the request (standardwebhooks, as a subscriber would), 401 otherwise. */
const verifying =
  (...secrets: string[]): Respond =>
  (request, response) => {
    const ok = secrets.every((secret) => {
      try {
        new Webhook(secret).verify(request.body, request.headers as Record<string, string>);
        return true;
      } catch {
        return false;
      }
    });
    response.writeHead(ok ? 204 : 401).end(ok ? '' : 'bad signature');
  };

function db<T>(fn: (sqlite: Database.Database) => T): T {
  const sqlite = new Database(join(dataDir, 'inventory.db'), { readonly: true });
  try {
    return fn(sqlite);
  } finally {
    sqlite.close();
  }
}

interface Row {
  id: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_until: number | null;
  enabled: number;
  disabled_reason: string | null;
  source: string;
}
const row = (id: string): Row | undefined =>
  db((s) => s.prepare('SELECT * FROM webhook_subscriptions WHERE id = ?').get(id) as Row | undefined);

const ADDED = /^(wh_[0-9a-z]{26}) added: .*\nsecret: (whsec_[A-Za-z0-9+/=]+)\n$/;
const secretsSeen: string[] = [];

/** `webhooks add` in this process: the id and the secret it printed. */
async function add(url: string, o: Omit<AddOptions, 'url'>): Promise<{ id: string; secret: string; run: Run }> {
  const run = await call(() => runWebhooksAdd(undefined, { url, ...o }));
  expect(run.code, run.stderr).toBe(0);
  const [, id, secret] = ADDED.exec(run.stdout)!;
  secretsSeen.push(secret!);
  return { id: id!, secret: secret!, run };
}

const count = (table: string): number =>
  db((s) => (s.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n);

afterAll(() => {
  // A secret is on stdout exactly once (when made), never on stderr, in no other output.
  expect(secretsSeen.length).toBeGreaterThan(5);
  for (const secret of secretsSeen) {
    const body = secret.slice('whsec_'.length);
    expect(transcript.filter((r) => r.stdout.includes(body)).length, secret).toBe(1);
    expect(transcript.some((r) => r.stderr.includes(body))).toBe(false);
  }
});

describe('the command line', () => {
  it('add prints the generated secret once with a warning; list never shows it; mistakes exit 2 naming the fix', async () => {
    const added = await cli([
      'add',
      'https://hooks.example.com/proxmox?token=abc',
      '--events',
      'guest.*, action.failed',
      '--cluster',
      'prod',
      '--tag',
      'Web',
      '--description',
      'the team receiver',
    ]);
    expect(added.code, added.stderr).toBe(0);
    const [, id, secret] = ADDED.exec(added.stdout)!;
    secretsSeen.push(secret!);
    expect(added.stdout.split('\n')[0]).toBe(
      `${id} added: guest.*, action.failed (cluster prod, tag web) → https://hooks.example.com/proxmox?token=abc`,
    );
    expect(added.stderr).toBe(
      `webhooks: store this secret now (it was generated for this subscription); it is not shown again. Receivers verify the webhook-signature header with it; \`webhooks rotate-secret ${id}\` makes a new one.\n`,
    );
    expect(row(id!)).toMatchObject({ secret, source: 'cli', enabled: 1 });

    const [list, refused, replay] = await Promise.all([
      cli(['list']),
      cli(['add', 'https://10.0.0.5/hook', '--events', 'guest.*']),
      cli(['replay', id!]),
    ]);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(
      `${id}  cli  guest.*, action.failed (cluster prod, tag web) → https://hooks.example.com/proxmox?token=abc  enabled; no success yet  "the team receiver"`,
    );
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe(
      'webhooks add: 10.0.0.5 is a private address, which webhooks may not reach; if the receiver is yours, add 10.0.0.5/32 to WEBHOOK_ALLOW_CIDRS\n',
    );
    expect(replay.code).toBe(2);
    expect(replay.stderr.split('\n')[0]).toBe(
      'webhooks replay: give either --since TIME (every matching event since then) or --event EVT (one event by id)',
    );
  }, 120_000);
});

describe('webhooks add, list, show', () => {
  it('show gives the row without either secret, with its deliveries counted', async () => {
    const { id } = await add('https://show.example.com/', { events: 'guest.*', cluster: 'prod', tag: 'Web' });
    const show = await call(() => runWebhooksShow(undefined, id));
    expect(show.code).toBe(0);
    const shown = JSON.parse(show.stdout) as Record<string, unknown>;
    expect(shown).toMatchObject({
      id,
      url: 'https://show.example.com/',
      events: ['guest.*'],
      cluster: 'prod',
      tag: 'web',
      enabled: true,
      source: 'cli',
      previousSecretSignsUntil: null,
      deliveries: { pending: 0, succeeded: 0, failed: 0 },
    });
    expect(Object.keys(shown)).not.toContain('secret');
    expect(Object.keys(shown)).not.toContain('previousSecret');
    expect((await call(() => runWebhooksList(undefined))).stdout).toContain(
      `${id}  cli  guest.* (cluster prod, tag web)`,
    );
  });

  it('the same subscription twice is refused, naming the first', async () => {
    const { id } = await add('https://twice.example.com/', { events: 'guest.created' });
    const again = await call(() =>
      runWebhooksAdd(undefined, { url: 'https://twice.example.com/', events: 'guest.created' }),
    );
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(
      `webhooks add: ${id} already sends these events to this URL with the same filters; \`webhooks show ${id}\` shows it\n`,
    );
  });

  it('a private address, http without the opt-in, an unknown event or cluster are refused naming the fix; nothing is written', async () => {
    const before = count('webhook_subscriptions');
    const cases: Array<[AddOptions, string]> = [
      [
        { url: 'https://169.254.169.254/latest', events: 'guest.*' },
        'webhooks add: 169.254.169.254 is a link-local address, which webhooks may not reach; if the receiver is yours, add 169.254.169.254/32 to WEBHOOK_ALLOW_CIDRS',
      ],
      [
        { url: 'https://[::ffff:10.0.0.1]/', events: 'guest.*' },
        'webhooks add: ::ffff:a00:1 is a private address, which webhooks may not reach; if the receiver is yours, add ::ffff:a00:1/128 to WEBHOOK_ALLOW_CIDRS',
      ],
      [
        { url: 'http://hooks.example.com/hook', events: 'guest.*' },
        'webhooks add: the webhook URL for hooks.example.com uses plain http; use https, or set WEBHOOK_ALLOW_HTTP=true to send in clear',
      ],
      [
        { url: 'https://user:pw@hooks.example.com/', events: 'guest.*' },
        'webhooks add: the webhook URL for hooks.example.com has a user name or password in it; remove it (receivers check the signature instead)',
      ],
      [
        { url: 'https://hooks.example.com/', events: 'gust.*' },
        `webhooks add: --events: "gust.*" matches no event type; the types are ${EVENT_TYPES.join(', ')}`,
      ],
      [
        { url: 'https://hooks.example.com/', events: undefined },
        "webhooks add: --events is required: the event types or globs to send, e.g. --events 'guest.*,action.failed'",
      ],
      [
        { url: 'https://hooks.example.com/', events: 'guest.*', cluster: 'lab' },
        'webhooks add: --cluster: "lab" is not a configured cluster; the clusters are prod',
      ],
      [
        { url: 'https://hooks.example.com/', events: 'guest.*', secretFile: join(dir, 'missing.secret') },
        `webhooks add: --secret-file: cannot read ${join(dir, 'missing.secret')} (ENOENT); check the path and its permissions`,
      ],
    ];
    for (const [options, message] of cases) {
      const run = await call(() => runWebhooksAdd(undefined, options));
      expect(run.stderr).toBe(`${message}\n`);
      expect(run.code).toBe(2);
    }
    // The opt-in lets plain http through.
    const http = await call(
      () => runWebhooksAdd(undefined, { url: 'http://hooks.example.com/hook', events: 'guest.*' }),
      {
        WEBHOOK_ALLOW_HTTP: 'true',
      },
    );
    expect(http.code).toBe(0);
    secretsSeen.push(ADDED.exec(http.stdout)![2]!);
    expect(count('webhook_subscriptions')).toBe(before + 1);
  });

  it('--secret-file: a given secret is used and not printed; a wrong one is refused without quoting it', async () => {
    const given = generateWebhookSecret();
    writeFileSync(join(dir, 'given.secret'), `${given}\n`);
    const run = await call(() =>
      runWebhooksAdd(undefined, {
        url: 'https://given.example.com/',
        events: '*',
        secretFile: join(dir, 'given.secret'),
      }),
    );
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^wh_\w{26} added: \* → https:\/\/given\.example\.com\/\n$/);
    expect(run.stderr).toBe('');
    expect(row(run.stdout.slice(0, 29))!.secret).toBe(given);

    writeFileSync(join(dir, 'canary.secret'), 'whsec_canary-canary-canary');
    const wrong = await call(() =>
      runWebhooksAdd(undefined, { url: 'https://w.example.com/', events: '*', secretFile: join(dir, 'canary.secret') }),
    );
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toBe(
      `webhooks add: --secret-file ${join(dir, 'canary.secret')}: the webhook secret is not base64 after whsec_; give whsec_ followed by base64 of 24 to 64 random bytes, or leave it out to have one generated\n`,
    );
  });
});

describe('webhooks test and rotate-secret', () => {
  it('test sends one signed webhook.test the standardwebhooks package verifies, outside the queue', async () => {
    let current = '';
    const target = await receiver((request, response) => verifying(current)(request, response));
    const { id, secret } = await add(target.url, { events: 'guest.*' });
    current = secret;
    const deliveriesBefore = count('webhook_deliveries');
    const run = await call(() => runWebhooksTest(undefined, id));
    expect(run.stdout).toMatch(new RegExp(`^${id} test evt_[0-9a-f]{32}: delivered \\(HTTP 204\\) in \\d+ ms\\n$`));
    expect(run.code).toBe(0);
    expect(target.received).toHaveLength(1);
    const body = JSON.parse(target.received[0]!.body) as Record<string, unknown>;
    expect(body).toMatchObject({ version: 1, type: 'webhook.test', seq: 0, subject: { kind: 'webhook', id } });
    expect(target.received[0]!.headers['webhook-id']).toBe(body.id);
    expect(target.received[0]!.headers['user-agent']).toMatch(/^proxmox-inventory\//);
    // Not through the queue: no delivery row, the subscription's health untouched.
    expect(count('webhook_deliveries')).toBe(deliveriesBefore);
    expect(row(id)).toMatchObject({ enabled: 1 });
  });

  it('test reports a receiver that answers 410, or one the allowlist does not cover, with exit 1', async () => {
    const gone = await receiver(answer(410, {}, 'gone for good'));
    const { id } = await add(gone.url, { events: 'guest.*' });
    const run = await call(() => runWebhooksTest(undefined, id));
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(
      /: gone \(HTTP 410\) after \d+ ms: the receiver answered 410 Gone\nanswer: "gone for good"\n$/,
    );

    const unlisted = await call(() => runWebhooksTest(undefined, id), { WEBHOOK_ALLOW_CIDRS: '' });
    expect(unlisted.code).toBe(1);
    expect(unlisted.stdout).toMatch(
      /: refused after \d+ ms: 127\.0\.0\.1 is a loopback address, which webhooks may not reach; if the receiver is yours, add 127\.0\.0\.1\/32 to WEBHOOK_ALLOW_CIDRS\.\n$/,
    );
    expect(gone.connections).toBe(1); // the refused attempt never connected
  });

  it('rotate-secret prints the new secret once; the old one signs too for the grace window', async () => {
    let accepted: string[] = [];
    const target = await receiver((request, response) => verifying(...accepted)(request, response));
    const { id, secret: old } = await add(target.url, { events: 'guest.*' });
    const started = Date.now();
    const run = await call(() => runWebhooksRotateSecret(undefined, id));
    expect(run.code).toBe(0);
    const [, until, fresh] = new RegExp(
      `^${id}: new secret; the old one also signs every message until (\\S+) \\(WEBHOOK_ROTATION_GRACE_HOURS\\)\\nsecret: (whsec_\\S+)\\n$`,
    ).exec(run.stdout)!;
    secretsSeen.push(fresh!);
    expect(run.stderr).toContain('store this secret now (the new one); it is not shown again');
    expect(fresh).not.toBe(old);
    const stored = row(id)!;
    expect(stored).toMatchObject({ secret: fresh, previous_secret: old });
    expect(stored.previous_secret_until).toBe(Date.parse(until!));
    expect(stored.previous_secret_until! - started).toBeGreaterThanOrEqual(24 * 3_600_000);
    expect(stored.previous_secret_until! - started).toBeLessThan(24 * 3_600_000 + 30_000);
    const show = JSON.parse((await call(() => runWebhooksShow(undefined, id))).stdout) as Record<string, unknown>;
    expect(show.previousSecretSignsUntil).toBe(until);

    // Both verify the same request: a receiver still on the old secret loses nothing.
    accepted = [old, fresh!];
    expect((await call(() => runWebhooksTest(undefined, id))).code).toBe(0);
    expect(target.received[0]!.headers['webhook-signature']).toMatch(/^v1,\S+ v1,\S+$/);

    const noGrace = await call(() => runWebhooksRotateSecret(undefined, id), { WEBHOOK_ROTATION_GRACE_HOURS: '0' });
    const newest = /secret: (whsec_\S+)/.exec(noGrace.stdout)![1]!;
    secretsSeen.push(newest);
    expect(noGrace.stdout).toContain('the old one no longer signs (WEBHOOK_ROTATION_GRACE_HOURS is 0)');
    expect(row(id)).toMatchObject({ secret: newest, previous_secret: null, previous_secret_until: null });
  });
});

describe('webhooks replay, deliveries, disable, enable, remove', () => {
  it('replay --since makes deliveries of the matching past events, --event one by id; deliveries lists them', async () => {
    const { id } = await add('https://replay.example.com/', { events: 'guest.*', cluster: 'prod' });
    const store = openStore(join(dataDir, 'inventory.db'));
    const guest = (vmid: number) => ({ kind: 'guest' as const, id: `prod/${vmid}` });
    store.write(() =>
      insertEvents(
        store,
        [
          { type: 'guest.created', cluster: 'prod', subject: guest(101), data: { vmid: 101 } },
          { type: 'node.status_changed', cluster: 'prod', subject: { kind: 'node', id: 'prod/pve1' }, data: {} },
          { type: 'guest.deleted', cluster: 'prod', subject: guest(102), data: { vmid: 102 } },
          { type: 'guest.deleted', cluster: 'other', subject: { kind: 'guest', id: 'other/7' }, data: {} },
        ],
        Date.now() - 60_000,
      ),
    );
    const ids = store.sqlite.prepare('SELECT id, type FROM events ORDER BY seq').all() as Array<{
      id: string;
      type: string;
    }>;
    store.close();

    const replay = await call(() => runWebhooksReplay(undefined, id, { since: Date.now() - 600_000 }));
    expect(replay.stdout).toBe(`2 deliveries queued for ${id}; a running serve sends them within 30 s\n`);
    const made = db(
      (s) =>
        s
          .prepare(
            'SELECT event_id, event_type, state FROM webhook_deliveries WHERE subscription_id = ? ORDER BY event_seq',
          )
          .all(id) as Array<{ event_id: string; event_type: string; state: string }>,
    );
    expect(made).toEqual([
      { event_id: ids[0]!.id, event_type: 'guest.created', state: 'pending' },
      { event_id: ids[2]!.id, event_type: 'guest.deleted', state: 'pending' },
    ]);

    const node = ids.find((e) => e.type === 'node.status_changed')!.id;
    expect((await call(() => runWebhooksReplay(undefined, id, { eventId: node }))).stdout).toBe(
      `1 delivery queued for ${id}; a running serve sends them within 30 s\n`,
    );
    const listed = await call(() => runWebhooksDeliveries(undefined, { id, failed: false, limit: 50 }));
    expect(listed.stdout.trim().split('\n')).toHaveLength(3);
    expect(listed.stdout).toMatch(
      new RegExp(`^msg_\\w{26}  pending  +\\S+  node\\.status_changed  ${node}  attempts 0  next \\S+$`, 'm'),
    );
    const all = await call(() => runWebhooksDeliveries(undefined, { failed: false, limit: 50 }));
    expect(all.stdout).toContain(`  ${id}  guest.created  ${ids[0]!.id}`); // without an id, each line names its subscription
    expect((await call(() => runWebhooksDeliveries(undefined, { failed: true, limit: 50 }))).stdout).toBe(
      'no failed deliveries\n',
    );
    expect((await call(() => runWebhooksShow(undefined, id))).stdout).toContain('"pending": 3');

    const missing = await call(() => runWebhooksReplay(undefined, id, { eventId: 'evt_0000' }));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^webhooks replay: no event evt_0000 in the history/);
  });

  it('disable and enable keep the row; remove takes it and its deliveries; unknown ids are named', async () => {
    const { id } = await add('https://toggle.example.com/', { events: 'guest.*' });
    await call(() => runWebhooksReplay(undefined, id, { since: 0 }));
    expect((await call(() => runWebhooksSetEnabled(undefined, id, false))).stdout).toBe(
      `${id} disabled; events are not relayed to it until \`webhooks enable ${id}\`\n`,
    );
    expect(row(id)).toMatchObject({
      enabled: 0,
      disabled_reason: expect.stringMatching(/^disabled by local:\S+ from the command line$/),
    });
    expect((await call(() => runWebhooksList(undefined))).stdout).toMatch(
      new RegExp(`^${id} .* disabled \\(disabled by local:\\S+ from the command line\\)`, 'm'),
    );
    // Again: said as nothing changed (it printed the change again), the reason kept.
    expect((await call(() => runWebhooksSetEnabled(undefined, id, false))).stdout).toMatch(
      new RegExp(`^${id} is already disabled \\(disabled by local:\\S+ from the command line\\); nothing changed\n$`),
    );
    expect((await call(() => runWebhooksSetEnabled(undefined, id, true))).code).toBe(0);
    expect(row(id)).toMatchObject({ enabled: 1, disabled_reason: null });
    expect((await call(() => runWebhooksSetEnabled(undefined, id, true))).stdout).toBe(
      `${id} is already enabled; nothing changed\n`,
    );
    const deliveries = (): number =>
      db(
        (s) =>
          (s.prepare('SELECT count(*) AS n FROM webhook_deliveries WHERE subscription_id = ?').get(id) as { n: number })
            .n,
      );
    expect(deliveries()).toBeGreaterThan(0);
    expect((await call(() => runWebhooksRemove(undefined, id))).stdout).toBe(
      `${id} removed, with its delivery history\n`,
    );
    expect(row(id)).toBeUndefined();
    expect(deliveries()).toBe(0);
    const unknown = await call(() => runWebhooksShow(undefined, id));
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe(`webhooks show: no subscription ${id}; \`webhooks list\` shows them\n`);
  });
});
