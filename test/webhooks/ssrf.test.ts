import { lookup } from 'node:dns/promises';
import { generate } from 'selfsigned';
import type { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliver } from '../../src/webhooks/deliver.js';
import { generateWebhookSecret } from '../../src/webhooks/secret.js';
import {
  checkWebhookUrl,
  createAddressPolicy,
  createWebhookAgent,
  WebhookTargetRefused,
  WebhookUrlError,
  type Resolve,
} from '../../src/webhooks/ssrf.js';
import { answer, startReceiver, type Receiver } from './receiver.js';

const secret = generateWebhookSecret();

/** A stand-in for DNS: names an attacker controls, answering private addresses. */
const ZONE: Record<string, string[]> = {
  'private.attacker.test': ['10.1.2.3'],
  'rfc1918-172.attacker.test': ['172.20.0.5'],
  'home.attacker.test': ['192.168.178.1'],
  'metadata.attacker.test': ['169.254.169.254'],
  'loopback.attacker.test': ['127.0.0.1'],
  'loopback6.attacker.test': ['::1'],
  'mapped.attacker.test': ['::ffff:127.0.0.1'],
  'cgnat.attacker.test': ['100.64.0.1'],
  'ula.attacker.test': ['fd00::1'],
  'zero.attacker.test': ['0.0.0.0'],
  // One public answer does not make the private one safe: which one a connection uses is not ours.
  'mixed.attacker.test': ['93.184.215.14', '127.0.0.1'],
};

const testResolve: Resolve = async (hostname) =>
  ZONE[hostname] ?? (await lookup(hostname, { all: true, verbatim: true })).map((entry) => entry.address);

function send(url: string, agent: Agent) {
  return deliver({ url, body: '{}', id: 'evt_1', timestamp: Math.floor(Date.now() / 1000), secrets: [secret], agent });
}

describe('the SSRF corpus, refused at connect', () => {
  // One listener on every local address (dual-stack ::, else 0.0.0.0): any target that reaches this
  // machine on the port, through whatever spelling, is counted here.
  let listener: Receiver;
  let agent: Agent;
  const refusals: WebhookTargetRefused[] = [];

  beforeAll(async () => {
    listener = await startReceiver(answer(200), '::').catch(() => startReceiver(answer(200), '0.0.0.0'));
    agent = createWebhookAgent({
      policy: createAddressPolicy(),
      resolve: testResolve,
      onRefused: (refused) => refusals.push(refused),
      connectTimeoutMs: 1_000,
    });
  });
  afterAll(async () => {
    await agent.close();
    await listener.close();
  });

  const hosts = [
    // IPv4 loopback in every spelling the URL parser turns into 127.0.0.1
    '127.0.0.1',
    '127.1',
    '127.0.1',
    '2130706433',
    '017700000001',
    '0x7f000001',
    '0x7f.1',
    '0177.0.0.1',
    '0x7f.0x0.0x0.0x1',
    '127.255.255.254',
    // names for this machine
    'localhost',
    'localhost.',
    'LOCALHOST',
    'app.localhost',
    // IPv6 loopback and IPv4 inside IPv6
    '[::1]',
    '[0:0:0:0:0:0:0:1]',
    '[::ffff:127.0.0.1]',
    '[::ffff:7f00:1]',
    '[0:0:0:0:0:ffff:127.0.0.1]',
    '[::127.0.0.1]',
    '[::ffff:0:7f00:1]',
    '[64:ff9b::7f00:1]',
    '[2002:7f00:1::]',
    // unspecified
    '0.0.0.0',
    '0',
    '[::]',
    // RFC 1918, link-local and cloud metadata, CGNAT
    '10.0.0.1',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '169.254.0.1',
    '[::ffff:169.254.169.254]',
    '[::ffff:a9fe:a9fe]',
    '[::ffff:10.0.0.1]',
    '100.64.0.1',
    '100.127.255.254',
    // multicast, broadcast, reserved
    '224.0.0.1',
    '239.255.255.250',
    '255.255.255.255',
    '240.0.0.1',
    '192.0.0.8',
    // IPv6 unique-local, link-local, multicast
    '[fd00::1]',
    '[fc00::1]',
    '[fe80::1]',
    '[ff02::1]',
    // names resolving to private addresses
    ...Object.keys(ZONE),
  ];

  it(`refuses all ${hosts.length} targets before a connection, none reaches the listener`, async () => {
    expect(hosts.length).toBeGreaterThanOrEqual(40);
    const outcomes = [];
    for (const host of hosts) {
      const outcome = await send(`http://${host}:${listener.port}/hook`, agent);
      outcomes.push({ host, kind: outcome.kind, error: outcome.error });
    }
    const httpsOutcome = await send(`https://127.0.0.1:${listener.port}/hook`, agent);

    expect(outcomes.filter((o) => o.kind !== 'refused')).toEqual([]);
    expect(httpsOutcome.kind).toBe('refused');
    expect(refusals).toHaveLength(hosts.length + 1);
    expect(listener.connections).toBe(0);
    expect(listener.received).toHaveLength(0);
    expect(outcomes.find((o) => o.host === '169.254.169.254')?.error).toBe(
      '169.254.169.254 is a link-local address, which webhooks may not reach; if the receiver is yours, add 169.254.169.254/32 to WEBHOOK_ALLOW_CIDRS.',
    );
    // 0.0.0.0 names no receiver and reaches this host on Linux: allowlisting it is never the advice.
    expect(outcomes.find((o) => o.host === '0.0.0.0')?.error).toBe(
      "0.0.0.0 is an unspecified address, which webhooks may not reach; name the receiver's own address or host name instead.",
    );
    expect(outcomes.find((o) => o.host === 'metadata.attacker.test')?.error).toMatch(
      /^metadata\.attacker\.test \(169\.254\.169\.254\) is a link-local address/,
    );
    expect(outcomes.find((o) => o.host === '[::ffff:7f00:1]')?.error).toMatch(/^::ffff:7f00:1 is a loopback address/);
  });

  it('the same listener is reached once the allowlist names it (the corpus is not refused for another reason)', async () => {
    const allowing = createWebhookAgent({ policy: createAddressPolicy(['127.0.0.1/32']), resolve: testResolve });
    try {
      expect((await send(`http://127.0.0.1:${listener.port}/hook`, allowing)).kind).toBe('success');
      expect((await send(`http://0x7f.1:${listener.port}/hook`, allowing)).kind).toBe('success');
      expect((await send(`http://localhost:${listener.port}/hook`, allowing)).kind).toBe('success');
      expect((await send(`http://[::ffff:127.0.0.1]:${listener.port}/hook`, allowing)).kind).toBe('success');
      expect((await send(`http://loopback.attacker.test:${listener.port}/hook`, allowing)).kind).toBe('success');
      // Still refused: the allowlist names one address, not its neighbours.
      expect((await send(`http://127.0.0.2:${listener.port}/hook`, allowing)).kind).toBe('refused');
      expect(listener.received).toHaveLength(5);
    } finally {
      await allowing.close();
      listener.received.length = 0;
    }
  });
});

describe('DNS rebinding', () => {
  it('a name flipping between a permitted and a private answer is checked on every connection', async () => {
    // 127.0.0.2 plays the public receiver (allowlisted); 127.0.0.1 on the same port is the internal target.
    const permitted = await startReceiver((_request, response) => {
      response.writeHead(200, { connection: 'close' }).end();
    }, '127.0.0.2');
    const internal = await startReceiver(answer(200), '127.0.0.1').catch(() => undefined);
    let lookups = 0;
    const flipping: Resolve = async () => (lookups++ % 2 === 0 ? ['127.0.0.2'] : ['127.0.0.1']);
    const agent = createWebhookAgent({ policy: createAddressPolicy(['127.0.0.2/32']), resolve: flipping });
    try {
      const url = `http://rebind.attacker.test:${permitted.port}/hook`;
      const kinds = [];
      for (let i = 0; i < 6; i++) kinds.push((await send(url, agent)).kind);
      expect(kinds).toEqual(['success', 'refused', 'success', 'refused', 'success', 'refused']);
      expect(lookups).toBe(6);
      expect(permitted.received).toHaveLength(3);
      expect(permitted.received[0]!.headers.host).toBe(`rebind.attacker.test:${permitted.port}`);
      if (internal) expect(internal.connections).toBe(0);
    } finally {
      await agent.close();
      await permitted.close();
      await internal?.close();
    }
  });
});

describe('https to the checked address', () => {
  it('still verifies the certificate against the host name, not the address connected to', async () => {
    const pems = await generate([{ name: 'commonName', value: 'hooks.lan.test' }], {
      keySize: 2048,
      algorithm: 'sha256',
      extensions: [
        { name: 'basicConstraints', cA: true },
        { name: 'subjectAltName', altNames: [{ type: 2, value: 'hooks.lan.test' }] },
      ],
    });
    const receiver = await startReceiver(answer(200), '127.0.0.1', { key: pems.private, cert: pems.cert });
    const lan: Resolve = async (hostname) => (hostname.endsWith('.lan.test') ? ['127.0.0.1'] : []);
    const trusting = createWebhookAgent({
      policy: createAddressPolicy(['127.0.0.1/32']),
      resolve: lan,
      extraCa: [pems.cert],
    });
    const untrusting = createWebhookAgent({ policy: createAddressPolicy(['127.0.0.1/32']), resolve: lan });
    try {
      expect((await send(`https://hooks.lan.test:${receiver.port}/hook`, trusting)).kind).toBe('success');
      expect(receiver.received[0]!.headers.host).toBe(`hooks.lan.test:${receiver.port}`);
      const wrongName = await send(`https://other.lan.test:${receiver.port}/hook`, trusting);
      expect(wrongName).toMatchObject({ kind: 'error' });
      expect(wrongName.error).toMatch(/^other\.lan\.test:\d+: TLS failed \(ERR_TLS_CERT_ALTNAME_INVALID\)$/);
      const unknownCa = await send(`https://hooks.lan.test:${receiver.port}/hook`, untrusting);
      expect(unknownCa.error).toMatch(/TLS failed/);
      expect(receiver.received).toHaveLength(1);
    } finally {
      await Promise.all([trusting.close(), untrusting.close()]);
      await receiver.close();
    }
  });
});

describe('the address policy', () => {
  const policy = createAddressPolicy();

  it('permits public unicast, in IPv4, IPv6 and IPv4-mapped forms', () => {
    for (const address of ['8.8.8.8', '93.184.215.14', '2a00:1450:4001::200e', '2606:4700::1111', '::ffff:8.8.8.8']) {
      expect([address, policy.refusal(address)]).toEqual([address, undefined]);
    }
  });

  it('names the range it refuses', () => {
    expect(policy.refusal('10.0.0.1')).toBe('private');
    expect(policy.refusal('100.64.0.1')).toBe('carrierGradeNat');
    expect(policy.refusal('0.1.2.3')).toBe('unspecified');
    expect(policy.refusal('::7f00:1')).toBe('loopback');
    expect(policy.refusal('fe80::1%eth0')).toBe('linkLocal');
    expect(policy.refusal('fd12:3456::1')).toBe('uniqueLocal');
    expect(policy.refusal('2001:db8::1')).toBe('reserved');
    expect(policy.refusal('not-an-address')).toBe('unparsable');
  });

  it('permits what the allowlist names, in either IPv6 or IPv4 form', () => {
    const lan = createAddressPolicy([' 192.168.1.0/24', 'fd00::/8', '::ffff:10.0.0.0/104', '172.16.0.9']);
    expect(lan.allowCidrs).toEqual(['192.168.1.0/24', 'fd00::/8', '10.0.0.0/8', '172.16.0.9/32']);
    expect(lan.refusal('192.168.1.77')).toBeUndefined();
    expect(lan.refusal('::ffff:192.168.1.77')).toBeUndefined();
    expect(lan.refusal('192.168.2.1')).toBe('private');
    expect(lan.refusal('fd00::5')).toBeUndefined();
    expect(lan.refusal('10.200.0.1')).toBeUndefined();
    expect(lan.refusal('172.16.0.9')).toBeUndefined();
    expect(lan.refusal('172.16.0.10')).toBe('private');
  });

  it('refuses an allowlist entry it cannot read, naming it', () => {
    for (const entry of ['192.168.1.0/33', 'lan', '0x7f.1/8', '10.0.0.0/8/8', '']) {
      expect(() => createAddressPolicy([entry])).toThrow(
        `WEBHOOK_ALLOW_CIDRS: '${entry}' is not an address or CIDR range; write ranges like 192.168.1.0/24 or fd00::/8, comma-separated.`,
      );
    }
  });
});

describe('checkWebhookUrl (when a subscription is added)', () => {
  const policy = createAddressPolicy();
  const check = (url: string, allowHttp = false) => checkWebhookUrl(url, { policy, allowHttp });
  const refusal = (url: string, allowHttp = false): Error => {
    try {
      check(url, allowHttp);
    } catch (error) {
      return error as Error;
    }
    throw new Error(`${url} was accepted`);
  };

  it('accepts https with any port, and names (judged at connect)', () => {
    expect(check('https://hooks.example.com/proxmox').href).toBe('https://hooks.example.com/proxmox');
    expect(check('https://hooks.example.com:8443/x?token=abc').port).toBe('8443');
    expect(check('https://private.attacker.test/x').hostname).toBe('private.attacker.test');
  });

  it('takes plain http only with the opt-in, or to this machine', () => {
    expect(refusal('http://hooks.example.com/x')).toBeInstanceOf(WebhookUrlError);
    expect(refusal('http://hooks.example.com/x').message).toBe(
      'The webhook URL for hooks.example.com uses plain http; use https, or set WEBHOOK_ALLOW_HTTP=true to send in clear.',
    );
    expect(check('http://hooks.example.com/x', true).protocol).toBe('http:');
    expect(checkWebhookUrl('http://127.0.0.1:9000/x', { policy: createAddressPolicy(['127.0.0.1']) }).port).toBe(
      '9000',
    );
  });

  it('refuses other schemes, user info and relative URLs without echoing the path', () => {
    expect(refusal('ftp://hooks.example.com/x').message).toBe(
      "The webhook URL's scheme ftp: is not supported; use https://.",
    );
    const withPassword = refusal('https://user:hunter2@hooks.example.com/path-token');
    expect(withPassword.message).toMatch(/^The webhook URL for hooks\.example\.com has a user name or password in it/);
    expect(withPassword.message).not.toMatch(/hunter2|path-token/);
    expect(refusal('/relative').message).toBe(
      'The webhook URL is not an absolute URL; give one like https://hooks.example.com/proxmox.',
    );
  });

  it('refuses a private address literal at once, in any spelling', () => {
    for (const url of [
      'https://169.254.169.254/latest',
      'https://0x7f.1/',
      'https://2130706433/',
      'https://[::ffff:7f00:1]/',
      'https://[fd00::1]/',
    ]) {
      expect(refusal(url)).toBeInstanceOf(WebhookTargetRefused);
    }
  });

  it('refuses localhost at once too (it is never resolved: always loopback), unless the allowlist names it', () => {
    for (const url of ['https://localhost/x', 'https://LOCALHOST./x', 'https://app.localhost:9000/x'])
      expect(refusal(url).message).toMatch(
        /^(localhost|app\.localhost)\.? \(127\.0\.0\.1\) is a loopback address, which webhooks may not reach; if the receiver is yours, add 127\.0\.0\.1\/32 to WEBHOOK_ALLOW_CIDRS\.$/,
      );
    expect(checkWebhookUrl('https://localhost/x', { policy: createAddressPolicy(['127.0.0.1/32']) }).hostname).toBe(
      'localhost',
    );
    expect(refusal('https://[::]/').message).toMatch(/^:: is an unspecified address/);
    expect(refusal('https://100.64.0.1/').message).toMatch(/^100\.64\.0\.1 is a carrier-grade NAT address/);
  });
});
