/**
 * The real HTTP client against the simulator over HTTPS: trust, auth, typed errors, retries.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { formatDuration, ProxmoxApiError } from '../../src/proxmox/errors.js';
import { createHttpProxmoxClient, type HttpClientOptions } from '../../src/proxmox/http-client.js';
import type { ProxmoxClient } from '../../src/proxmox/client.js';
import { Secret } from '../../src/secret.js';
import { startSimulator, type Simulator } from '../../src/sim/server.js';

let sim: Simulator;
const clients: ProxmoxClient[] = [];

beforeAll(async () => {
  sim = await startSimulator({ guests: 40, nodes: 3, seed: 3, taskDelayMs: 20 });
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await sim.close();
});
afterEach(() => {
  sim.setFaults({});
  sim.resetCounters();
});

function client(overrides: Partial<HttpClientOptions> = {}): ProxmoxClient {
  const c = createHttpProxmoxClient({
    cluster: 'sim',
    url: sim.url,
    tokenId: sim.tokens.full.id,
    tokenSecret: new Secret(sim.tokens.full.secret),
    tls: { fingerprint: sim.fingerprint },
    timeoutMs: 2_000,
    retryBaseMs: 10,
    ...overrides,
  });
  clients.push(c);
  return c;
}

async function failure(p: Promise<unknown>): Promise<ProxmoxApiError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProxmoxApiError);
  return err as ProxmoxApiError;
}

describe('TLS trust', () => {
  it('accepts the simulator with its pinned SHA-256 fingerprint', async () => {
    const version = await client().version();
    expect(version).toEqual({ version: '9.1.1', release: '9.1', repoid: expect.any(String) });
  });

  it('accepts a pin written in lowercase without colons', async () => {
    const bare = sim.fingerprint!.replace(/:/g, '').toLowerCase();
    await expect(client({ tls: { fingerprint: bare } }).version()).resolves.toMatchObject({ release: '9.1' });
  });

  it('refuses an unpinned self-signed certificate and says how to pin it', async () => {
    const err = await failure(client({ tls: {} }).version());
    expect(err.kind).toBe('tls');
    expect(err.status).toBe(0);
    expect(err.message).toContain(`PVE_FINGERPRINT=${sim.fingerprint}`);
    expect(err.message).toContain('pvenode cert info');
    expect(err.message).toContain('PVE_CA_FILE');
    expect(sim.counters().total).toBe(0); // nothing reached the API
  });

  it('refuses a certificate that does not match the pin, before sending the token', async () => {
    const wrong = 'AA:' + sim.fingerprint!.slice(3);
    const err = await failure(client({ tls: { fingerprint: wrong } }).version());
    expect(err.kind).toBe('tls');
    expect(err.message).toMatch(/does not match the pinned/);
    expect(sim.counters().total).toBe(0);
  });

  it('trusts a CA certificate (what PVE_CA_FILE loads)', async () => {
    await expect(client({ tls: { ca: sim.certificate } }).version()).resolves.toMatchObject({ release: '9.1' });
  });

  it('connects without verification only when insecure is set', async () => {
    await expect(client({ tls: { insecure: true } }).version()).resolves.toMatchObject({ release: '9.1' });
  });
});

describe('authentication and permissions', () => {
  it('reports a wrong token secret as an auth error without echoing the secret', async () => {
    const err = await failure(client({ tokenSecret: new Secret('wrong-secret-value') }).clusterResources());
    expect(err).toMatchObject({
      kind: 'auth',
      status: 401,
      reason: 'Authentication failed!',
      method: 'GET',
      path: '/cluster/resources',
    });
    expect(err.message).toMatch(/token id \(user@realm!tokenid\)/);
    expect(JSON.stringify(err) + err.message + String(err.cause ?? '')).not.toContain('wrong-secret-value');
  });

  it('reports a missing privilege as a permission error that names path and privilege', async () => {
    const auditor = client({ tokenId: sim.tokens.auditor.id, tokenSecret: new Secret(sim.tokens.auditor.secret) });
    const { guests } = await auditor.clusterResources(); // reading is allowed
    const g = guests.find((x) => x.type === 'qemu')!;
    const err = await failure(auditor.post(`/nodes/${g.node}/qemu/${g.vmid}/status/stop`));
    expect(err).toMatchObject({
      kind: 'permission',
      status: 403,
      reason: `Permission check failed (/vms/${g.vmid}, VM.PowerMgmt)`,
    });
    expect(err.message).toContain('lacks this privilege');
  });
});

describe('typed errors', () => {
  it('a parameter error carries Proxmox’s errors object', async () => {
    const err = await failure(client().get('/cluster/nextid', { vmid: 100 }));
    expect(err).toMatchObject({ kind: 'parameter', status: 400, errors: { vmid: 'VM 100 already exists' } });
    expect(err.message).toContain('vmid: VM 100 already exists');
  });

  it('an unknown route is not_implemented (501)', async () => {
    const err = await failure(client().get('/nodes/pve1/nope'));
    expect(err).toMatchObject({
      kind: 'not_implemented',
      status: 501,
      reason: "Method 'GET /nodes/pve1/nope' not implemented",
    });
  });

  it('an offline node is node_unreachable (595) and is not retried', async () => {
    sim.setNodeOnline('pve2', false);
    try {
      const err = await failure(client().get('/nodes/pve2/status'));
      expect(err).toMatchObject({ kind: 'node_unreachable', status: 595 });
      expect(err.reason).toMatch(/^Errors during connection establishment/);
      expect(sim.counters().byEndpoint['GET /nodes/{node}/status']).toBe(1);
    } finally {
      sim.setNodeOnline('pve2', true);
    }
  });

  it('a missing guest config is not_found', async () => {
    const err = await failure(client().guestConfig({ node: 'pve1', type: 'qemu', vmid: 999_999 }));
    expect(err).toMatchObject({
      kind: 'not_found',
      status: 500,
      reason: "Configuration file 'nodes/pve1/qemu-server/999999.conf' does not exist",
    });
  });

  it('a hanging cluster times out as a typed error after the retries', async () => {
    sim.setFaults({ hang: true });
    const started = Date.now();
    const err = await failure(client({ timeoutMs: 300, retries: 1 }).version());
    expect(err.kind).toBe('timeout');
    // The message says the retries already ran, so nobody wraps it in retries of their own.
    expect(err.message).toContain('GET /version → no answer within 300 ms after 2 tries');
    expect(sim.counters().byEndpoint['GET /version']).toBe(2);
    expect(Date.now() - started).toBeLessThan(3_000);
    // The default deadline reads as people say it: "no answer within 15 s after 3 tries".
    expect([15_000, 1_500, 300].map(formatDuration)).toEqual(['15 s', '1.5 s', '300 ms']);
  });
});

describe('connection errors say what to check', () => {
  /** A loopback port nothing listens on (bound, then released). */
  async function closedPort(): Promise<number> {
    const { createServer } = await import('node:net');
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    await new Promise((r) => server.close(r));
    return port;
  }

  it('refused: is the URL’s port right (8006)?, after the retries it already made', async () => {
    const port = await closedPort();
    const err = await failure(client({ url: `https://127.0.0.1:${port}`, retries: 2 }).version());
    expect(err.kind).toBe('network');
    expect(err.message).toBe(
      `GET /version → connect ECONNREFUSED 127.0.0.1:${port} after 3 tries (nothing listens at 127.0.0.1:${port}: ` +
        "is the URL's host and port right? Proxmox VE's API is https on port 8006)",
    );
  });

  it('plain http to the https port: use https://', async () => {
    const err = await failure(client({ url: sim.url.replace(/^https:/, 'http:'), retries: 0 }).version());
    const port = new URL(sim.url).port;
    expect(err.kind).toBe('network');
    expect(err.message).toContain(
      `(the server at 127.0.0.1:${port} closed the connection without an answer: if it speaks HTTPS (Proxmox VE does, on 8006), use https:// in the URL)`,
    );
  });

  it('https to a plain-http port: no OpenSSL text, the port to check', async () => {
    const plain = await startSimulator({ guests: 1, nodes: 1, tls: false });
    try {
      const url = plain.url.replace(/^http:/, 'https:');
      const err = await failure(client({ url, retries: 0 }).version());
      expect(err.kind).toBe('tls');
      expect(err.message).toBe(
        `GET /version → no TLS handshake (the server at 127.0.0.1:${new URL(url).port} answered without TLS: ` +
          "is the port right? Proxmox VE's API is https on port 8006; plain http:// suits only a loopback simulator)",
      );
    } finally {
      await plain.close();
    }
  });
});

describe('concurrency', () => {
  it('keeps at most `concurrency` requests in flight per cluster; the rest queue', async () => {
    // Each answer takes `latency`, far more than a loaded machine adds to a local request, so one
    // wave is told from three by hundreds of milliseconds.
    const latency = 400;
    sim.setFaults({ latencyMs: latency, endpoint: 'GET /version' });
    const limited = client({ concurrency: 2 });
    await limited.clusterStatus(); // open the connections first: handshakes are not what is measured
    const started = Date.now();
    await Promise.all(Array.from({ length: 6 }, () => limited.version()));
    const elapsed = Date.now() - started;
    // 6 requests, 2 at a time: three waves.
    expect(elapsed).toBeGreaterThanOrEqual(3 * latency - 10);
    const wide = client({ concurrency: 6 });
    await wide.clusterStatus();
    const t = Date.now();
    await Promise.all(Array.from({ length: 6 }, () => wide.version()));
    // One wave: at least two waves' time less (a concurrency of 2 here too would take as long).
    expect(Date.now() - t).toBeLessThan(elapsed - latency);
  });
});

describe('timeouts count from sending, not from queueing', () => {
  it('requests queued behind the concurrency limit do not time out', async () => {
    sim.setFaults({ latencyMs: 300, endpoint: 'GET /version' });
    const one = client({ concurrency: 1, timeoutMs: 1_000, retries: 0 });
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => one.version()));
    expect(results.map((r) => r.status)).toEqual(Array(6).fill('fulfilled'));
    expect(sim.counters().byEndpoint['GET /version']).toBe(6);
  });
});

describe('construction', () => {
  it('refuses plain http to anything but loopback', () => {
    expect(() =>
      createHttpProxmoxClient({
        cluster: 'x',
        url: 'http://192.0.2.1:8006',
        tokenId: 'a@pve!b',
        tokenSecret: new Secret('s'),
        tls: {},
      }),
    ).toThrow(/refusing plain http to 192\.0\.2\.1/);
  });

  it('warns when TLS verification is off', async () => {
    const warnings: string[] = [];
    await client({ tls: { insecure: true }, onWarning: (m) => warnings.push(m) }).version();
    expect(warnings).toEqual([expect.stringContaining('TLS verification is off')]);
  });
});

describe('retries', () => {
  it('retries a GET on 503 and gives up after the configured attempts', async () => {
    sim.setFaults({ errorRate: 1, errorStatus: 503, endpoint: 'GET /cluster/status' });
    const err = await failure(client({ retries: 2 }).clusterStatus());
    expect(err).toMatchObject({ kind: 'server', status: 503 });
    expect(sim.counters().byEndpoint['GET /cluster/status']).toBe(3);
  });

  it('never retries a write, even on 503', async () => {
    sim.setFaults({ errorRate: 1, errorStatus: 503 });
    const err = await failure(client({ retries: 3 }).post('/nodes/pve1/qemu/100/status/start'));
    expect(err.status).toBe(503);
    expect(sim.counters().total).toBe(1);
  });

  it('does not retry a 500 that is an answer, not a glitch', async () => {
    sim.setFaults({ errorRate: 1, errorStatus: 500, endpoint: 'GET /version' });
    await failure(client({ retries: 3 }).version());
    expect(sim.counters().byEndpoint['GET /version']).toBe(1);
  });

  it('succeeds when a transient fault clears during the backoff', async () => {
    sim.setFaults({ errorRate: 1, errorStatus: 502, endpoint: 'GET /version' });
    const answer = client({ retries: 5, retryBaseMs: 40 }).version();
    // The fault clears once the first attempt has met it, not after a fixed delay.
    const deadline = Date.now() + 10_000;
    while (!sim.counters().byEndpoint['GET /version'] && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 5));
    sim.setFaults({});
    await expect(answer).resolves.toMatchObject({ release: '9.1' });
    expect(sim.counters().byEndpoint['GET /version']).toBeGreaterThan(1);
  });
});

describe('bulk reads and tasks', () => {
  it('reads resources, status, tasks and log with proper types', async () => {
    const c = client();
    const resources = await c.clusterResources();
    expect(resources.guests).toHaveLength(40);
    expect(resources.nodes.map((n) => n.node)).toEqual(['pve1', 'pve2', 'pve3']);
    expect(resources.pools.length).toBeGreaterThan(0);
    expect(resources.other.every((o) => o.type === 'sdn')).toBe(true);
    const g = resources.guests[0]!;
    expect(typeof g.vmid).toBe('number');
    expect(typeof g.template).toBe('boolean');
    expect(Array.isArray(g.tags)).toBe(true);
    expect(resources.storage.some((s) => s.shared === true)).toBe(true);
    const status = await c.clusterStatus();
    expect(status.cluster).toMatchObject({ name: 'sim', nodes: 3, quorate: true });
    expect(status.nodes.filter((n) => n.local)).toHaveLength(1);
  });

  it('starts a guest, waits for the task, and reads its log; a second start fails inside the task', async () => {
    const c = client();
    const { guests } = await c.clusterResources();
    const g = guests.find((x) => x.type === 'qemu' && x.status === 'stopped' && !x.template && !x.lock)!;
    const upid = (await c.post(`/nodes/${g.node}/qemu/${g.vmid}/status/start`)) as string;
    expect(upid).toMatch(
      new RegExp(`^UPID:${g.node}:[0-9A-F]{8}:[0-9A-F]{8,9}:[0-9A-F]{8}:qmstart:${g.vmid}:root@pam!inventory:$`),
    );
    await expect(c.waitForTask(upid, { intervalMs: 10 })).resolves.toEqual({
      upid,
      outcome: 'ok',
      exitstatus: 'OK',
      ok: true,
    });
    const again = (await c.post(`/nodes/${g.node}/qemu/${g.vmid}/status/start`)) as string;
    await expect(c.waitForTask(again, { intervalMs: 10 })).resolves.toMatchObject({
      outcome: 'error',
      ok: false,
      exitstatus: `VM ${g.vmid} already running`,
    });
    const log = await c.taskLog(again);
    expect(log.lines.at(-1)).toEqual({ n: log.total, t: `TASK ERROR: VM ${g.vmid} already running` });
    const firstOk = await c.taskLog(upid, 0, 1); // a page of one line still reports the whole log's length
    expect(firstOk).toEqual({ lines: [{ n: 1, t: `starting VM ${g.vmid}` }], total: 2 });
    const tasks = await c.clusterTasks();
    expect(tasks.find((t) => t.upid === again)).toMatchObject({
      type: 'qmstart',
      id: String(g.vmid),
      user: 'root@pam',
      tokenid: 'inventory',
      status: `VM ${g.vmid} already running`,
    });
  });

  it('reads a guest config as text values with its digest, and snapshots with the current digest', async () => {
    const c = client();
    const { guests } = await c.clusterResources();
    const g = guests.find((x) => x.type === 'qemu')!;
    const config = await c.guestConfig(g);
    expect(config.digest).toMatch(/^[0-9a-f]{40}$/);
    expect(config.values.memory).toMatch(/^\d+$/);
    expect(config.values.cores).toMatch(/^\d+$/);
    expect(config.values).not.toHaveProperty('vmid');
    const snaps = await c.snapshots(g);
    expect(snaps.current.digest).toBe(config.digest);
  });
});
