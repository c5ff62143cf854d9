/**
 * The webhook settings and the config file's subscriptions: defaults, the environment over the
 * file, and each mistake named by its variable or key with the fix, never quoting a secret.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, type Env } from '../../src/config.js';
import { EVENT_TYPES } from '../../src/store/events.js';
import { DEFAULT_RETRY_SCHEDULE_MS } from '../../src/webhooks/schedule.js';
import { generateWebhookSecret } from '../../src/webhooks/secret.js';

const dir = mkdtempSync(join(tmpdir(), 'pi-config-webhooks-'));
const base: Env = {
  PVE_URL: 'https://pve1.example.com:8006',
  PVE_TOKEN_ID: 'inventory@pve!sync',
  PVE_TOKEN_SECRET: '5f1e2d3c-aaaa-bbbb-cccc-0123456789ab',
  PVE_CLUSTER_NAME: 'prod',
};
const secret = generateWebhookSecret();
writeFileSync(join(dir, 'hook.secret'), `${secret}\n`);

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function problems(env: Env, configPath?: string): string[] {
  try {
    loadConfig({ env, configPath, cwd: dir });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('webhook settings', () => {
  it('default to the documented values and no subscription', () => {
    expect(loadConfig({ env: base, cwd: dir }).webhooks).toEqual({
      allowCidrs: [],
      allowHttp: false,
      timeoutMs: 15_000,
      schedule: [...DEFAULT_RETRY_SCHEDULE_MS],
      disableAfterMs: 5 * 86_400_000,
      rotationGraceMs: 24 * 3_600_000,
      subscriptions: [],
    });
  });

  it('are read from the environment, over the file', () => {
    const path = file('settings.yaml', 'webhooks: { timeoutSeconds: 60, allowCidrs: [172.16.0.0/12] }\n');
    const { webhooks } = loadConfig({
      env: {
        ...base,
        WEBHOOK_ALLOW_CIDRS: '192.168.1.0/24, fd00::/8,10.0.0.5',
        WEBHOOK_ALLOW_HTTP: 'yes',
        WEBHOOK_TIMEOUT_SECONDS: '30',
        WEBHOOK_RETRY_SCHEDULE: '0, 1s, 2m, 1h',
        WEBHOOK_DISABLE_AFTER_DAYS: '2',
        WEBHOOK_ROTATION_GRACE_HOURS: '0',
      },
      configPath: path,
      cwd: dir,
    });
    expect(webhooks).toMatchObject({
      allowCidrs: ['192.168.1.0/24', 'fd00::/8', '10.0.0.5/32'],
      allowHttp: true,
      timeoutMs: 30_000,
      schedule: [0, 1000, 120_000, 3_600_000],
      disableAfterMs: 2 * 86_400_000,
      rotationGraceMs: 0,
    });
    const fromFile = loadConfig({ env: base, configPath: path, cwd: dir }).webhooks;
    expect(fromFile.timeoutMs).toBe(60_000);
    expect(fromFile.allowCidrs).toEqual(['172.16.0.0/12']);
  });
});

describe('subscriptions in the config file', () => {
  it('are read with their secret from a file next to the config, held as a Secret', () => {
    const path = file(
      'subs.yaml',
      [
        'webhooks:',
        '  allowCidrs: [10.1.2.0/24]',
        '  subscriptions:',
        '    - { url: "https://Hooks.Example.com/p?x=1", events: [guest.*, action.failed], secretFile: hook.secret }',
        '    - url: https://10.1.2.3:8443/hook',
        '      events: "cluster.*"',
        '      cluster: prod',
        '      tag: Web',
        '      description: the LAN receiver',
        '      secretFile: hook.secret',
      ].join('\n'),
    );
    const config = loadConfig({ env: base, configPath: path, cwd: join(tmpdir()) });
    const [first, second] = config.webhooks.subscriptions;
    expect(first).toMatchObject({ url: 'https://hooks.example.com/p?x=1', events: ['guest.*', 'action.failed'] });
    expect(first!.secret.reveal()).toBe(secret);
    expect(second).toMatchObject({
      url: 'https://10.1.2.3:8443/hook',
      events: ['cluster.*'],
      cluster: 'prod',
      tag: 'web',
      description: 'the LAN receiver',
    });
    const printed = JSON.stringify(config) + inspect(config, { depth: 10 });
    expect(printed).not.toContain(secret.slice(6));
  });

  it('each mistake names its key and the fix, and a secret file’s text is never quoted', () => {
    const wrongSecret = 'whsec_not-really-base64-but-a-canary-0123456789';
    writeFileSync(join(dir, 'wrong.secret'), wrongSecret);
    const path = file(
      'bad-subs.yaml',
      [
        'webhooks:',
        '  subscriptions:',
        '    - { url: "https://10.0.0.5/hook", events: [guest.*], secretFile: hook.secret }',
        '    - { url: "http://hooks.example.com/hook", events: [guest.*], secretFile: hook.secret }',
        '    - { url: "https://h.example.com/", events: "gust.*", secretFile: hook.secret }',
        '    - { url: "https://h.example.com/", events: [guest.*] }',
        '    - { url: "https://h.example.com/", events: [guest.*], secretFile: wrong.secret }',
        '    - { url: "https://h.example.com/", events: [guest.*], secretFile: hook.secret, cluster: lab }',
        '    - { url: "https://h.example.com/", events: [guest.*], secret: x }',
        '    - { url: "https://a.example.com/", events: [guest.*, action.*], secretFile: hook.secret }',
        '    - { url: "https://a.example.com/", events: [action.*, guest.*], secretFile: hook.secret }',
        '    - "https://b.example.com/"',
      ].join('\n'),
    );
    const found = problems(base, path);
    const at = (i: number): string => `webhooks.subscriptions[${i}]`;
    expect(found).toEqual([
      `${at(0)}.url: 10.0.0.5 is a private address, which webhooks may not reach; if the receiver is yours, add 10.0.0.5/32 to WEBHOOK_ALLOW_CIDRS`,
      `${at(1)}.url: the webhook URL for hooks.example.com uses plain http; use https, or set WEBHOOK_ALLOW_HTTP=true to send in clear`,
      `${at(2)}.events: "gust.*" matches no event type; the types are ${EVENT_TYPES.join(', ')}`,
      `${at(3)}.secretFile: missing; expected the path of a file holding the subscription's secret (e.g. echo "whsec_$(openssl rand -base64 32)" > hook.secret)`,
      `${at(4)}.secretFile: the file ${join(dir, 'wrong.secret')} does not hold a webhook secret; write whsec_ followed by base64 of 24 to 64 random bytes into it (e.g. echo "whsec_$(openssl rand -base64 32)" > wrong.secret)`,
      `${at(5)}.cluster: "lab" is not a configured cluster; the clusters are prod`,
      `${at(6)}: unknown key "secret"; did you mean "secretFile"?`,
      `${at(6)}.secretFile: missing; expected the path of a file holding the subscription's secret (e.g. echo "whsec_$(openssl rand -base64 32)" > hook.secret)`,
      `${at(8)}: the same url, events, cluster and tag as webhooks.subscriptions[7]; list each subscription once`,
      `${at(9)}: expected a mapping { url, events, secretFile } (and optionally cluster, tag, description)`,
    ]);
    expect(found.join('\n')).not.toContain('canary');
  });

  it('the allowlist and the http opt-in let a LAN receiver in, as they would for `webhooks add`', () => {
    const path = file(
      'lan.yaml',
      'webhooks:\n  allowHttp: true\n  allowCidrs: 10.0.0.0/8\n  subscriptions:\n    - { url: "http://10.0.0.5:9000/h", events: "*", secretFile: hook.secret }\n',
    );
    expect(loadConfig({ env: base, configPath: path, cwd: dir }).webhooks.subscriptions[0]!.url).toBe(
      'http://10.0.0.5:9000/h',
    );
  });
});
