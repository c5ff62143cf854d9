/**
 * Subscriptions from the config file: loadConfig reads them, syncConfigSubscriptions makes them
 * rows of source `config` in a real inventory file, and the CLI leaves the file's rows to the file.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { runWebhooksRemove, runWebhooksRotateSecret } from '../../src/commands/webhooks.js';
import { loadConfig, type Env } from '../../src/config.js';
import { openStore } from '../../src/store/db.js';
import { addSubscription, listSubscriptions, replayEvents, updateSubscription } from '../../src/store/webhooks.js';
import { insertEvents } from '../../src/store/events.js';
import { syncConfigSubscriptions } from '../../src/webhooks/config-subscriptions.js';
import { generateWebhookSecret } from '../../src/webhooks/secret.js';

const dir = mkdtempSync(join(tmpdir(), 'pi-webhooks-config-'));
const env: Env = {
  PVE_URL: 'https://pve.example.invalid:8006',
  PVE_TOKEN_ID: 'inventory@pve!sync',
  PVE_TOKEN_SECRET: '5f1e2d3c-aaaa-bbbb-cccc-0123456789ab',
  PVE_CLUSTER_NAME: 'prod',
  DATA_DIR: join(dir, 'data'),
};
const store = openStore(join(dir, 'data', 'inventory.db'));
afterAll(() => store.close());

const [secretA, secretB, secretA2] = [generateWebhookSecret(), generateWebhookSecret(), generateWebhookSecret()];

/** The config file with subscription A (secret file a.secret) and, when asked, B. */
function configWith(secretOfA: string, withB: boolean): string {
  writeFileSync(join(dir, 'a.secret'), secretOfA);
  writeFileSync(join(dir, 'b.secret'), secretB);
  const path = join(dir, 'config.yaml');
  writeFileSync(
    path,
    [
      'webhooks:',
      '  subscriptions:',
      '    - { url: "https://a.example.com/hook", events: [guest.*, action.failed], description: team A, secretFile: a.secret }',
      ...(withB
        ? ['    - { url: "https://b.example.com/hook", events: "*", cluster: prod, tag: Web, secretFile: b.secret }']
        : []),
    ].join('\n'),
  );
  return path;
}

const byUrl = () => new Map(listSubscriptions(store).map((row) => [row.url, row]));

describe('syncConfigSubscriptions', () => {
  it('makes the file’s subscriptions rows, keeps them by URL+events+cluster+tag, and leaves CLI rows alone', () => {
    const cli = addSubscription(
      store,
      {
        url: 'https://a.example.com/hook',
        events: ['guest.*', 'action.failed'],
        description: 'added by hand',
        cluster: null,
        tag: null,
        secret: generateWebhookSecret(),
        source: 'cli',
      },
      1_000,
    );
    const first = loadConfig({ env, configPath: configWith(secretA, true), cwd: dir });
    expect(syncConfigSubscriptions(store, first.webhooks.subscriptions, 2_000)).toEqual({
      added: 2,
      updated: 0,
      removed: 0,
    });
    const rows = listSubscriptions(store).filter((row) => row.source === 'config');
    expect(rows.map((r) => [r.url, JSON.parse(r.events), r.cluster, r.tag, r.description, r.secret])).toEqual([
      ['https://a.example.com/hook', ['guest.*', 'action.failed'], null, null, 'team A', secretA],
      ['https://b.example.com/hook', ['*'], 'prod', 'web', null, secretB],
    ]);
    const [a, b] = rows;

    // Unchanged: nothing written. A disabled row stays disabled (a 410 is not undone by a restart).
    updateSubscription(store, b!.id, { enabled: false, disabledReason: 'the receiver answered 410 Gone' }, 2_500);
    expect(syncConfigSubscriptions(store, first.webhooks.subscriptions, 3_000)).toEqual({
      added: 0,
      updated: 0,
      removed: 0,
    });
    expect(byUrl().get('https://b.example.com/hook')).toMatchObject({ id: b!.id, enabled: false });

    // A's secret changed, B gone from the file: A keeps its id (and history) with the new secret,
    // the old one signing through the grace window; B and its deliveries go; the CLI row stays.
    store.write(() =>
      insertEvents(
        store,
        [{ type: 'guest.created', cluster: 'prod', subject: { kind: 'guest', id: 'prod/1' }, data: {} }],
        3_500,
      ),
    );
    const eventId = store.sqlite.prepare('SELECT id FROM events').pluck().get() as string;
    expect(replayEvents(store, b!.id, { eventId }, 3_600)).toHaveLength(1);
    const second = loadConfig({ env, configPath: configWith(secretA2, false), cwd: dir });
    expect(
      syncConfigSubscriptions(store, second.webhooks.subscriptions, 4_000, { rotationGraceMs: 3_600_000 }),
    ).toEqual({ added: 0, updated: 1, removed: 1 });
    const after = listSubscriptions(store);
    expect(after.map((r) => [r.id, r.source])).toEqual([
      [cli.id, 'cli'],
      [a!.id, 'config'],
    ]);
    expect(after[1]).toMatchObject({ secret: secretA2, previousSecret: secretA, previousSecretUntil: 3_604_000 });
    expect(after[0]).toMatchObject({ description: 'added by hand', updatedAt: 1_000 });
    expect(
      store.sqlite.prepare('SELECT count(*) AS n FROM webhook_deliveries WHERE subscription_id = ?').get(b!.id),
    ).toEqual({
      n: 0,
    });

    // Without a grace window the old secret stops at once; an emptied list removes every config row.
    syncConfigSubscriptions(
      store,
      [{ ...second.webhooks.subscriptions[0]!, secret: first.webhooks.subscriptions[0]!.secret }],
      5_000,
    );
    expect(listSubscriptions(store).find((r) => r.source === 'config')).toMatchObject({
      secret: secretA,
      previousSecret: null,
      previousSecretUntil: null,
    });
    expect(syncConfigSubscriptions(store, [], 6_000)).toEqual({ added: 0, updated: 0, removed: 1 });
    expect(listSubscriptions(store).map((r) => r.id)).toEqual([cli.id]);
  });
});

describe('the CLI and config rows', () => {
  it('remove and rotate-secret refuse a row from the config file, saying to change it there', () => {
    const config = loadConfig({ env, configPath: configWith(secretA, true), cwd: dir });
    syncConfigSubscriptions(store, config.webhooks.subscriptions, Date.now());
    const row = listSubscriptions(store).find((r) => r.source === 'config')!;
    Object.assign(process.env, env);
    const stderr: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      stderr.push(String(chunk));
      return true;
    });
    try {
      expect(runWebhooksRemove(undefined, row.id)).toBe(1);
      expect(runWebhooksRotateSecret(undefined, row.id)).toBe(1);
    } finally {
      spy.mockRestore();
    }
    expect(stderr).toEqual([
      `webhooks remove: ${row.id} comes from the config file (webhooks.subscriptions); change it there and restart serve\n`,
      `webhooks rotate-secret: ${row.id} comes from the config file (webhooks.subscriptions); change it there and restart serve\n`,
    ]);
    expect(listSubscriptions(store).find((r) => r.id === row.id)).toMatchObject({ secret: row.secret });
  });
});
