/**
 * Malformed or surprising API data: coerced where it can be, skipped with a logged warning where it
 * cannot, and never a crashed cycle. Served over HTTP by a small server with hand-made bodies.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { createHttpProxmoxClient } from '../../src/proxmox/http-client.js';
import { Secret } from '../../src/secret.js';
import { openStore, type Store } from '../../src/store/db.js';
import { createClusterSync, DEFAULT_SYNC_SETTINGS } from '../../src/sync/cycle.js';

const bodies: Record<string, unknown> = {
  '/version': { data: { version: '8.0.4', release: '8.0', repoid: 'abc' } },
  '/cluster/resources': {
    data: [
      {
        id: 'qemu/100',
        type: 'qemu',
        vmid: '100',
        node: 'pve1',
        status: 'running',
        name: 'legacy-strings',
        maxmem: '2147483648',
        maxcpu: '2',
        mem: '1073741824',
        cpu: '0.5',
        template: '0',
        tags: 'a, b ;c',
      },
      {
        id: 'lxc/101',
        type: 'lxc',
        vmid: 101,
        node: 'pve1',
        status: 'stopped',
        name: 'ct',
        maxmem: 536870912,
        maxcpu: 1,
        maxdisk: 8589934592,
      },
      { id: 'qemu/x', type: 'qemu', vmid: 'not-a-number', node: 'pve1' },
      { id: 'qemu/102', type: 'qemu', vmid: 102 },
      { id: 'openvz/5', type: 'openvz', vmid: 5, node: 'pve1' },
      {
        id: 'qemu/103',
        type: 'qemu',
        vmid: 103,
        node: 'pve1',
        status: 'running',
        name: 'bad-config',
        maxmem: 1073741824,
        maxcpu: 1,
      },
      {
        id: 'node/pve1',
        type: 'node',
        node: 'pve1',
        status: 'online',
        maxcpu: '16',
        maxmem: 68719476736,
        cpu: 0.1,
        mem: 1,
        uptime: 5,
      },
      { id: 'node/pve2', type: 'node', node: 'pve2', status: 'maintenance' },
      {
        id: 'storage/pve1/local',
        type: 'storage',
        storage: 'local',
        node: 'pve1',
        status: 'available',
        shared: '0',
        content: 'iso',
        disk: '100',
        maxdisk: '1000',
      },
      { id: 'storage/pve1/broken', type: 'storage', node: 'pve1' },
      { not: 'an entry' },
      null,
    ],
  },
  '/cluster/status': {
    data: [
      { type: 'cluster', id: 'cluster', name: 'odd', nodes: '2', quorate: '1', version: 3 },
      { type: 'node', id: 'node/pve1', name: 'pve1', nodeid: '1', online: 1, local: 1, ip: '192.0.2.1' },
      { type: 'mystery', id: 'x' },
    ],
  },
  '/cluster/tasks': {
    data: [
      {
        upid: 'UPID:pve1:00000001:00000001:6650A1B2:qmstart:100:root@pam:',
        node: 'pve1',
        starttime: '1716560306',
        type: 'qmstart',
        id: 100,
        user: 'root@pam',
        endtime: 1716560307,
        status: 'OK',
        saved: '1',
      },
      { garbage: true },
    ],
  },
  '/cluster/log': {
    data: [{ uid: '7', time: 1716560306, node: 'pve1', msg: 'update VM 100: -name x' }, { uid: 'n/a' }],
  },
  '/nodes/pve1/qemu/100/config': {
    data: {
      name: 'legacy-strings',
      memory: 2048,
      cores: '2',
      sockets: 1,
      onboot: '1',
      net0: 'virtio=bc:24:11:aa:bb:cc,bridge=vmbr0',
      digest: 'a'.repeat(40),
    },
  },
  '/nodes/pve1/lxc/101/config': {
    data: {
      hostname: 'ct',
      memory: 'lots',
      cores: 'x',
      rootfs: 'local:101/vm-101-disk-0.raw,size=8G',
      digest: 'b'.repeat(40),
    },
  },
  '/nodes/pve1/qemu/103/config': { data: 'this is not a config' },
};

let server: Server;
let store: Store;
let output = '';

beforeAll(async () => {
  server = createServer((req, res) => {
    const body = bodies[new URL(req.url!, 'http://x').pathname.replace('/api2/json', '')];
    res.writeHead(body === undefined ? 501 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body ?? { data: null }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  store = openStore(join(mkdtempSync(join(tmpdir(), 'pi-malformed-')), 'inventory.db'));
});
afterAll(async () => {
  store.close();
  await new Promise((r) => server.close(r));
});

describe('a cycle over malformed and surprising data', () => {
  it('keeps what it can read, skips the rest with warnings, and finishes', async () => {
    const sink = new Writable({
      write(chunk: Buffer, _e, done) {
        output += chunk.toString();
        done();
      },
    });
    const log = createLogger({ level: 'warn', destination: sink });
    const { port } = server.address() as AddressInfo;
    const client = createHttpProxmoxClient({
      cluster: 'odd',
      url: `http://127.0.0.1:${port}`,
      tokenId: 'a@pve!b',
      tokenSecret: new Secret('s'),
      tls: {},
      retries: 0,
      onWarning: (m, f) => log.warn(f, m),
    });
    const sync = createClusterSync({
      store,
      client,
      cluster: 'odd',
      settings: { ...DEFAULT_SYNC_SETTINGS, sweepEveryMs: 0 },
      log,
    });
    const result = await sync.runCycle();
    await client.close();

    expect(result.ok).toBe(true);
    const guests = store.sqlite
      .prepare(
        'SELECT vmid, name, status, maxmem, maxcpu, tags, memory_mib, cores, onboot, nics, config_dirty FROM guests ORDER BY vmid',
      )
      .all();
    expect(guests).toEqual([
      {
        vmid: 100,
        name: 'legacy-strings',
        status: 'running',
        maxmem: 2147483648,
        maxcpu: 2,
        tags: '["a","b","c"]',
        memory_mib: 2048,
        cores: 2,
        onboot: 1,
        nics: expect.stringContaining('"mac":"BC:24:11:AA:BB:CC"'),
        config_dirty: 0,
      },
      {
        vmid: 101,
        name: 'ct',
        status: 'stopped',
        maxmem: 536870912,
        maxcpu: 1,
        tags: '[]',
        memory_mib: null,
        cores: null,
        onboot: 0,
        nics: '[]',
        config_dirty: 0,
      },
      // Its config read failed: the row exists without config and is retried next cycle.
      {
        vmid: 103,
        name: 'bad-config',
        status: 'running',
        maxmem: 1073741824,
        maxcpu: 1,
        tags: '[]',
        memory_mib: null,
        cores: null,
        onboot: null,
        nics: null,
        config_dirty: 1,
      },
    ]);
    expect(store.sqlite.prepare('SELECT node, status, online, maxcpu FROM nodes ORDER BY node').all()).toEqual([
      { node: 'pve1', status: 'online', online: 1, maxcpu: 16 },
      { node: 'pve2', status: 'maintenance', online: 0, maxcpu: null },
    ]);
    expect(store.sqlite.prepare('SELECT storage, shared, disk, maxdisk FROM storage').all()).toEqual([
      { storage: 'local', shared: 0, disk: 100, maxdisk: 1000 },
    ]);
    expect(store.sqlite.prepare('SELECT upid, starttime, vmid FROM tasks').all()).toEqual([
      { upid: 'UPID:pve1:00000001:00000001:6650A1B2:qmstart:100:root@pam:', starttime: 1716560306, vmid: 100 },
    ]);
    expect(
      store.sqlite
        .prepare("SELECT cluster_name, quorate, pve_version, log_cursors FROM clusters WHERE name = 'odd'")
        .get(),
    ).toEqual({ cluster_name: 'odd', quorate: 1, pve_version: '8.0.4', log_cursors: '{"pve1":7}' });

    const warnings = output
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string; id?: unknown; vmid?: number });
    expect(warnings.filter((w) => w.msg.includes('unexpected shape')).map((w) => w.id)).toEqual(
      expect.arrayContaining(['qemu/x', 'qemu/102', 'storage/pve1/broken']),
    );
    expect(warnings.some((w) => w.msg.includes('config read failed') && w.vmid === 103)).toBe(true);
  });
});
