/**
 * Wire-format rules of the Proxmox VE API that the published schema cannot express:
 * id formats, 0/1 flags, ordering, cross-field agreement. Each check takes the payload
 * (the value of the `data` member of the response envelope) and returns a list of
 * problems; an empty list means the payload looks like real PVE output.
 *
 * Sources are the PVE source code paths cited in the research notes (API-NOTES.md);
 * where a rule was narrowed after reading the source, the comment says why.
 */
import { describeValue, propertyPath } from './schema-check.js';

type Entry = Record<string, unknown>;

// ---------------------------------------------------------------------------
// GET /cluster/resources

/** Emission order of pve-manager Cluster.pm `resources`; sdn and network share the last slot. */
const RESOURCE_GROUP_RANK: Record<string, number> = {
  pool: 0,
  qemu: 1,
  lxc: 1,
  openvz: 1,
  node: 2,
  storage: 3,
  sdn: 4,
  network: 4,
};

/**
 * API2Tools.pm `extract_node_stats` sets uptime/cpu/mem/disk only for an online node, but
 * maxcpu/maxmem/maxdisk/level whenever RRD data exists, so an offline node may keep them.
 */
const ONLINE_ONLY_NODE_STATS = ['uptime', 'cpu', 'mem', 'disk'] as const;

export function checkClusterResources(data: unknown): string[] {
  if (!Array.isArray(data)) return [`$: expected array, got ${describeValue(data)}`];
  const problems: string[] = [];
  data.forEach((entry, index) => checkResourceEntry(entry, `$[${index}]`, problems));
  checkResourceGroupOrder(data, problems);
  checkGuestVmidOrder(data, problems);
  return problems;
}

function checkResourceEntry(entry: unknown, path: string, problems: string[]): void {
  if (!isRecord(entry)) {
    problems.push(`${path}: expected object, got ${describeValue(entry)}`);
    return;
  }
  const type = requireString(entry, 'type', path, problems);
  requireString(entry, 'id', path, problems);
  optionalZeroOne(entry, 'template', path, problems);
  optionalZeroOne(entry, 'shared', path, problems);
  if (entry.vmid !== undefined && !isInteger(entry.vmid)) {
    problems.push(`${propertyPath(path, 'vmid')}: expected a JSON number, got ${describeValue(entry.vmid)}`);
  }
  if (entry.tags !== undefined) checkTagList(entry.tags, propertyPath(path, 'tags'), problems);
  switch (type) {
    case 'qemu':
    case 'lxc':
      checkGuestResource(entry, type, path, problems);
      break;
    case 'node':
      checkNodeResource(entry, path, problems);
      break;
    case 'storage':
      checkIdFromFields(entry, path, problems, ['node', 'storage'], (f) => `storage/${f.node}/${f.storage}`);
      break;
    case 'pool':
      checkIdFromFields(entry, path, problems, ['pool'], (f) => `/pool/${f.pool}`);
      break;
    case 'sdn':
      checkIdFromFields(entry, path, problems, ['node', 'sdn'], (f) => `sdn/${f.node}/${f.sdn}`);
      break;
    case 'network':
      checkNetworkResource(entry, path, problems);
      break;
    case 'openvz':
    case undefined:
      break;
    default:
      problems.push(`${propertyPath(path, 'type')}: unknown resource type ${JSON.stringify(type)}`);
  }
}

function checkGuestResource(entry: Entry, type: string, path: string, problems: string[]): void {
  requireString(entry, 'node', path, problems);
  if (!isInteger(entry.vmid)) {
    if (entry.vmid === undefined) problems.push(`${propertyPath(path, 'vmid')}: missing on a ${type} entry`);
    return;
  }
  const expectedId = `${type}/${entry.vmid}`;
  if (entry.id !== expectedId) {
    problems.push(
      `${propertyPath(path, 'id')}: expected ${JSON.stringify(expectedId)}, got ${describeValue(entry.id)}`,
    );
  }
  // Guest cpu is a fraction of maxcpu (pvestatd), not a percentage or a core count.
  if (entry.cpu !== undefined && !(typeof entry.cpu === 'number' && entry.cpu >= 0 && entry.cpu <= 1)) {
    problems.push(`${propertyPath(path, 'cpu')}: expected a fraction in 0..1, got ${describeValue(entry.cpu)}`);
  }
}

function checkNodeResource(entry: Entry, path: string, problems: string[]): void {
  checkIdFromFields(entry, path, problems, ['node'], (f) => `node/${f.node}`);
  checkOfflineNodeHasNoStats(entry, path, problems);
}

function checkOfflineNodeHasNoStats(entry: Entry, path: string, problems: string[]): void {
  if (entry.status === 'online') return;
  for (const key of ONLINE_ONLY_NODE_STATS) {
    if (entry[key] !== undefined) {
      problems.push(
        `${propertyPath(path, key)}: node with status ${describeValue(entry.status)} must not carry ${key}`,
      );
    }
  }
}

/** PVE 9 network entries: `network/<node>/<network-type>/<network>` per the research notes. */
function checkNetworkResource(entry: Entry, path: string, problems: string[]): void {
  const node = requireString(entry, 'node', path, problems);
  const network = requireString(entry, 'network', path, problems);
  if (node === undefined || network === undefined || typeof entry.id !== 'string') return;
  if (!entry.id.startsWith(`network/${node}/`) || !entry.id.endsWith(`/${network}`)) {
    problems.push(
      `${propertyPath(path, 'id')}: ${describeValue(entry.id)} does not name network ${network} on ${node}`,
    );
  }
}

function checkIdFromFields(
  entry: Entry,
  path: string,
  problems: string[],
  fields: readonly string[],
  build: (values: Record<string, string>) => string,
): void {
  const values: Record<string, string> = {};
  for (const field of fields) {
    const value = requireString(entry, field, path, problems);
    if (value === undefined) return;
    values[field] = value;
  }
  const expected = build(values);
  if (entry.id !== expected) {
    problems.push(`${propertyPath(path, 'id')}: expected ${JSON.stringify(expected)}, got ${describeValue(entry.id)}`);
  }
}

function checkResourceGroupOrder(data: unknown[], problems: string[]): void {
  let highest = -1;
  let highestType = '';
  data.forEach((entry, index) => {
    if (!isRecord(entry) || typeof entry.type !== 'string') return;
    const rank = RESOURCE_GROUP_RANK[entry.type];
    if (rank === undefined) return;
    if (rank < highest) {
      problems.push(
        `$[${index}]: ${entry.type} entry after a ${highestType} entry; PVE emits pools, then guests, then nodes, storages, sdn/network`,
      );
    } else if (rank > highest) {
      highest = rank;
      highestType = entry.type;
    }
  });
}

/** Cluster.pm iterates `sort keys %$idlist`: a string sort, so 1000 comes before 101. */
function checkGuestVmidOrder(data: unknown[], problems: string[]): void {
  let previous: string | undefined;
  data.forEach((entry, index) => {
    if (!isRecord(entry) || (entry.type !== 'qemu' && entry.type !== 'lxc') || !isInteger(entry.vmid)) return;
    const current = String(entry.vmid);
    if (previous !== undefined && !(previous < current)) {
      problems.push(
        `$[${index}].vmid: guest ${current} emitted after ${previous}; guests must be in string-sorted vmid order`,
      );
    }
    previous = current;
  });
}

/**
 * pve-tag format (proxmox-rs pve-api-types): `[a-z0-9_][a-z0-9_\-+.]*`, case-insensitive.
 * `+` is legal, so "go-proxmox+cloud-init" is a single valid tag. Lists are stored
 * `;`-separated; `,` and spaces are also accepted as separators on input.
 */
const TAG_RE = /^[a-z0-9_][a-z0-9_\-+.]*$/i;

function checkTagList(tags: unknown, path: string, problems: string[]): void {
  if (typeof tags !== 'string') {
    problems.push(`${path}: expected string, got ${describeValue(tags)}`);
    return;
  }
  for (const tag of tags.split(/[;, ]+/).filter((t) => t !== '')) {
    if (!TAG_RE.test(tag)) problems.push(`${path}: ${JSON.stringify(tag)} is not a valid pve-tag`);
  }
}

// ---------------------------------------------------------------------------
// GET /cluster/status

export function checkClusterStatus(data: unknown): string[] {
  if (!Array.isArray(data)) return [`$: expected array, got ${describeValue(data)}`];
  const problems: string[] = [];
  let localCount = 0;
  let nodeCount = 0;
  data.forEach((entry, index) => {
    const path = `$[${index}]`;
    if (!isRecord(entry)) {
      problems.push(`${path}: expected object, got ${describeValue(entry)}`);
      return;
    }
    if (entry.type === 'cluster') {
      if (index !== 0) problems.push(`${path}: the cluster entry must be the first entry`);
      checkClusterEntry(entry, path, problems);
    } else if (entry.type === 'node') {
      nodeCount += 1;
      if (entry.local === 1) localCount += 1;
      checkClusterStatusNode(entry, path, problems);
    } else {
      problems.push(`${propertyPath(path, 'type')}: expected "cluster" or "node", got ${describeValue(entry.type)}`);
    }
  });
  // `local` marks the node that answered the request, which is always a member.
  if (nodeCount > 0 && localCount !== 1) {
    problems.push(`$: expected exactly one node entry with local:1, found ${localCount}`);
  }
  return problems;
}

function checkClusterEntry(entry: Entry, path: string, problems: string[]): void {
  if (entry.id !== 'cluster')
    problems.push(`${propertyPath(path, 'id')}: expected "cluster", got ${describeValue(entry.id)}`);
  requireString(entry, 'name', path, problems);
  requireZeroOne(entry, 'quorate', path, problems);
  requireInteger(entry, 'nodes', path, problems);
  requireInteger(entry, 'version', path, problems);
}

function checkClusterStatusNode(entry: Entry, path: string, problems: string[]): void {
  const name = requireString(entry, 'name', path, problems);
  if (name !== undefined && entry.id !== `node/${name}`) {
    problems.push(
      `${propertyPath(path, 'id')}: expected ${JSON.stringify(`node/${name}`)}, got ${describeValue(entry.id)}`,
    );
  }
  requireInteger(entry, 'nodeid', path, problems);
  requireZeroOne(entry, 'online', path, problems);
  requireZeroOne(entry, 'local', path, problems);
  // Cluster.pm sets ip only `if (defined($d->{ip}))`, so it may be absent.
  optionalString(entry, 'ip', path, problems);
}

// ---------------------------------------------------------------------------
// UPIDs and tasks

// Kept byte-for-byte as in pve-common UPID.pm (and API-NOTES), including the redundant \-.
const UPID_RE =
  // eslint-disable-next-line no-useless-escape
  /^UPID:([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$/;

export interface ParsedUpid {
  node: string;
  pid: number;
  pstart: number;
  starttime: number;
  type: string;
  id: string;
  user: string;
  hex: { pid: string; pstart: string; starttime: string };
}

/** Decodes a UPID with the pve-common UPID.pm regex; undefined when it does not match. */
export function parseUpid(upid: string): ParsedUpid | undefined {
  const match = UPID_RE.exec(upid);
  if (match === null) return undefined;
  const [, node, , pid, pstart, starttime, type, id, user] = match;
  if (node === undefined || pid === undefined || pstart === undefined || starttime === undefined) return undefined;
  if (type === undefined || id === undefined || user === undefined) return undefined;
  return {
    node,
    pid: Number.parseInt(pid, 16),
    pstart: Number.parseInt(pstart, 16),
    starttime: Number.parseInt(starttime, 16),
    type,
    id,
    user,
    hex: { pid, pstart, starttime },
  };
}

export function checkUpid(upid: string): string[] {
  return upidProblems(upid, '$');
}

function upidProblems(upid: unknown, path: string): string[] {
  if (typeof upid !== 'string') return [`${path}: expected UPID string, got ${describeValue(upid)}`];
  const parsed = parseUpid(upid);
  if (parsed === undefined) return [`${path}: ${JSON.stringify(upid)} does not match the UPID format`];
  const problems: string[] = [];
  // UPID.pm encodes with sprintf("%08X"); the decode regex is laxer than the encoder.
  for (const [field, hex] of Object.entries(parsed.hex)) {
    if (hex !== hex.toUpperCase())
      problems.push(`${path}: UPID ${field} field ${JSON.stringify(hex)} must be uppercase hex`);
  }
  return problems;
}

/** The fields of a task entry must repeat what its UPID encodes (tasks come from upid_decode). */
function checkUpidAgreement(entry: Entry, path: string, problems: string[]): void {
  if (typeof entry.upid !== 'string') return;
  const parsed = parseUpid(entry.upid);
  if (parsed === undefined) return;
  const expectUpid = (field: string, fromUpid: unknown): void => {
    const actual = entry[field];
    if (actual !== undefined && actual !== fromUpid) {
      problems.push(
        `${propertyPath(path, field)}: ${describeValue(actual)} disagrees with the UPID (${describeValue(fromUpid)})`,
      );
    }
  };
  expectUpid('node', parsed.node);
  expectUpid('type', parsed.type);
  expectUpid('id', parsed.id);
  expectUpid('starttime', parsed.starttime);
  expectUpid('pid', parsed.pid);
  expectUpid('pstart', parsed.pstart);
  // Cluster.pm / Tasks.pm split a token user "user@realm!tok" into user + tokenid.
  if (typeof entry.user === 'string') {
    const combined = typeof entry.tokenid === 'string' ? `${entry.user}!${entry.tokenid}` : entry.user;
    if (combined !== parsed.user) {
      problems.push(
        `${propertyPath(path, 'user')}: ${JSON.stringify(combined)} disagrees with the UPID user ${JSON.stringify(parsed.user)}`,
      );
    }
  }
}

/** Fields every task list entry carries, running or finished. */
function checkTaskIdentity(entry: Entry, path: string, problems: string[]): void {
  problems.push(...upidProblems(entry.upid, propertyPath(path, 'upid')));
  requireString(entry, 'node', path, problems);
  requireInteger(entry, 'starttime', path, problems);
  requireString(entry, 'type', path, problems);
  requireString(entry, 'id', path, problems);
  requireString(entry, 'user', path, problems);
  optionalString(entry, 'tokenid', path, problems);
  checkUpidAgreement(entry, path, problems);
}

function checkTaskEnd(entry: Entry, path: string, problems: string[]): void {
  if (entry.endtime === undefined) return;
  if (!isInteger(entry.endtime)) {
    problems.push(`${propertyPath(path, 'endtime')}: expected integer, got ${describeValue(entry.endtime)}`);
  } else if (isInteger(entry.starttime) && entry.endtime < entry.starttime) {
    problems.push(`${propertyPath(path, 'endtime')}: ends before it starts`);
  }
  if (typeof entry.status !== 'string') {
    problems.push(
      `${propertyPath(path, 'status')}: a finished task (endtime set) needs a status string, got ${describeValue(entry.status)}`,
    );
  }
}

export function checkClusterTasks(data: unknown): string[] {
  return checkEachEntry(data, (entry, path, problems) => {
    checkTaskIdentity(entry, path, problems);
    checkTaskEnd(entry, path, problems);
    // The tasklist kv only carries a status once the worker has finished.
    if (entry.status !== undefined && entry.endtime === undefined) {
      problems.push(`${propertyPath(path, 'status')}: a running task (no endtime) has no status in /cluster/tasks`);
    }
    if (entry.pid !== undefined && !isInteger(entry.pid)) {
      problems.push(`${propertyPath(path, 'pid')}: expected integer, got ${describeValue(entry.pid)}`);
    }
    // "0"/"1" when read back from the active file, a number when just archived.
    if (entry.saved !== undefined && !isSavedFlag(entry.saved)) {
      problems.push(`${propertyPath(path, 'saved')}: expected "0", "1", 0 or 1, got ${describeValue(entry.saved)}`);
    }
  });
}

function isSavedFlag(value: unknown): boolean {
  return value === '0' || value === '1' || value === 0 || value === 1;
}

export function checkNodeTasks(data: unknown): string[] {
  const problems = checkEachEntry(data, (entry, path, entryProblems) => {
    checkTaskIdentity(entry, path, entryProblems);
    requireInteger(entry, 'pid', path, entryProblems);
    requireInteger(entry, 'pstart', path, entryProblems);
    checkTaskEnd(entry, path, entryProblems);
  });
  if (Array.isArray(data)) {
    // The list is read from one node's task index.
    const nodes = new Set(data.filter(isRecord).map((entry) => entry.node));
    if (nodes.size > 1) problems.push(`$: entries come from more than one node: ${JSON.stringify([...nodes])}`);
  }
  return problems;
}

export function checkTaskStatus(data: unknown): string[] {
  if (!isRecord(data)) return [`$: expected object, got ${describeValue(data)}`];
  const problems: string[] = [];
  checkTaskIdentity(data, '$', problems);
  requireInteger(data, 'pid', '$', problems);
  requireInteger(data, 'pstart', '$', problems);
  // Tasks.pm read_task_status never adds endtime; clients must not wait for one.
  if (Object.hasOwn(data, 'endtime')) problems.push('$.endtime: task status has no endtime field');
  if (data.status === 'running') {
    if (data.exitstatus !== undefined) problems.push('$.exitstatus: only present when status is "stopped"');
  } else if (data.status === 'stopped') {
    if (typeof data.exitstatus !== 'string') {
      problems.push(`$.exitstatus: a stopped task needs an exitstatus string, got ${describeValue(data.exitstatus)}`);
    }
  } else {
    problems.push(`$.status: expected "running" or "stopped", got ${describeValue(data.status)}`);
  }
  return problems;
}

export function checkTaskLog(data: unknown): string[] {
  if (!Array.isArray(data)) return [`$: expected array, got ${describeValue(data)}`];
  const problems: string[] = [];
  let expectedN: number | undefined;
  data.forEach((line, index) => {
    const path = `$[${index}]`;
    if (!isRecord(line)) {
      problems.push(`${path}: expected object, got ${describeValue(line)}`);
      return;
    }
    requireString(line, 't', path, problems);
    if (!isInteger(line.n) || line.n < 1) {
      problems.push(`${path}.n: expected a 1-based line number, got ${describeValue(line.n)}`);
      expectedN = undefined;
      return;
    }
    // A page may start anywhere (start=N), but lines within it are consecutive.
    if (expectedN !== undefined && line.n !== expectedN) {
      problems.push(`${path}.n: expected ${expectedN}, got ${line.n}`);
    }
    expectedN = line.n + 1;
  });
  return problems;
}

// ---------------------------------------------------------------------------
// Guest config and snapshots

const DIGEST_RE = /^[0-9a-f]{40}$/;

/** Model names of the qemu `net[n]` property string (enum in the PVE 9.1 schema). */
const QEMU_NIC_MODELS = [
  'e1000',
  'e1000-82540em',
  'e1000-82544gc',
  'e1000-82545em',
  'e1000e',
  'i82551',
  'i82557b',
  'i82559er',
  'ne2k_isa',
  'ne2k_pci',
  'pcnet',
  'rtl8139',
  'virtio',
  'vmxnet3',
];
const QEMU_NET_RE = new RegExp(`^(${QEMU_NIC_MODELS.join('|')})=([0-9A-F]{2}:){5}[0-9A-F]{2}(,|$)`);
const LXC_NET_NAME_RE = /(^|,)name=[^,]+/;
const LXC_NET_HWADDR_RE = /(^|,)hwaddr=([0-9A-F]{2}:){5}[0-9A-F]{2}(,|$)/;

/** QemuServer.pm / LXC Config check_type: integer keys are int(), booleans 1/0. */
const CONFIG_INTEGER_KEYS = {
  qemu: ['cores', 'sockets', 'balloon', 'cpuunits', 'vcpus'],
  lxc: ['cores', 'memory', 'swap', 'cpuunits'],
};
const CONFIG_BOOLEAN_KEYS = {
  qemu: ['onboot', 'numa', 'template', 'kvm', 'acpi', 'tablet', 'protection'],
  lxc: ['onboot', 'template', 'unprivileged', 'protection', 'console'],
};

export function checkGuestConfig(data: unknown, type: 'qemu' | 'lxc'): string[] {
  if (!isRecord(data)) return [`$: expected object, got ${describeValue(data)}`];
  const problems: string[] = [];
  if (typeof data.digest !== 'string' || !DIGEST_RE.test(data.digest)) {
    problems.push(`$.digest: expected 40 lowercase hex (sha1 of the config file), got ${describeValue(data.digest)}`);
  }
  // The config file has no vmid line; the vmid lives only in the URL.
  if (Object.hasOwn(data, 'vmid')) problems.push('$.vmid: a guest config has no vmid key');
  for (const key of CONFIG_INTEGER_KEYS[type]) optionalInteger(data, key, '$', problems);
  for (const key of CONFIG_BOOLEAN_KEYS[type]) optionalZeroOne(data, key, '$', problems);
  if (data.tags !== undefined) checkTagList(data.tags, '$.tags', problems);
  if (type === 'qemu') checkQemuConfigValues(data, problems);
  else checkLxcConfigValues(data, problems);
  return problems;
}

function checkQemuConfigValues(data: Entry, problems: string[]): void {
  // A number up to PVE 8.0, a property string ("2048") since 8.1 (pve-qm-memory).
  const memory = data.memory;
  if (memory !== undefined && !isInteger(memory) && typeof memory !== 'string') {
    problems.push(`$.memory: expected string or integer, got ${describeValue(memory)}`);
  }
  for (const [key, value] of Object.entries(data)) {
    if (!/^net\d+$/.test(key)) continue;
    if (typeof value !== 'string' || !QEMU_NET_RE.test(value)) {
      problems.push(`${propertyPath('$', key)}: expected "<model>=<UPPERCASE MAC>,...", got ${describeValue(value)}`);
    }
  }
}

function checkLxcConfigValues(data: Entry, problems: string[]): void {
  for (const [key, value] of Object.entries(data)) {
    if (!/^net\d+$/.test(key)) continue;
    if (typeof value !== 'string' || !LXC_NET_NAME_RE.test(value) || !LXC_NET_HWADDR_RE.test(value)) {
      problems.push(
        `${propertyPath('$', key)}: expected name=... and hwaddr=<UPPERCASE MAC>, got ${describeValue(value)}`,
      );
    }
  }
}

export function checkSnapshotList(data: unknown, type: 'qemu' | 'lxc'): string[] {
  if (!Array.isArray(data)) return [`$: expected array, got ${describeValue(data)}`];
  const problems: string[] = [];
  const names = new Set(data.filter(isRecord).map((entry) => entry.name));
  let currentCount = 0;
  data.forEach((entry, index) => {
    const path = `$[${index}]`;
    if (!isRecord(entry)) {
      problems.push(`${path}: expected object, got ${describeValue(entry)}`);
      return;
    }
    requireString(entry, 'name', path, problems);
    requireString(entry, 'description', path, problems);
    if (entry.parent !== undefined && !names.has(entry.parent)) {
      problems.push(`${path}.parent: ${describeValue(entry.parent)} is not a snapshot in this list`);
    }
    if (entry.name === 'current') {
      currentCount += 1;
      checkCurrentSnapshotEntry(entry, path, problems);
    } else {
      checkRealSnapshotEntry(entry, type, path, problems);
    }
  });
  if (currentCount !== 1) problems.push(`$: expected exactly one "current" entry, found ${currentCount}`);
  return problems;
}

function checkCurrentSnapshotEntry(entry: Entry, path: string, problems: string[]): void {
  if (typeof entry.digest !== 'string' || !DIGEST_RE.test(entry.digest)) {
    problems.push(`${path}.digest: expected the 40-hex config digest, got ${describeValue(entry.digest)}`);
  }
  requireZeroOne(entry, 'running', path, problems);
  if (entry.description !== 'You are here!') {
    problems.push(`${path}.description: expected "You are here!", got ${describeValue(entry.description)}`);
  }
}

function checkRealSnapshotEntry(entry: Entry, type: 'qemu' | 'lxc', path: string, problems: string[]): void {
  optionalInteger(entry, 'snaptime', path, problems);
  if (type === 'qemu') {
    // qemu-server snapshot_list always sets vmstate => ($d->{vmstate} ? 1 : 0).
    requireZeroOne(entry, 'vmstate', path, problems);
  } else if (entry.vmstate !== undefined) {
    problems.push(`${path}.vmstate: containers have no RAM state`);
  }
}

// ---------------------------------------------------------------------------
// GET /nodes, GET /cluster/nextid

const SSL_FINGERPRINT_RE = /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/;

export function checkNodes(data: unknown): string[] {
  return checkEachEntry(data, (entry, path, problems) => {
    if (entry.type !== 'node') problems.push(`${path}.type: expected "node", got ${describeValue(entry.type)}`);
    checkIdFromFields(entry, path, problems, ['node'], (f) => `node/${f.node}`);
    requireString(entry, 'status', path, problems);
    checkOfflineNodeHasNoStats(entry, path, problems);
    const fingerprint = entry.ssl_fingerprint;
    if (fingerprint !== undefined && !(typeof fingerprint === 'string' && SSL_FINGERPRINT_RE.test(fingerprint))) {
      problems.push(
        `${path}.ssl_fingerprint: expected 32 colon-separated uppercase hex bytes, got ${describeValue(fingerprint)}`,
      );
    }
  });
}

/** The schema says integer, but Cluster.pm returns a loop variable Perl has stringified. */
export function checkNextId(data: unknown): string[] {
  if (typeof data !== 'string') return [`$: expected a string of digits, got ${describeValue(data)}`];
  if (!/^[1-9][0-9]{2,8}$/.test(data)) return [`$: ${JSON.stringify(data)} is not a VMID (100..999999999)`];
  return [];
}

// ---------------------------------------------------------------------------
// Error responses

// `check_any` (RPCEnvironment.pm) lists the alternatives joined with `|`.
const PERMISSION_REASON_RE = /^Permission check failed \(\/[^,]*, [A-Za-z.]+(\|[A-Za-z.]+)*\)$/;
const NOT_IMPLEMENTED_REASON_RE = /^Method '(GET|POST|PUT|DELETE) \/.*' not implemented$/;

/**
 * `reason` is the HTTP reason phrase (first line of the PVE error message); `body` the raw
 * response body. 595 comes from the proxy layer and has no documented body, so only the
 * reason is checked for it.
 */
export function checkErrorResponse(status: number, reason: string, body: string): string[] {
  const problems: string[] = [];
  if (/[\r\n]/.test(reason)) problems.push('reason: the reason phrase is one line');
  if (status === 401) {
    // HTTPServer.pm answers auth failures with a bare HTTP::Response.
    if (body !== '') problems.push(`body: a 401 has an empty body, got ${describeValue(body)}`);
    return problems;
  }
  if (status === 403 && !PERMISSION_REASON_RE.test(reason)) {
    problems.push(`reason: ${JSON.stringify(reason)} is not "Permission check failed (/path, Priv.Name[|Priv.Name…])"`);
  }
  if (status === 501 && !NOT_IMPLEMENTED_REASON_RE.test(reason)) {
    problems.push(`reason: ${JSON.stringify(reason)} is not "Method '<METHOD> /path' not implemented"`);
  }
  if ([400, 403, 500, 501].includes(status)) problems.push(...checkJsonErrorBody(status, body));
  return problems;
}

function checkJsonErrorBody(status: number, body: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return [`body: a ${status} carries a JSON body, got ${describeValue(body)}`];
  }
  if (!isRecord(parsed)) return [`body: expected a JSON object, got ${describeValue(parsed)}`];
  const problems: string[] = [];
  if (parsed.data !== null) problems.push(`body.data: expected null, got ${describeValue(parsed.data)}`);
  // Added in libpve-http-server-perl 5.2.0 (PVE 8.3+); older versions omit it.
  if (parsed.message !== undefined && typeof parsed.message !== 'string') {
    problems.push(`body.message: expected string, got ${describeValue(parsed.message)}`);
  }
  if (status === 400 && !isRecord(parsed.errors)) {
    problems.push(
      `body.errors: a 400 names the offending parameters in an object, got ${describeValue(parsed.errors)}`,
    );
  }
  return problems;
}

// ---------------------------------------------------------------------------
// Endpoints without a brief-listed rule set, covered so every recorded fixture is checked

/** GET /storage: one entry per storage.cfg section, all carrying the file's digest. */
export function checkStorageConfig(data: unknown): string[] {
  const problems = checkEachEntry(data, (entry, path, entryProblems) => {
    requireString(entry, 'storage', path, entryProblems);
    requireString(entry, 'type', path, entryProblems);
    if (typeof entry.digest !== 'string' || !DIGEST_RE.test(entry.digest)) {
      entryProblems.push(`${path}.digest: expected 40 lowercase hex, got ${describeValue(entry.digest)}`);
    }
    optionalZeroOne(entry, 'shared', path, entryProblems);
    optionalZeroOne(entry, 'disable', path, entryProblems);
    // Plugin.pm encode_value joins both lists with commas.
    optionalString(entry, 'content', path, entryProblems);
    optionalString(entry, 'nodes', path, entryProblems);
  });
  if (Array.isArray(data)) {
    const digests = new Set(data.filter(isRecord).map((entry) => entry.digest));
    if (digests.size > 1) problems.push('$: entries carry different digests; all come from one storage.cfg');
  }
  return problems;
}

const STORAGE_SIZES = ['total', 'used', 'avail'] as const;

/**
 * GET /nodes/{node}/storage/{storage}/status (Storage.pm `storage_info`, which sets every field):
 * flags are 0/1, sizes integers. storage_info asks the plugin only for storages enabled on the
 * node and fills the sizes only when the plugin says active, so not enabled means not active, and
 * not active means zero sizes.
 */
export function checkStorageStatus(data: unknown): string[] {
  if (!isRecord(data)) return [`$: expected object, got ${describeValue(data)}`];
  const problems: string[] = [];
  requireString(data, 'type', '$', problems);
  requireString(data, 'content', '$', problems);
  for (const key of ['active', 'enabled', 'shared']) requireZeroOne(data, key, '$', problems);
  for (const key of STORAGE_SIZES) requireInteger(data, key, '$', problems);
  if (data.enabled === 0 && data.active !== 0)
    problems.push(`$.active: a storage not enabled on the node is not active, got ${describeValue(data.active)}`);
  if (data.active === 0) {
    for (const key of STORAGE_SIZES) {
      if (isInteger(data[key]) && data[key] !== 0)
        problems.push(`$.${key}: an inactive storage reports 0, got ${describeValue(data[key])}`);
    }
  }
  return problems;
}

/**
 * GET /nodes/{node}/network. Values parsed from /etc/network/interfaces text stay
 * strings (`vlan-id`, `bridge_fd`). `exists` is null on the recorded VLANs on top of a
 * bridge (Perl undef), so null is accepted there.
 */
export function checkNodeNetwork(data: unknown): string[] {
  return checkEachEntry(data, (entry, path, problems) => {
    requireString(entry, 'iface', path, problems);
    requireString(entry, 'type', path, problems);
    optionalInteger(entry, 'priority', path, problems);
    for (const key of ['active', 'autostart', 'bridge_vlan_aware']) optionalZeroOne(entry, key, path, problems);
    if (entry.exists !== null) optionalZeroOne(entry, 'exists', path, problems);
    for (const key of ['vlan-id', 'bridge_fd']) optionalString(entry, key, path, problems);
    if (entry.families !== undefined && !isStringArray(entry.families)) {
      problems.push(`${path}.families: expected an array of strings, got ${describeValue(entry.families)}`);
    }
  });
}

/** GET /nodes/{node}/{qemu|lxc}/{vmid}/status/current. */
export function checkGuestStatusCurrent(data: unknown, type: 'qemu' | 'lxc'): string[] {
  if (!isRecord(data)) return [`$: expected object, got ${describeValue(data)}`];
  const problems: string[] = [];
  requireInteger(data, 'vmid', '$', problems);
  if (data.status === 'running') {
    requireInteger(data, 'pid', '$', problems);
  } else if (data.status === 'stopped') {
    if (data.pid !== undefined) problems.push('$.pid: a stopped guest has no pid');
  } else {
    problems.push(`$.status: expected "running" or "stopped", got ${describeValue(data.status)}`);
  }
  optionalZeroOne(data, 'template', '$', problems);
  if (type === 'qemu') optionalZeroOne(data, 'agent', '$', problems);
  if (data.ha !== undefined) {
    if (isRecord(data.ha)) optionalZeroOne(data.ha, 'managed', '$.ha', problems);
    else problems.push(`$.ha: expected object, got ${describeValue(data.ha)}`);
  }
  return problems;
}

// ---------------------------------------------------------------------------
// GET /access/permissions

/** An ACL path: `/`, or `/a/b` without a trailing slash (AccessControl.pm `normalize_path`). */
const ACL_PATH_RE = /^\/([^/\s]+(\/[^/\s]+)*)?$/;
/** `VM.Audit`, `VM.GuestAgent.Audit`, `Permissions.Modify`: a group, a dot, a name. */
const PRIVILEGE_RE = /^[A-Z][A-Za-z]*(\.[A-Z][A-Za-z]*)+$/;

/**
 * GET /access/permissions (API2/AccessControl.pm `permissions`): ACL path → privilege →
 * propagate flag. The flag is a number: user.cfg's parser stores `$propagate ? 1 : 0`, root gets
 * 1, pool-derived roles 0. Without `?path=`, RPCEnvironment.pm `get_effective_permissions` leaves
 * out every path where nothing is held; with it, the answer is that one path, empty or not.
 */
export function checkAccessPermissions(data: unknown, requestedPath?: string): string[] {
  if (!isRecord(data)) return [`$: expected object, got ${describeValue(data)}`];
  const problems: string[] = [];
  if (requestedPath !== undefined && JSON.stringify(Object.keys(data)) !== JSON.stringify([requestedPath])) {
    problems.push(`$: ?path=${requestedPath} answers that path only, got ${JSON.stringify(Object.keys(data))}`);
  }
  for (const [path, privileges] of Object.entries(data)) {
    const at = propertyPath('$', path);
    if (!ACL_PATH_RE.test(path)) problems.push(`${at}: ${JSON.stringify(path)} is not an ACL path`);
    if (!isRecord(privileges)) {
      problems.push(`${at}: expected object, got ${describeValue(privileges)}`);
      continue;
    }
    if (requestedPath === undefined && Object.keys(privileges).length === 0)
      problems.push(`${at}: a path without privileges is left out`);
    for (const name of Object.keys(privileges)) {
      if (!PRIVILEGE_RE.test(name))
        problems.push(`${propertyPath(at, name)}: ${JSON.stringify(name)} is not a privilege name`);
      requireZeroOne(privileges, name, at, problems);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------
// Helpers

function checkEachEntry(data: unknown, check: (entry: Entry, path: string, problems: string[]) => void): string[] {
  if (!Array.isArray(data)) return [`$: expected array, got ${describeValue(data)}`];
  const problems: string[] = [];
  data.forEach((entry, index) => {
    const path = `$[${index}]`;
    if (isRecord(entry)) check(entry, path, problems);
    else problems.push(`${path}: expected object, got ${describeValue(entry)}`);
  });
  return problems;
}

function isRecord(value: unknown): value is Entry {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isInteger(value: unknown): value is number {
  return Number.isInteger(value);
}

function isStringArray(value: unknown): boolean {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

function requireString(entry: Entry, key: string, path: string, problems: string[]): string | undefined {
  const value = entry[key];
  if (typeof value === 'string') return value;
  problems.push(`${propertyPath(path, key)}: expected string, got ${describeValue(value)}`);
  return undefined;
}

function optionalString(entry: Entry, key: string, path: string, problems: string[]): void {
  if (entry[key] !== undefined) requireString(entry, key, path, problems);
}

function requireInteger(entry: Entry, key: string, path: string, problems: string[]): void {
  if (!isInteger(entry[key])) {
    problems.push(`${propertyPath(path, key)}: expected a JSON integer, got ${describeValue(entry[key])}`);
  }
}

function optionalInteger(entry: Entry, key: string, path: string, problems: string[]): void {
  if (entry[key] !== undefined) requireInteger(entry, key, path, problems);
}

/** PVE booleans travel as the numbers 0 and 1, never true/false or "1". */
function requireZeroOne(entry: Entry, key: string, path: string, problems: string[]): void {
  const value = entry[key];
  if (value !== 0 && value !== 1) {
    problems.push(`${propertyPath(path, key)}: expected 0 or 1, got ${describeValue(value)}`);
  }
}

function optionalZeroOne(entry: Entry, key: string, path: string, problems: string[]): void {
  if (entry[key] !== undefined) requireZeroOne(entry, key, path, problems);
}
