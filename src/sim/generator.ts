/**
 * A deterministic cluster: the same seed and sizes always give the same nodes, guests, configs,
 * tags, pools, locks, HA resources and storage. Sizes from 1 to tens of thousands of guests.
 *
 * Two profiles. `realistic` (the default) sizes each node to the guests placed on it, as a cluster
 * that grew looks: 2–6 vCPUs per physical thread, configured guest memory 0.6–1.3× physical, a
 * few nodes fuller than the rest, guest sizes that lean small, `onboot` on most production guests
 * and none on templates or dev/staging guests. `dense` is the generator as it was before: node
 * sizes drawn from a short list whatever the guest count (30–105× vCPU overcommit at 10,000
 * guests on 16 nodes) and every running guest counted at 60 % of its memory (nodes at 100 %).
 * Both profiles draw names, types, status, tags, pools, locks, disks and snapshots from the same
 * random sequence, so a seed gives the same guests in either; sizes, placement and onboot differ.
 */
import { formatSize, type ConfigValues } from './guest-config.js';
import { between, createRng, macAddress, pick, type Rng } from './random.js';
import { SimCluster, type SimGuest, type SimProfile } from './state.js';

export type { SimProfile };
export const SIM_PROFILES: readonly SimProfile[] = ['realistic', 'dense'];

export interface GenerateOptions {
  seed?: number;
  /** `realistic` (default) or `dense`, the old extremes (see the file comment). */
  profile?: SimProfile;
  nodes?: number;
  guests?: number;
  /** Share of guests that are LXC containers. */
  lxcRatio?: number;
  clusterName?: string;
  pveVersion?: string;
  taskDelayMs?: number;
  statusLagMs?: number;
}

const ROLES = [
  'web',
  'db',
  'cache',
  'api',
  'worker',
  'k8s-node',
  'ci-runner',
  'mon',
  'proxy',
  'mail',
  'dns',
  'files',
  'vpn',
  'log',
  'build',
];
const TAGS = [
  'prod',
  'staging',
  'dev',
  'backup',
  'k8s',
  'critical',
  'linux',
  'windows',
  'team-a',
  'team-b',
  'pci',
  'legacy',
];
const POOLS = ['prod', 'staging', 'dev', 'infra'];
// Values of the schema's `ostype` enums (Rocky Linux containers use `centos`; Windows Server 2022 guests `win11`).
const LXC_OS = ['debian', 'ubuntu', 'alpine', 'centos'];
const QEMU_OS = ['l26', 'l26', 'l26', 'win11', 'win10'];

/**
 * Guest sizes per profile, one draw each. Realistic ones lean small, as most clusters' do:
 * containers 1–2 cores and 0.5–2 GiB, VMs 2–4 cores and 2–8 GiB, a few large ones.
 */
const SIZES: Record<SimProfile, Record<'qemu' | 'lxc', { cores: number[]; memoryMiB: number[] }>> = {
  realistic: {
    qemu: { cores: [1, 2, 2, 2, 2, 4, 4, 4, 8, 8], memoryMiB: [1024, 2048, 2048, 4096, 4096, 4096, 8192, 8192, 16384] },
    lxc: { cores: [1, 1, 2, 2, 2, 4], memoryMiB: [512, 1024, 1024, 2048, 2048, 4096] },
  },
  dense: {
    qemu: { cores: [1, 2, 2, 4, 4, 8, 16], memoryMiB: [512, 1024, 2048, 4096, 8192, 16384] },
    lxc: { cores: [1, 2, 2, 4, 4, 8, 16], memoryMiB: [512, 1024, 2048, 4096, 8192, 16384] },
  },
};

/** Pools and tags that mark a guest as not production: no `onboot` for these in the realistic profile. */
const TEST_MARKS = new Set(['dev', 'staging']);

const uuid = (rng: Rng): string => {
  const hex = Array.from({ length: 32 }, () => between(rng, 0, 15).toString(16)).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
};

/**
 * Local storage per node plus two shared pools, as a typical Ceph + NFS cluster has. Sizes are set
 * once guests exist. The plugin keys are those the installer (local, local-lvm), pveceph (an RBD
 * pool with `krbd 0`) and the NFS dialog write to storage.cfg.
 */
function addStorage(cluster: SimCluster): void {
  const all = cluster.nodes.map((n) => n.name);
  cluster.storages.push(
    {
      storage: 'local',
      plugintype: 'dir',
      content: 'iso,vztmpl,backup',
      shared: false,
      nodes: all,
      maxdisk: 100 * 2 ** 30,
      baseUsed: 18 * 2 ** 30,
      config: { path: '/var/lib/vz' },
    },
    {
      storage: 'local-lvm',
      plugintype: 'lvmthin',
      content: 'rootdir,images',
      shared: false,
      nodes: all,
      maxdisk: 0,
      baseUsed: 0,
      config: { thinpool: 'data', vgname: 'pve' },
    },
    {
      storage: 'ceph-vm',
      plugintype: 'rbd',
      content: 'rootdir,images',
      shared: true,
      nodes: all,
      maxdisk: 0,
      baseUsed: 0,
      config: { krbd: 0, pool: 'ceph-vm' },
    },
    {
      storage: 'nfs-backup',
      plugintype: 'nfs',
      content: 'backup,iso,vztmpl',
      shared: true,
      nodes: all,
      maxdisk: 40 * 2 ** 40,
      baseUsed: 22 * 2 ** 40,
      // 192.0.2.0/24 is TEST-NET-1, like the node addresses.
      config: {
        export: '/export/pve-backup',
        options: 'vers=4.2',
        path: '/mnt/pve/nfs-backup',
        'prune-backups': 'keep-last=7',
        server: '192.0.2.250',
      },
    },
  );
}

/**
 * Sizes guest storage to the guests on it, the way clusters grow: local-lvm at most ~70 % full on
 * the busiest node, and the shared Ceph pool at ~88 %, above the 85 % an operator watches for.
 */
function sizeGuestStorage(cluster: SimCluster): void {
  const usage = cluster.storageUsage();
  const TiB = 2 ** 40;
  const fit = (used: number, fill: number, min: number): number => Math.max(min, Math.ceil(used / fill / TiB) * TiB);
  for (const s of cluster.storages) {
    if (s.storage === 'local-lvm')
      s.maxdisk = fit(Math.max(...s.nodes.map((n) => usage.get(`${n}/${s.storage}`) ?? 0)), 0.7, 2 * TiB);
    if (s.storage === 'ceph-vm') s.maxdisk = Math.max(4 * TiB, Math.ceil((usage.get(s.storage) ?? 0) / 0.88));
  }
}

/** `x` rounded up to three significant bits (64, 72, 80, … 128, 144, …): at most 12.5 % more. */
function roundUpToSize(x: number, min: number, even = false): number {
  const v = Math.max(min, x);
  const step = Math.max(even ? 2 : 1, 2 ** (Math.floor(Math.log2(v)) - 3));
  return Math.ceil(v / step) * step;
}

/**
 * Sizes every node to the guests placed on it, as a cluster that grew is sized: configured memory
 * of its non-template guests at 0.7–0.9× physical (1.08–1.25× on the few fuller nodes, about one
 * in four), vCPUs at 2.8–4.4× its threads (4.6–5.6× on the fuller ones). Rounding the hardware up
 * to a plausible size lowers each ratio by at most 12.5 % (up to 25 % under 16 threads), so every
 * node stays within 2–6× vCPU overcommit and 0.6–1.3× memory once it holds a handful of guests
 * (checked for 500 seeds at 30 guests on 3 nodes). A node is never smaller than its largest guest,
 * nor than 4 threads and 8 GiB.
 */
function sizeNodes(cluster: SimCluster, rng: Rng): void {
  const GiB = 2 ** 30;
  const fullerCount = cluster.nodes.length > 1 ? Math.max(1, Math.round(cluster.nodes.length / 4)) : 0;
  const order = cluster.nodes.map((n) => ({ n, key: rng() })).sort((a, b) => a.key - b.key);
  const fuller = new Set(order.slice(0, fullerCount).map((o) => o.n.name));
  const alloc = new Map(cluster.nodes.map((n) => [n.name, { cpu: 0, mem: 0, maxCpu: 1, maxMem: 0 }]));
  for (const g of cluster.guests.values()) {
    if (g.values.template === '1') continue;
    const a = alloc.get(g.node)!;
    const cpu = cluster.maxcpu(g);
    const mem = cluster.maxmem(g);
    a.cpu += cpu;
    a.mem += mem;
    a.maxCpu = Math.max(a.maxCpu, cpu);
    a.maxMem = Math.max(a.maxMem, mem);
  }
  for (const node of cluster.nodes) {
    const a = alloc.get(node.name)!;
    const full = fuller.has(node.name);
    const memRatio = full ? 1.08 + rng() * 0.17 : 0.7 + rng() * 0.2;
    const cpuRatio = full ? 4.6 + rng() * 1.0 : 2.8 + rng() * 1.6;
    node.maxmem = roundUpToSize(Math.max(a.mem / memRatio, a.maxMem + 4 * GiB) / GiB, 8) * GiB;
    node.maxcpu = roundUpToSize(Math.max(a.cpu / cpuRatio, a.maxCpu), 4, true);
  }
  // An LXC guest without `cores` counts the node's threads: derived values are read afresh.
  for (const g of cluster.guests.values()) cluster.changed(g);
}

export function qemuValues(
  rng: Rng,
  vmid: number,
  name: string,
  opts: { cores: number; memoryMiB: number; diskGiB: number; storage: string; template?: boolean },
): ConfigValues {
  const vlan = rng() < 0.4 ? `,tag=${between(rng, 10, 40)}` : '';
  const values: ConfigValues = {
    boot: 'order=scsi0;ide2;net0',
    cores: String(opts.cores),
    cpu: 'x86-64-v2-AES',
    ide2: 'none,media=cdrom',
    memory: String(opts.memoryMiB),
    meta: `creation-qemu=9.0.2,ctime=${1_700_000_000 + vmid * 97}`,
    name,
    net0: `virtio=${macAddress(rng)},bridge=vmbr0,firewall=1${vlan}`,
    numa: '0',
    ostype: pick(rng, QEMU_OS),
    scsi0: `${opts.storage}:${opts.template ? 'base' : 'vm'}-${vmid}-disk-0,iothread=1,size=${formatSize(opts.diskGiB * 2 ** 30)}`,
    scsihw: 'virtio-scsi-single',
    smbios1: `uuid=${uuid(rng)}`,
    sockets: '1',
    vmgenid: uuid(rng),
  };
  if (rng() < 0.6) values.agent = '1';
  if (rng() < 0.5) values.onboot = '1';
  if (rng() < 0.3) values.balloon = String(Math.floor(opts.memoryMiB / 2));
  if (rng() < 0.4)
    values.ipconfig0 = `ip=10.${between(rng, 10, 40)}.${between(rng, 0, 255)}.${between(rng, 2, 254)}/24,gw=10.20.0.1`;
  if (rng() < 0.15) values.net1 = `virtio=${macAddress(rng)},bridge=vmbr1`;
  if (opts.template) values.template = '1';
  return values;
}

export function lxcValues(
  rng: Rng,
  name: string,
  vmid: number,
  opts: { cores: number; memoryMiB: number; diskGiB: number; storage: string; template?: boolean },
): ConfigValues {
  const values: ConfigValues = {
    arch: 'amd64',
    cores: String(opts.cores),
    features: 'nesting=1',
    hostname: name,
    memory: String(opts.memoryMiB),
    net0: `name=eth0,bridge=vmbr0,firewall=1,hwaddr=${macAddress(rng)},ip=${rng() < 0.5 ? 'dhcp' : `10.30.${between(rng, 0, 255)}.${between(rng, 2, 254)}/24,gw=10.30.0.1`},type=veth`,
    ostype: pick(rng, LXC_OS),
    rootfs: `${opts.storage}:${opts.template ? 'base' : 'vm'}-${vmid}-disk-0,size=${formatSize(opts.diskGiB * 2 ** 30)}`,
    swap: '512',
    unprivileged: '1',
  };
  if (rng() < 0.5) values.onboot = '1';
  if (opts.template) values.template = '1';
  return values;
}

export function generateCluster(options: GenerateOptions = {}): SimCluster {
  const {
    seed = 1,
    nodes = 3,
    guests = 30,
    lxcRatio = 0.3,
    clusterName = 'sim',
    pveVersion = '9.1.1',
    taskDelayMs = 200,
    statusLagMs = 0,
    profile = 'realistic',
  } = options;
  const rng = createRng(seed);
  // Draws the dense profile never made come from a second sequence, so both profiles share `rng`'s.
  const extra = createRng((seed ^ 0x9e3779b9) >>> 0);
  const cluster = new SimCluster({ name: clusterName, pveVersion, taskDelayMs, statusLagMs, rng, profile });
  const bootBase = Math.floor(Date.now() / 1000) - 86_400 * 30;
  for (let i = 1; i <= nodes; i++) {
    // Dense picks node sizes here; realistic sizes nodes once their guests are placed (sizeNodes).
    const maxcpu = pick(rng, [32, 48, 64, 96]);
    const maxmem = pick(rng, [128, 256, 384, 512]) * 2 ** 30;
    cluster.nodes.push({
      name: `pve${i}`,
      nodeid: i,
      ip: `192.0.2.${10 + i}`, // TEST-NET-1: documentation addresses, never routed
      online: true,
      maxcpu,
      maxmem,
      maxdisk: 100 * 2 ** 30,
      bootTime: bootBase - between(rng, 0, 86_400 * 60),
    });
  }
  addStorage(cluster);
  for (const pool of POOLS) cluster.pools.set(pool, pool === 'infra' ? { comment: 'shared services' } : {});

  const roleCount = new Map<string, number>();
  const load = cluster.nodes.map(() => 0);
  for (let i = 0; i < guests; i++) {
    const vmid = 100 + i;
    const type = rng() < lxcRatio ? 'lxc' : 'qemu';
    const role = pick(rng, ROLES);
    const n = (roleCount.get(role) ?? 0) + 1;
    roleCount.set(role, n);
    const template = rng() < 0.03;
    const name = template ? `tpl-${role}-${n}` : `${role}-${String(n).padStart(3, '0')}`;
    const storage = rng() < 0.6 ? 'ceph-vm' : 'local-lvm';
    const choices = SIZES[profile][type];
    const sizes = {
      cores: pick(rng, choices.cores),
      memoryMiB: pick(rng, choices.memoryMiB),
      diskGiB: pick(rng, [8, 16, 32, 64, 128]),
      storage,
      template,
    };
    const values = type === 'qemu' ? qemuValues(rng, vmid, name, sizes) : lxcValues(rng, name, vmid, sizes);
    const tagCount = between(rng, 0, 3);
    const tags = [...new Set(Array.from({ length: tagCount }, () => pick(rng, TAGS)))].sort();
    if (tags.length) values.tags = tags.join(';');
    if (rng() < 0.2)
      values.description = `Owner: ${pick(rng, ['team-a', 'team-b', 'platform', 'data'])}\nTicket: OPS-${between(rng, 1000, 9999)}`;
    let at = Math.floor(rng() * nodes);
    if (profile === 'realistic' && nodes > 1) {
      // Placed as operators (and the HA manager's static scheduler) do: of two nodes, the less loaded.
      const other = (at + 1 + Math.floor(extra() * (nodes - 1))) % nodes;
      if (load[other]! < load[at]!) at = other;
      if (!template) load[at]! += sizes.cores / 3 + sizes.memoryMiB / 4096;
    }
    const node = cluster.nodes[at]!.name;
    const status: SimGuest['status'] = template ? 'stopped' : rng() < 0.7 ? 'running' : 'stopped';
    // `suspended` is the lock of a VM hibernated to disk, so only a stopped one carries it.
    if (rng() < 0.01)
      values.lock = pick(
        rng,
        status === 'stopped' ? ['backup', 'snapshot', 'suspended'] : ['backup', 'backup', 'snapshot'],
      );
    const pool = rng() < 0.6 ? pick(rng, POOLS) : undefined;
    const ha: SimGuest['ha'] =
      type === 'qemu' && !template && rng() < 0.1 ? { state: status === 'running' ? 'started' : 'stopped' } : undefined;
    if (profile === 'realistic') {
      // Production guests come back after a node reboot; templates and dev/staging guests are left off.
      const test = template || (pool !== undefined && TEST_MARKS.has(pool)) || tags.some((t) => TEST_MARKS.has(t));
      if (!test && extra() < 0.9) values.onboot = '1';
      else delete values.onboot;
    }
    const guest = cluster.addGuest({ vmid, type, node, values, status, pool, ha });
    guest.startedAt = Date.now() - between(rng, 60, 86_400 * 20) * 1000;
    if (!template && rng() < 0.1) {
      const when = 1_730_000_000 + between(rng, 0, 20_000_000);
      guest.snapshots.push({
        name: 'before-upgrade',
        snaptime: when,
        description: 'pre apt upgrade',
        values: { ...values },
      });
      guest.parent = 'before-upgrade';
    }
  }
  if (profile === 'realistic') sizeNodes(cluster, extra);
  sizeGuestStorage(cluster);
  return cluster;
}
