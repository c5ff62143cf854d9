import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  checkClusterResources,
  checkClusterStatus,
  checkClusterTasks,
  checkErrorResponse,
  checkGuestConfig,
  checkGuestStatusCurrent,
  checkNextId,
  checkNodeNetwork,
  checkNodes,
  checkNodeTasks,
  checkSnapshotList,
  checkStorageConfig,
  checkStorageStatus,
  checkTaskLog,
  checkTaskStatus,
  checkUpid,
} from './pve-shapes.js';
import type { PveSchema } from './schema-check.js';
import { checkAgainstSchema, listSchemaEndpoints, loadEndpointSchema } from './schema-check.js';

// Only the copies inside the repository: tests must never reach into ../shared.
const FIXTURES = new URL('../fixtures/pve/', import.meta.url);

function readJson(relativePath: string): unknown {
  return JSON.parse(readFileSync(new URL(relativePath, FIXTURES), 'utf8'));
}

function dataOf(envelope: unknown): unknown {
  if (typeof envelope !== 'object' || envelope === null || !('data' in envelope)) {
    throw new Error('fixture is not a {"data": ...} envelope');
  }
  return envelope.data;
}

function recorded(file: string): unknown {
  return dataOf(readJson(`recorded/${file}`));
}

function derived(file: string): Record<string, unknown> {
  return readJson(`derived/${file}`) as Record<string, unknown>;
}

/** Deep copy for negative tests, typed loosely so a test can break any field. */
function mutable<T = Record<string, unknown>>(value: unknown): T {
  return structuredClone(value) as T;
}

function schemaProblems(endpoint: string, data: unknown): string[] {
  return checkAgainstSchema(data, loadEndpointSchema(endpoint).returns).problems;
}

interface FixtureCase {
  file: string;
  /** Endpoint key in src/sim/pve-schema.json, or null when the schema file lacks it. */
  endpoint: string | null;
  shape: (data: unknown) => string[];
  /** Schema problems that are real version differences, not fixture or checker bugs. */
  knownSchemaProblems?: string[];
}

const RECORDED: FixtureCase[] = [
  { file: 'cluster-resources.4node.go-proxmox.json', endpoint: 'GET /cluster/resources', shape: checkClusterResources },
  {
    file: 'cluster-resources.offline-node.heimdall-issue-584.json',
    endpoint: 'GET /cluster/resources',
    shape: checkClusterResources,
  },
  {
    file: 'cluster-resources.single-node.DirkTheDaring-px.json',
    endpoint: 'GET /cluster/resources',
    shape: checkClusterResources,
  },
  {
    file: 'cluster-resources.vms-only.packer-plugin-proxmox.json',
    endpoint: 'GET /cluster/resources',
    shape: checkClusterResources,
  },
  { file: 'cluster-status.4node.go-proxmox.json', endpoint: 'GET /cluster/status', shape: checkClusterStatus },
  { file: 'nodes.4node.go-proxmox.json', endpoint: 'GET /nodes', shape: checkNodes },
  // GET /nodes/{node}/network is not in src/sim/pve-schema.json.
  { file: 'node-network.go-proxmox.json', endpoint: null, shape: checkNodeNetwork },
  {
    file: 'qemu-status-current.running.go-proxmox.json',
    endpoint: 'GET /nodes/{node}/qemu/{vmid}/status/current',
    shape: (data) => checkGuestStatusCurrent(data, 'qemu'),
  },
  { file: 'task-log.upload-ok.go-proxmox.json', endpoint: 'GET /nodes/{node}/tasks/{upid}/log', shape: checkTaskLog },
  { file: 'node-tasks.vzdump.home-assistant-core.json', endpoint: 'GET /nodes/{node}/tasks', shape: checkNodeTasks },
  ...[
    'vm100.pve8.1.packer-plugin-proxmox',
    'vm101.tags.pve8.1.packer-plugin-proxmox',
    'vm102.template.pve8.1.packer-plugin-proxmox',
  ].map((name): FixtureCase => ({
    file: `qemu-config.${name}.json`,
    endpoint: 'GET /nodes/{node}/qemu/{vmid}/config',
    shape: (data) => checkGuestConfig(data, 'qemu'),
  })),
  {
    file: 'qemu-config.vm107.pve7.CRASH-Tech-proxmox-operator.json',
    endpoint: 'GET /nodes/{node}/qemu/{vmid}/config',
    shape: (data) => checkGuestConfig(data, 'qemu'),
    // PVE <= 8.0 sent memory as a number; the 9.1 schema declares the 8.1+ property string.
    knownSchemaProblems: ['$.memory: expected string, got number 8192'],
  },
  // The 9.1 schema declares only `storage` per entry; the plugin keys, digest and content pass as undeclared.
  { file: 'storage-config.GET-storage.DirkTheDaring-px.json', endpoint: 'GET /storage', shape: checkStorageConfig },
];

describe('recorded PVE responses', () => {
  it('every file in test/fixtures/pve/recorded has a case', () => {
    const files = readdirSync(new URL('recorded/', FIXTURES)).filter((f) => f.endsWith('.json'));
    expect(RECORDED.map((c) => c.file).sort()).toEqual(files.sort());
  });

  describe.each(RECORDED)('$file', (fixture) => {
    const data = recorded(fixture.file);

    it('passes the wire-shape check', () => {
      expect(fixture.shape(data)).toEqual([]);
    });

    const endpoint = fixture.endpoint;
    if (endpoint !== null) {
      it(`matches the PVE 9.1 schema of ${endpoint} (undeclared fields allowed)`, () => {
        expect(schemaProblems(endpoint, data)).toEqual(fixture.knownSchemaProblems ?? []);
      });
    }
  });
});

describe('derived PVE examples', () => {
  it('cluster-tasks.example.json', () => {
    const data = dataOf(derived('cluster-tasks.example.json'));
    expect(checkClusterTasks(data)).toEqual([]);
    expect(schemaProblems('GET /cluster/tasks', data)).toEqual([]);
  });

  it('snapshot-list.example.json (qemu)', () => {
    const data = dataOf(derived('snapshot-list.example.json'));
    expect(checkSnapshotList(data, 'qemu')).toEqual([]);
    expect(schemaProblems('GET /nodes/{node}/qemu/{vmid}/snapshot', data)).toEqual([]);
  });

  it.each(Object.keys(derived('task-status.examples.json')))('task-status.examples.json: %s', (name) => {
    const data = dataOf(derived('task-status.examples.json')[name]);
    expect(checkTaskStatus(data)).toEqual([]);
    expect(schemaProblems('GET /nodes/{node}/tasks/{upid}/status', data)).toEqual([]);
  });

  it.each(Object.keys(derived('task-log.examples.json')))('task-log.examples.json: %s', (name) => {
    const envelope = derived('task-log.examples.json')[name] as { data: unknown[]; total: number };
    expect(checkTaskLog(envelope.data)).toEqual([]);
    expect(schemaProblems('GET /nodes/{node}/tasks/{upid}/log', envelope.data)).toEqual([]);
    // Every example is a full read (start=0, no limit hit), so total is the line count.
    expect(envelope.total).toBe(envelope.data.length);
  });

  it('ha.examples.json', () => {
    const examples = derived('ha.examples.json');
    for (const endpoint of ['GET /cluster/ha/resources', 'GET /cluster/ha/status/current']) {
      expect(schemaProblems(endpoint, dataOf(examples[endpoint]))).toEqual([]);
    }
  });

  it.each(Object.keys(derived('errors.examples.json')))('errors.examples.json: %s', (name) => {
    const example = derived('errors.examples.json')[name] as Record<string, unknown>;
    const match = /^HTTP\/1\.1 (\d{3}) (.*)$/.exec(String(example.http_status_line));
    expect(match).not.toBeNull();
    const status = Number(match?.[1]);
    const reason = match?.[2] ?? '';
    const bodies = Object.entries(example).filter(([key]) => key === 'body' || key.startsWith('body_'));
    if (bodies.length === 0) bodies.push(['body', '']);
    for (const [, body] of bodies) {
      const raw = typeof body === 'string' ? body : JSON.stringify(body);
      expect(checkErrorResponse(status, reason, raw)).toEqual([]);
    }
  });

  it('every derived file is either checked above or listed as unchecked', () => {
    const checked = [
      'cluster-tasks.example.json',
      'snapshot-list.example.json',
      'task-status.examples.json',
      'task-log.examples.json',
      'ha.examples.json',
      'errors.examples.json',
    ];
    // POST /access/ticket: no entry in pve-schema.json and no shape rule yet.
    const unchecked = ['access-ticket.example.json'];
    const files = readdirSync(new URL('derived/', FIXTURES)).filter((f) => f.endsWith('.json'));
    expect([...checked, ...unchecked].sort()).toEqual(files.sort());
  });
});

// ---------------------------------------------------------------------------
// Negative tests: each rule must be able to fail.

type Row = Record<string, unknown>;

const resources4 = (): Row[] => mutable<Row[]>(recorded('cluster-resources.4node.go-proxmox.json'));

function guest(vmid: number, type = 'qemu'): Row {
  return { id: `${type}/${vmid}`, type, vmid, node: 'pve1', status: 'stopped', template: 0 };
}

describe('checkClusterResources rejects', () => {
  it('vmid as a string (legacy PVE <= 7), in the shape and the schema check', () => {
    const data = resources4();
    (data[3] as Row).vmid = '200';
    expect(checkClusterResources(data)).toContain('$[3].vmid: expected a JSON number, got string "200"');
    expect(schemaProblems('GET /cluster/resources', data)).toContain('$[3].vmid: expected integer, got string "200"');
  });

  it('guests in numeric instead of string order', () => {
    const problems = checkClusterResources([guest(101), guest(1000)]);
    expect(problems).toEqual(['$[1].vmid: guest 1000 emitted after 101; guests must be in string-sorted vmid order']);
    expect(checkClusterResources([guest(1000), guest(101)])).toEqual([]);
  });

  it('a pool after a guest, and a pool id without the leading slash', () => {
    const pool = { id: '/pool/prod', type: 'pool', pool: 'prod' };
    expect(checkClusterResources([pool, guest(100)])).toEqual([]);
    expect(checkClusterResources([guest(100), pool])).toEqual([
      '$[1]: pool entry after a qemu entry; PVE emits pools, then guests, then nodes, storages, sdn/network',
    ]);
    expect(checkClusterResources([{ ...pool, id: 'pool/prod' }])).toEqual([
      '$[0].id: expected "/pool/prod", got string "pool/prod"',
    ]);
  });

  it('a storage entry before a node entry', () => {
    const data = resources4();
    const [storage] = data.splice(8, 1);
    data.splice(4, 0, storage as Row);
    expect(checkClusterResources(data)).toContain(
      '$[5]: node entry after a storage entry; PVE emits pools, then guests, then nodes, storages, sdn/network',
    );
  });

  it('ids that disagree with their fields', () => {
    const data = resources4();
    (data[0] as Row).id = 'qemu/101';
    (data[4] as Row).id = 'node/node1';
    (data[8] as Row).id = 'storage/local-zfs';
    expect(checkClusterResources(data)).toEqual([
      '$[0].id: expected "qemu/100", got string "qemu/101"',
      '$[4].id: expected "node/node3", got string "node/node1"',
      '$[8].id: expected "storage/node3/local-zfs", got string "storage/local-zfs"',
    ]);
  });

  it('template/shared as JSON booleans (the schema check alone would accept them)', () => {
    const data = resources4();
    (data[1] as Row).template = true;
    (data[8] as Row).shared = false;
    expect(checkClusterResources(data)).toEqual([
      '$[1].template: expected 0 or 1, got boolean true',
      '$[8].shared: expected 0 or 1, got boolean false',
    ]);
    expect(schemaProblems('GET /cluster/resources', data)).toEqual([]);
  });

  it('a non-online node carrying live stats, but not one keeping its max* values', () => {
    const offline = { id: 'node/pve2', type: 'node', node: 'pve2', status: 'offline', level: '' };
    expect(checkClusterResources([{ ...offline, maxmem: 1024, maxcpu: 4, maxdisk: 2048 }])).toEqual([]);
    expect(checkClusterResources([{ ...offline, cpu: 0.1, mem: 5 }])).toEqual([
      '$[0].cpu: node with status string "offline" must not carry cpu',
      '$[0].mem: node with status string "offline" must not carry mem',
    ]);
  });

  it('guest cpu as a percentage, and an invalid tag', () => {
    expect(checkClusterResources([{ ...guest(100), cpu: 12.5, tags: 'ok;bad tag!' }])).toEqual([
      '$[0].tags: "tag!" is not a valid pve-tag',
      '$[0].cpu: expected a fraction in 0..1, got number 12.5',
    ]);
    expect(checkClusterResources([{ ...guest(100), tags: 'go-proxmox+cloud-init' }])).toEqual([]);
  });

  it('unknown type and wrong sdn id', () => {
    expect(checkClusterResources([{ id: 'vm/100', type: 'vm', vmid: 100 }])).toEqual([
      '$[0].type: unknown resource type "vm"',
    ]);
    expect(checkClusterResources([{ id: 'sdn/localnetwork', type: 'sdn', sdn: 'localnetwork', node: 'pve' }])).toEqual([
      '$[0].id: expected "sdn/pve/localnetwork", got string "sdn/localnetwork"',
    ]);
  });
});

describe('checkClusterStatus rejects', () => {
  const status = (): Row[] => mutable<Row[]>(recorded('cluster-status.4node.go-proxmox.json'));

  it('the cluster entry not first', () => {
    const data = status();
    data.push(data.shift() as Row);
    expect(checkClusterStatus(data)).toEqual(['$[4]: the cluster entry must be the first entry']);
  });

  it('booleans, string numbers and id mismatches', () => {
    const data = status();
    (data[0] as Row).quorate = true;
    (data[0] as Row).nodes = '4';
    (data[1] as Row).id = 'node/node9';
    (data[2] as Row).online = '1';
    (data[3] as Row).nodeid = '1';
    expect(checkClusterStatus(data)).toEqual([
      '$[0].quorate: expected 0 or 1, got boolean true',
      '$[0].nodes: expected a JSON integer, got string "4"',
      '$[1].id: expected "node/node2", got string "node/node9"',
      '$[2].online: expected 0 or 1, got string "1"',
      '$[3].nodeid: expected a JSON integer, got string "1"',
    ]);
  });

  it('no local node or two of them', () => {
    const data = status();
    (data[3] as Row).local = 0;
    expect(checkClusterStatus(data)).toEqual(['$: expected exactly one node entry with local:1, found 0']);
    (data[1] as Row).local = 1;
    (data[2] as Row).local = 1;
    expect(checkClusterStatus(data)).toEqual(['$: expected exactly one node entry with local:1, found 2']);
  });
});

describe('checkUpid', () => {
  it('accepts empty ids and token users', () => {
    expect(checkUpid('UPID:pve1:0020C066:042DF204:69C26EB0:vzdump::root@pam:')).toEqual([]);
    expect(checkUpid('UPID:pve1:0003A220:01B2C420:6650A1E0:qmstop:101:sync@pve!daemon:')).toEqual([]);
    expect(checkUpid('UPID:pve1:0003A220:1B2C42001:6650A1E0:qmstop:101:root@pam:')).toEqual([]);
  });

  it('rejects lowercase hex', () => {
    expect(checkUpid('UPID:pve1:0003a1f2:01B2C3D4:6650A1B2:qmstart:100:root@pam:')).toEqual([
      '$: UPID pid field "0003a1f2" must be uppercase hex',
    ]);
  });

  it('rejects a missing trailing colon, short hex and a bad node name', () => {
    for (const upid of [
      'UPID:pve1:0003A1F2:01B2C3D4:6650A1B2:qmstart:100:root@pam',
      'UPID:pve1:3A1F2:01B2C3D4:6650A1B2:qmstart:100:root@pam:',
      'UPID:-pve1:0003A1F2:01B2C3D4:6650A1B2:qmstart:100:root@pam:',
    ]) {
      expect(checkUpid(upid)).toEqual([`$: ${JSON.stringify(upid)} does not match the UPID format`]);
    }
  });
});

describe('task checks reject', () => {
  const clusterTasks = (): Row[] => mutable<Row[]>(dataOf(derived('cluster-tasks.example.json')));
  const taskStatus = (name: string): Row => mutable(dataOf(derived('task-status.examples.json')[name]));

  it('cluster tasks: finished without status, bad saved, fields disagreeing with the UPID', () => {
    const data = clusterTasks();
    delete (data[1] as Row).status;
    (data[1] as Row).saved = 'yes';
    (data[0] as Row).id = '103';
    (data[2] as Row).tokenid = 'other';
    expect(checkClusterTasks(data)).toEqual([
      '$[0].id: string "103" disagrees with the UPID (string "102")',
      '$[1].status: a finished task (endtime set) needs a status string, got nothing',
      '$[1].saved: expected "0", "1", 0 or 1, got string "yes"',
      '$[2].user: "sync@pve!other" disagrees with the UPID user "sync@pve!daemon"',
    ]);
  });

  it('cluster tasks: a running task with a status, and a lowercase UPID', () => {
    const data = clusterTasks();
    (data[0] as Row).status = 'OK';
    (data[1] as Row).upid = 'UPID:pve1:0003a1f2:01B2C3D4:6650A1B2:qmstart:100:root@pam:';
    expect(checkClusterTasks(data)).toEqual([
      '$[0].status: a running task (no endtime) has no status in /cluster/tasks',
      '$[1].upid: UPID pid field "0003a1f2" must be uppercase hex',
    ]);
  });

  it('node tasks: pid and starttime disagreeing with the UPID, missing pstart', () => {
    const data = mutable<Row[]>(recorded('node-tasks.vzdump.home-assistant-core.json'));
    (data[0] as Row).pid = 2146407;
    (data[0] as Row).starttime = 1774350001;
    delete (data[0] as Row).pstart;
    expect(checkNodeTasks(data)).toEqual([
      '$[0].starttime: number 1774350001 disagrees with the UPID (number 1774350000)',
      '$[0].pid: number 2146407 disagrees with the UPID (number 2146406)',
      '$[0].pstart: expected a JSON integer, got nothing',
    ]);
  });

  it('task status: endtime, exitstatus while running, stopped without exitstatus', () => {
    const running = taskStatus('running');
    running.endtime = 1716560309;
    running.exitstatus = 'OK';
    expect(checkTaskStatus(running)).toEqual([
      '$.endtime: task status has no endtime field',
      '$.exitstatus: only present when status is "stopped"',
    ]);
    const stopped = taskStatus('stopped_ok');
    delete stopped.exitstatus;
    stopped.status = 'stopped';
    expect(checkTaskStatus(stopped)).toEqual(['$.exitstatus: a stopped task needs an exitstatus string, got nothing']);
    stopped.status = 'OK';
    expect(checkTaskStatus(stopped)).toEqual(['$.status: expected "running" or "stopped", got string "OK"']);
  });

  it('task log: a gap, a zero line number, a missing text', () => {
    expect(
      checkTaskLog([
        { n: 1, t: 'a' },
        { n: 3, t: 'b' },
      ]),
    ).toEqual(['$[1].n: expected 2, got 3']);
    expect(checkTaskLog([{ n: 0, t: 'a' }])).toEqual(['$[0].n: expected a 1-based line number, got number 0']);
    expect(checkTaskLog([{ n: 51 }])).toEqual(['$[0].t: expected string, got nothing']);
    expect(
      checkTaskLog([
        { n: 51, t: 'page two' },
        { n: 52, t: 'TASK OK' },
      ]),
    ).toEqual([]);
  });
});

describe('checkGuestConfig rejects', () => {
  const vm100 = (): Row => mutable(recorded('qemu-config.vm100.pve8.1.packer-plugin-proxmox.json'));

  it('a vmid key and a non-sha1 digest', () => {
    const data = vm100();
    data.vmid = 100;
    data.digest = 'abc123def456';
    expect(checkGuestConfig(data, 'qemu')).toEqual([
      '$.digest: expected 40 lowercase hex (sha1 of the config file), got string "abc123def456"',
      '$.vmid: a guest config has no vmid key',
    ]);
  });

  it('integer keys as strings and booleans as true/false', () => {
    const data = vm100();
    data.cores = '2';
    data.onboot = true;
    data.numa = '0';
    expect(checkGuestConfig(data, 'qemu')).toEqual([
      '$.cores: expected a JSON integer, got string "2"',
      '$.onboot: expected 0 or 1, got boolean true',
      '$.numa: expected 0 or 1, got string "0"',
    ]);
  });

  it('a lowercase MAC, an unknown NIC model, and a boolean memory', () => {
    const data = vm100();
    data.net0 = 'virtio=bc:24:11:30:ad:93,bridge=vmbr0';
    data.net1 = 'tulip=BC:24:11:30:AD:94,bridge=vmbr0';
    data.memory = true;
    expect(checkGuestConfig(data, 'qemu')).toEqual([
      '$.memory: expected string or integer, got boolean true',
      '$.net0: expected "<model>=<UPPERCASE MAC>,...", got string "virtio=bc:24:11:30:ad:93,bridge=vmbr0"',
      '$.net1: expected "<model>=<UPPERCASE MAC>,...", got string "tulip=BC:24:11:30:AD:94,bridge=vmbr0"',
    ]);
  });

  it('lxc: net without hwaddr, memory as a string', () => {
    const base = { digest: 'a'.repeat(40), hostname: 'ct1', memory: 512, unprivileged: 1 };
    const ok = { ...base, net0: 'name=eth0,bridge=vmbr0,hwaddr=BC:24:11:00:00:01,ip=dhcp,type=veth' };
    expect(checkGuestConfig(ok, 'lxc')).toEqual([]);
    expect(checkGuestConfig({ ...base, memory: '512', net0: 'name=eth0,bridge=vmbr0,ip=dhcp' }, 'lxc')).toEqual([
      '$.memory: expected a JSON integer, got string "512"',
      '$.net0: expected name=... and hwaddr=<UPPERCASE MAC>, got string "name=eth0,bridge=vmbr0,ip=dhcp"',
    ]);
  });
});

describe('checkSnapshotList rejects', () => {
  const snapshots = (): Row[] => mutable<Row[]>(dataOf(derived('snapshot-list.example.json')));

  it('a list without "current"', () => {
    expect(checkSnapshotList(snapshots().slice(0, 2), 'qemu')).toEqual([
      '$: expected exactly one "current" entry, found 0',
    ]);
  });

  it('a hand-written "current" (no digest, no running, other text)', () => {
    const data = snapshots();
    data[2] = { name: 'current', description: 'current state', parent: 'with-ram' };
    expect(checkSnapshotList(data, 'qemu')).toEqual([
      '$[2].digest: expected the 40-hex config digest, got nothing',
      '$[2].running: expected 0 or 1, got nothing',
      '$[2].description: expected "You are here!", got string "current state"',
    ]);
  });

  it('qemu entries without vmstate, lxc entries with it, a dangling parent', () => {
    const data = snapshots();
    delete (data[0] as Row).vmstate;
    (data[1] as Row).parent = 'deleted-one';
    expect(checkSnapshotList(data, 'qemu')).toEqual([
      '$[0].vmstate: expected 0 or 1, got nothing',
      '$[1].parent: string "deleted-one" is not a snapshot in this list',
    ]);
    expect(checkSnapshotList(snapshots(), 'lxc')).toEqual([
      '$[0].vmstate: containers have no RAM state',
      '$[1].vmstate: containers have no RAM state',
    ]);
  });
});

describe('checkNodes, checkNextId, checkErrorResponse reject', () => {
  it('nodes: lowercase fingerprint, wrong id, missing type', () => {
    const data = mutable<Row[]>(recorded('nodes.4node.go-proxmox.json'));
    (data[0] as Row).ssl_fingerprint = String((data[0] as Row).ssl_fingerprint).toLowerCase();
    (data[1] as Row).id = 'node2';
    delete (data[2] as Row).type;
    const problems = checkNodes(data);
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(
      /^\$\[0\]\.ssl_fingerprint: expected 32 colon-separated uppercase hex bytes, got string "80:d4:f2/,
    );
    expect(problems.slice(1)).toEqual([
      '$[1].id: expected "node/node2", got string "node2"',
      '$[2].type: expected "node", got nothing',
    ]);
  });

  it('nextid: a number (what the schema claims) and non-VMIDs', () => {
    expect(checkNextId('100')).toEqual([]);
    expect(checkNextId(100)).toEqual(['$: expected a string of digits, got number 100']);
    expect(checkNextId('099')).toEqual(['$: "099" is not a VMID (100..999999999)']);
    expect(checkNextId('99')).toEqual(['$: "99" is not a VMID (100..999999999)']);
    // The schema and the wire disagree here; the shape check follows the wire.
    expect(schemaProblems('GET /cluster/nextid', '100')).toEqual(['$: expected integer, got string "100"']);
  });

  it('errors: 401 with a body, 400 without errors, bad 403/501 reasons, non-JSON bodies', () => {
    expect(checkErrorResponse(401, 'No ticket', '{"data":null}')).toEqual([
      'body: a 401 has an empty body, got string "{\\"data\\":null}"',
    ]);
    expect(checkErrorResponse(400, 'Parameter verification failed.', '{"data":null}')).toEqual([
      'body.errors: a 400 names the offending parameters in an object, got nothing',
    ]);
    expect(checkErrorResponse(403, 'Permission denied', '{"data":null}')).toEqual([
      'reason: "Permission denied" is not "Permission check failed (/path, Priv.Name[|Priv.Name…])"',
    ]);
    expect(checkErrorResponse(501, 'Not Found', '{"data":null}')).toEqual([
      `reason: "Not Found" is not "Method '<METHOD> /path' not implemented"`,
    ]);
    expect(checkErrorResponse(500, 'boom', '<html>boom</html>')).toEqual([
      'body: a 500 carries a JSON body, got string "<html>boom</html>"',
    ]);
    expect(checkErrorResponse(500, 'boom', '{"data":{}}')).toEqual(['body.data: expected null, got object']);
  });
});

describe('checks for fixtures outside the brief list reject', () => {
  it('storage config: differing digests, boolean shared, content and nodes as lists', () => {
    const data = mutable<Row[]>(recorded('storage-config.GET-storage.DirkTheDaring-px.json'));
    (data[0] as Row).digest = 'b'.repeat(40);
    (data[1] as Row).shared = true;
    (data[2] as Row).content = ['images', 'rootdir'];
    (data[3] as Row).nodes = ['pve1'];
    expect(checkStorageConfig(data)).toEqual([
      '$[1].shared: expected 0 or 1, got boolean true',
      '$[2].content: expected string, got array',
      '$[3].nodes: expected string, got array',
      '$: entries carry different digests; all come from one storage.cfg',
    ]);
  });

  it('the storage config fixture matches the 9.1 schema, which declares only `storage`', () => {
    const data = recorded('storage-config.GET-storage.DirkTheDaring-px.json');
    expect(checkAgainstSchema(data, loadEndpointSchema('GET /storage').returns).undeclared).toContain('$[0].digest');
    const noId = mutable<Row[]>(data);
    delete (noId[0] as Row).storage;
    expect(schemaProblems('GET /storage', noId)).toEqual(['$[0].storage: required property is missing']);
  });

  it('storage status: booleans, string sizes, an active storage that is not enabled, sizes of an inactive one', () => {
    const ok = {
      type: 'lvmthin',
      content: 'rootdir,images',
      active: 1,
      enabled: 1,
      shared: 0,
      total: 100,
      used: 40,
      avail: 60,
    };
    expect(checkStorageStatus(ok)).toEqual([]);
    expect(checkStorageStatus({ ...ok, active: 0, enabled: 0, total: 0, used: 0, avail: 0 })).toEqual([]);
    expect(checkStorageStatus({ ...ok, shared: false, total: '100' })).toEqual([
      '$.shared: expected 0 or 1, got boolean false',
      '$.total: expected a JSON integer, got string "100"',
    ]);
    expect(checkStorageStatus({ ...ok, enabled: 0 })).toEqual([
      '$.active: a storage not enabled on the node is not active, got number 1',
    ]);
    expect(checkStorageStatus({ ...ok, active: 0 })).toEqual([
      '$.total: an inactive storage reports 0, got number 100',
      '$.used: an inactive storage reports 0, got number 40',
      '$.avail: an inactive storage reports 0, got number 60',
    ]);
    // The schema check alone accepts the booleans.
    expect(schemaProblems('GET /nodes/{node}/storage/{storage}/status', { ...ok, shared: false })).toEqual([]);
  });

  it('node network: a numeric vlan-id and a boolean flag', () => {
    const data = mutable<Row[]>(recorded('node-network.go-proxmox.json'));
    (data[1] as Row)['vlan-id'] = 2;
    (data[2] as Row).active = true;
    expect(checkNodeNetwork(data)).toEqual([
      '$[1]["vlan-id"]: expected string, got number 2',
      '$[2].active: expected 0 or 1, got boolean true',
    ]);
  });

  it('guest status/current: running without pid, stopped with pid', () => {
    const data = mutable(recorded('qemu-status-current.running.go-proxmox.json'));
    delete data.pid;
    expect(checkGuestStatusCurrent(data, 'qemu')).toEqual(['$.pid: expected a JSON integer, got nothing']);
    expect(checkGuestStatusCurrent({ vmid: 101, status: 'stopped', pid: 5 }, 'qemu')).toEqual([
      '$.pid: a stopped guest has no pid',
    ]);
  });
});

// ---------------------------------------------------------------------------
// The schema checker itself

describe('checkAgainstSchema', () => {
  const objectSchema: PveSchema = {
    type: 'object',
    properties: {
      vmid: { type: 'integer', minimum: 100, maximum: 999999999 },
      cpu: { type: 'number', optional: 1 },
      template: { type: 'boolean', optional: 1 },
      status: { type: 'string', enum: ['running', 'stopped'], optional: 1 },
      repoid: { type: 'string', pattern: '[0-9a-fA-F]{8,64}', optional: 1 },
      trunks: { type: 'string', pattern: '(?^:\\d+(?:;\\d+)*)', optional: 1 },
      'cgroup-mode': { type: 'integer', optional: 1 },
      'net[n]': { type: 'string', optional: 1, maxLength: 10 },
      extra: { optional: 1 },
      blob: { type: 'object', optional: 1 },
    },
  };

  it('accepts a well-formed value and reports undeclared fields separately', () => {
    const value = { vmid: 100, cpu: 0.5, template: 1, status: 'running', net0: 'virtio', surprise: 1 };
    expect(checkAgainstSchema(value, objectSchema)).toEqual({ problems: [], undeclared: ['$.surprise'] });
  });

  it('reports type mismatches with the JSON path', () => {
    const list: PveSchema = { type: 'array', items: objectSchema };
    const result = checkAgainstSchema([{ vmid: 100 }, { vmid: '113', cpu: '0.1', 'cgroup-mode': 2.5 }], list);
    expect(result.problems).toEqual([
      '$[1].vmid: expected integer, got string "113"',
      '$[1].cpu: expected number, got string "0.1"',
      '$[1]["cgroup-mode"]: expected integer, got number 2.5',
    ]);
  });

  it('booleans accept 0/1 and true/false only', () => {
    for (const ok of [0, 1, true, false]) {
      expect(checkAgainstSchema({ vmid: 100, template: ok }, objectSchema).problems).toEqual([]);
    }
    expect(checkAgainstSchema({ vmid: 100, template: 2 }, objectSchema).problems).toEqual([
      '$.template: expected boolean, got number 2',
    ]);
    expect(checkAgainstSchema({ vmid: 100, template: '1' }, objectSchema).problems).toEqual([
      '$.template: expected boolean, got string "1"',
    ]);
  });

  it('missing required properties, enum, range, anchored and Perl-style patterns, maxLength on net[n]', () => {
    const value = { status: 'paused', repoid: 'xyz0123456789', trunks: '10;20;x', net3: 'virtio=BC:24:11' };
    expect(checkAgainstSchema(value, objectSchema).problems).toEqual([
      '$.vmid: required property is missing',
      '$.status: string "paused" is not one of ["running","stopped"]',
      '$.repoid: string "xyz0123456789" does not match pattern "[0-9a-fA-F]{8,64}"',
      '$.trunks: string "10;20;x" does not match pattern "(?^:\\\\d+(?:;\\\\d+)*)"',
      '$.net3: string longer than maxLength 10',
    ]);
    expect(checkAgainstSchema({ vmid: 99 }, objectSchema).problems).toEqual(['$.vmid: 99 is below minimum 100']);
    expect(checkAgainstSchema({ vmid: 1e9 }, objectSchema).problems).toEqual([
      '$.vmid: 1000000000 is above maximum 999999999',
    ]);
  });

  it('accepts anything where the schema has no type or an object has no properties', () => {
    expect(checkAgainstSchema({ vmid: 100, extra: [1, 'x'], blob: { any: { thing: 1 } } }, objectSchema)).toEqual({
      problems: [],
      undeclared: [],
    });
    expect(checkAgainstSchema('anything', {}).problems).toEqual([]);
  });

  it('treats null on an optional property as absent, but not on a required one', () => {
    expect(checkAgainstSchema({ vmid: 100, cpu: null }, objectSchema).problems).toEqual([]);
    expect(checkAgainstSchema({ vmid: null }, objectSchema).problems).toEqual(['$.vmid: expected integer, got null']);
  });

  it('compiles every pattern used by the returns schemas in pve-schema.json', () => {
    const problems = listSchemaEndpoints().flatMap((endpoint) =>
      collectPatterns(loadEndpointSchema(endpoint).returns).flatMap((pattern) =>
        checkAgainstSchema('', { type: 'string', pattern }).problems.filter((p) => p.includes('cannot be compiled')),
      ),
    );
    expect(problems).toEqual([]);
  });

  it('throws for an endpoint the schema file does not have', () => {
    expect(() => loadEndpointSchema('GET /nodes/{node}/network')).toThrow(/not in src\/sim\/pve-schema.json/);
  });
});

/** Patterns the checker would evaluate: reached through items/properties, not inside `format`. */
function collectPatterns(schema: PveSchema): string[] {
  const own = typeof schema.pattern === 'string' ? [schema.pattern] : [];
  const fromItems = schema.items === undefined ? [] : collectPatterns(schema.items);
  const fromProperties = Object.values(schema.properties ?? {}).flatMap(collectPatterns);
  return [...own, ...fromItems, ...fromProperties];
}
