/**
 * Read responses in the exact wire shapes of API-NOTES.md: 0/1 booleans, integers as numbers
 * except where Proxmox sends strings, the emission orders of the Perl code, and offline-node shapes.
 */
import { configResponse } from './guest-config.js';
import { noise } from './random.js';
import type { SimCluster, SimGuest, SimNode, SimStorage, SimTask } from './state.js';

type Entry = Record<string, string | number>;

/** Live metrics drift every 10 s, like pvestatd's RRD updates, yet stay deterministic. */
function guestMetrics(
  c: SimCluster,
  g: SimGuest,
): { cpu: number; mem: number; uptime: number; netin: number; netout: number; diskread: number; diskwrite: number } {
  const status = c.shownStatus(g);
  if (status === 'stopped') return { cpu: 0, mem: 0, uptime: 0, netin: 0, netout: 0, diskread: 0, diskwrite: 0 };
  const bucket = Math.floor(Date.now() / 10_000);
  const uptime = Math.max(1, Math.floor((Date.now() - g.startedAt) / 1000));
  const rate = 1 + Math.floor(noise(g.vmid, 0) * 50_000);
  return {
    cpu: Math.round(noise(g.vmid, bucket) * 0.6 * 1e6) / 1e6,
    mem: Math.floor(c.maxmem(g) * (0.2 + noise(g.vmid + 7, bucket) * 0.7)),
    uptime,
    netin: uptime * rate,
    netout: Math.floor(uptime * rate * 0.6),
    diskread: uptime * rate * 3,
    diskwrite: uptime * rate * 2,
  };
}

/**
 * Memory used on each node. Realistic: what its running guests use now (their `mem`) plus the
 * host's own (kernel, pmxcfs, pveproxy, corosync): 1.5–3 GiB and 0.5 % of its memory, so 3–5 GiB
 * on a 256 GiB node. Dense, as before: 2 GiB plus 60 % of every running guest's configured
 * memory, capped at the node's size.
 */
function nodeMemoryUsed(c: SimCluster): Map<string, number> {
  const dense = c.options.profile === 'dense';
  const host = (n: SimNode): number =>
    dense ? 2 * 2 ** 30 : Math.floor((1.5 + noise(n.nodeid, 1) * 1.5) * 2 ** 30 + n.maxmem * 0.005);
  const used = new Map(c.nodes.map((n) => [n.name, host(n)]));
  for (const g of c.guests.values()) {
    const before = used.get(g.node);
    if (before === undefined) continue;
    if (dense) {
      if (g.status !== 'stopped') used.set(g.node, before + Math.floor(c.maxmem(g) * 0.6));
    } else {
      used.set(g.node, before + guestMetrics(c, g).mem);
    }
  }
  return used;
}

function nodeMetrics(
  c: SimCluster,
  n: SimNode,
  used = nodeMemoryUsed(c),
): { cpu: number; mem: number; disk: number; uptime: number } {
  const bucket = Math.floor(Date.now() / 10_000);
  return {
    cpu: Math.round((0.02 + noise(n.nodeid, bucket) * 0.5) * 1e6) / 1e6,
    mem: Math.min(used.get(n.name) ?? 0, n.maxmem),
    disk: Math.floor(n.maxdisk * 0.12),
    uptime: c.now() - n.bootTime,
  };
}

function nodeEntry(c: SimCluster, n: SimNode, used?: Map<string, number>): Entry {
  if (!n.online) return { id: `node/${n.name}`, type: 'node', node: n.name, status: 'offline' };
  const m = nodeMetrics(c, n, used);
  return {
    id: `node/${n.name}`,
    type: 'node',
    node: n.name,
    status: 'online',
    level: '',
    'cgroup-mode': 2,
    uptime: m.uptime,
    cpu: m.cpu,
    maxcpu: n.maxcpu,
    mem: m.mem,
    maxmem: n.maxmem,
    disk: m.disk,
    maxdisk: n.maxdisk,
  };
}

function guestResource(c: SimCluster, g: SimGuest, nodeOnline: boolean): Entry {
  const base: Entry = { id: `${g.type}/${g.vmid}`, type: g.type, vmid: g.vmid, node: g.node };
  const values = g.values;
  if (!nodeOnline) {
    // No fresh RRD data: pvestatd on that node is gone. Config-derived lock/tags are still read via pmxcfs.
    base.status = 'unknown';
  } else {
    const m = guestMetrics(c, g);
    Object.assign(base, {
      status: c.shownStatus(g),
      name: c.name(g),
      uptime: m.uptime,
      template: values.template === '1' ? 1 : 0,
      maxcpu: c.maxcpu(g),
      cpu: m.cpu,
      maxmem: c.maxmem(g),
      mem: m.mem,
      maxdisk: c.maxdisk(g),
      disk: g.type === 'lxc' && m.uptime ? Math.floor(c.maxdisk(g) * 0.3) : 0,
      netin: m.netin,
      netout: m.netout,
      diskread: m.diskread,
      diskwrite: m.diskwrite,
    });
    if (g.type === 'qemu' && c.pveMajor >= 9) base.memhost = m.mem;
  }
  if (values.tags) base.tags = values.tags;
  if (values.lock) base.lock = values.lock;
  if (g.pool) base.pool = g.pool;
  if (g.ha) base.hastate = g.ha.state;
  return base;
}

export function clusterResources(c: SimCluster, type: string | undefined): Entry[] {
  const out: Entry[] = [];
  const online = new Map(c.nodes.map((n) => [n.name, n.online]));
  if (!type) {
    for (const pool of [...c.pools.keys()].sort()) out.push({ id: `/pool/${pool}`, type: 'pool', pool });
  }
  if (!type || type === 'vm') {
    for (const vmid of c.vmidsInStringOrder()) {
      const g = c.guests.get(vmid)!;
      out.push(guestResource(c, g, online.get(g.node) ?? false));
    }
  }
  if (!type || type === 'node') {
    const used = nodeMemoryUsed(c);
    for (const n of c.nodes) out.push(nodeEntry(c, n, used));
  }
  if (!type || type === 'storage') {
    const usage = c.storageUsage();
    for (const s of c.storages) {
      for (const node of s.nodes) {
        const entry: Entry = {
          id: `storage/${node}/${s.storage}`,
          type: 'storage',
          storage: s.storage,
          node,
          plugintype: s.plugintype,
          status: online.get(node) ? 'available' : 'unknown',
          shared: s.shared ? 1 : 0,
          content: s.content,
        };
        if (online.get(node)) {
          entry.disk = Math.min(usage.get(s.shared ? s.storage : `${node}/${s.storage}`) ?? 0, s.maxdisk);
          entry.maxdisk = s.maxdisk;
        }
        out.push(entry);
      }
    }
  }
  if (!type || type === 'sdn') {
    for (const n of c.nodes)
      out.push({
        id: `sdn/${n.name}/localnetwork`,
        type: 'sdn',
        sdn: 'localnetwork',
        node: n.name,
        status: n.online ? 'ok' : 'unknown',
      });
  }
  return out;
}

export function clusterStatus(c: SimCluster): Entry[] {
  const quorate = c.quorate();
  const out: Entry[] = [];
  if (c.nodes.length > 1)
    out.push({
      type: 'cluster',
      id: 'cluster',
      name: c.options.name,
      nodes: c.nodes.length,
      version: c.corosyncVersion,
      quorate: quorate ? 1 : 0,
    });
  // Perl hash order: not sorted. A fixed rotation keeps it deterministic but unsorted.
  const rotated = c.nodes.length > 1 ? [...c.nodes.slice(1), c.nodes[0]!] : c.nodes;
  for (const n of rotated) {
    out.push({
      type: 'node',
      id: `node/${n.name}`,
      name: n.name,
      nodeid: c.nodes.length > 1 ? n.nodeid : 0,
      local: n === c.nodes[0] ? 1 : 0,
      online: n.online ? 1 : 0,
      ip: n.ip,
      level: '',
    });
  }
  return out;
}

export function nodesList(c: SimCluster, fingerprint: string | undefined): Entry[] {
  const used = nodeMemoryUsed(c);
  return c.nodes.map((n) => {
    const e = nodeEntry(c, n, used);
    // Cluster.pm `resources` adds cgroup-mode; /nodes (extract_node_stats only) has none (recorded nodes.4node fixture).
    delete e['cgroup-mode'];
    if (fingerprint && n.online) e.ssl_fingerprint = fingerprint;
    return e;
  });
}

export function nodeStatus(c: SimCluster, n: SimNode): Record<string, unknown> {
  const m = nodeMetrics(c, n);
  const load = (k: number): string =>
    (noise(n.nodeid * 31 + k, Math.floor(Date.now() / 10_000)) * n.maxcpu * 0.4).toFixed(2);
  return {
    uptime: m.uptime,
    cpu: m.cpu,
    wait: 0.001,
    loadavg: [load(1), load(5), load(15)],
    cpuinfo: {
      cpus: n.maxcpu,
      cores: n.maxcpu / 2,
      sockets: 2,
      model: 'AMD EPYC 7543P 32-Core Processor',
      mhz: '2794.748',
      hvm: '1',
      user_hz: 100,
      flags: 'fpu vme de pse tsc msr',
    },
    memory: { total: n.maxmem, used: m.mem, free: n.maxmem - m.mem, available: n.maxmem - m.mem },
    swap: { total: 8 * 2 ** 30, used: 0, free: 8 * 2 ** 30 },
    rootfs: { total: n.maxdisk, used: m.disk, free: n.maxdisk - m.disk, avail: n.maxdisk - m.disk },
    ksm: { shared: 0 },
    kversion: 'Linux 6.14.8-2-pve #1 SMP PREEMPT_DYNAMIC PMX 6.14.8-2 (2025-07-22T10:04Z)',
    pveversion: `pve-manager/${c.options.pveVersion}/0a1b2c3d4e5f6a7b`,
    'current-kernel': {
      sysname: 'Linux',
      release: '6.14.8-2-pve',
      version: '#1 SMP PREEMPT_DYNAMIC PMX 6.14.8-2 (2025-07-22T10:04Z)',
      machine: 'x86_64',
    },
    'boot-info': { mode: 'efi', secureboot: 0 },
    idle: 0,
  };
}

/** Perl `keys %$vmstatus`: unordered. Reversed insertion order keeps it deterministic but not sorted. */
function guestsOn(c: SimCluster, node: string, type: 'qemu' | 'lxc'): SimGuest[] {
  return [...c.guests.values()].filter((g) => g.node === node && g.type === type).reverse();
}

export function nodeGuestList(c: SimCluster, node: string, type: 'qemu' | 'lxc', full: boolean): Entry[] {
  return guestsOn(c, node, type).map((g) => guestStatusEntry(c, g, full));
}

function guestStatusEntry(c: SimCluster, g: SimGuest, full: boolean): Entry {
  const m = guestMetrics(c, g);
  const running = g.status !== 'stopped';
  const e: Entry = {
    vmid: g.vmid,
    status: running ? 'running' : 'stopped',
    name: c.name(g),
    cpus: c.maxcpu(g),
    maxmem: c.maxmem(g),
    maxdisk: c.maxdisk(g),
    disk: 0,
    uptime: m.uptime,
    cpu: m.cpu,
    mem: m.mem,
    netin: m.netin,
    netout: m.netout,
    diskread: m.diskread,
    diskwrite: m.diskwrite,
  };
  if (g.type === 'lxc') {
    e.type = 'lxc';
    e.maxswap = Number(g.values.swap ?? 512) * 2 ** 20;
    e.swap = 0;
    if (running) e.disk = Math.floor(c.maxdisk(g) * 0.3);
  } else if (c.pveMajor >= 9) {
    e.memhost = m.mem;
  }
  if (running) e.pid = 100_000 + g.vmid;
  if (g.values.template === '1') e.template = 1;
  if (g.values.lock) e.lock = g.values.lock;
  if (g.values.tags) e.tags = g.values.tags;
  if (g.type === 'qemu' && full) e.qmpstatus = g.status;
  return e;
}

export function guestStatusCurrent(c: SimCluster, g: SimGuest): Record<string, unknown> {
  const e: Record<string, unknown> = {
    ...guestStatusEntry(c, g, true),
    ha: g.ha ? { managed: 1, state: g.ha.state } : { managed: 0 },
  };
  if (g.type === 'qemu') {
    if (g.values.agent && /^(1|enabled=1)/.test(g.values.agent)) e.agent = 1;
    if (g.status !== 'stopped') {
      e['running-machine'] = 'pc-i440fx-9.0+pve0';
      e['running-qemu'] = '9.0.2';
    }
  }
  return e;
}

export function guestConfig(
  c: SimCluster,
  g: SimGuest,
  snapshot: string | undefined,
): Record<string, string | number> | undefined {
  if (snapshot) {
    const snap = g.snapshots.find((s) => s.name === snapshot);
    if (!snap) return undefined;
    // A snapshot section carries its own metadata lines (QemuConfig/LXC Config `snapshot_prepare`).
    const meta: Record<string, string> = { ...snap.values, snaptime: String(snap.snaptime) };
    if (snap.description) meta.description = snap.description;
    if (snap.vmstate) meta.vmstate = snap.vmstate;
    return configResponse(g.type, meta, c.digest(g), snap.parent);
  }
  return configResponse(g.type, g.values, c.digest(g), g.parent);
}

export function snapshotList(c: SimCluster, g: SimGuest): Entry[] {
  const out: Entry[] = g.snapshots.map((s) => {
    const e: Entry = { name: s.name, snaptime: s.snaptime, description: s.description };
    if (g.type === 'qemu') e.vmstate = s.vmstate ? 1 : 0;
    if (s.parent) e.parent = s.parent;
    return e;
  });
  const current: Entry = {
    name: 'current',
    digest: c.digest(g),
    running: g.status === 'stopped' ? 0 : 1,
    description: 'You are here!',
  };
  if (g.parent) current.parent = g.parent;
  out.push(current);
  return out;
}

/**
 * One storage as Storage.pm `storage_info` sees it from `node`: a storage that storage.cfg
 * restricts to other nodes is still listed, with `enabled: 0`, `active: 0` and zero sizes.
 */
export function storageStatus(c: SimCluster, s: SimStorage, node: string, usage = c.storageUsage()): Entry {
  const entry: Entry = {
    type: s.plugintype,
    content: s.content,
    active: 0,
    enabled: 0,
    shared: s.shared ? 1 : 0,
    total: 0,
    used: 0,
    avail: 0,
  };
  if (!s.nodes.includes(node)) return entry;
  const used = Math.min(usage.get(s.shared ? s.storage : `${node}/${s.storage}`) ?? 0, s.maxdisk);
  return { ...entry, active: 1, enabled: 1, total: s.maxdisk, used, avail: s.maxdisk - used };
}

/** Status.pm `index`: every storage of storage.cfg, with `used_fraction` where the total is known. */
export function nodeStorage(c: SimCluster, node: string): Entry[] {
  const usage = c.storageUsage();
  return c.storages.map((s) => {
    const entry: Entry = { storage: s.storage, ...storageStatus(c, s, node, usage) };
    if (entry.total) entry.used_fraction = Number(entry.used) / Number(entry.total);
    return entry;
  });
}

/**
 * `GET /storage` (Config.pm `index`): each storage.cfg section with its id, the content list, the
 * file's digest, `shared` where parse_config or the file sets it, and `nodes` only when restricted.
 * Perl hash order is unordered; the sections' own order is one of the orders Proxmox may answer in.
 */
export function storageConfig(c: SimCluster, type: string | undefined): Entry[] {
  const digest = c.storageDigest();
  return c.storages
    .filter((s) => !type || s.plugintype === type)
    .map((s) => {
      const entry: Entry = { storage: s.storage, type: s.plugintype, ...s.config, content: s.content, digest };
      if (s.shared) entry.shared = 1;
      const nodes = c.restrictedNodes(s);
      if (nodes) entry.nodes = nodes.join(',');
      return entry;
    });
}

export function taskEntry(t: SimTask, withSaved: boolean): Entry {
  const e: Entry = {
    upid: t.upid,
    node: t.node,
    pid: t.pid,
    pstart: t.pstart,
    starttime: t.starttime,
    type: t.type,
    id: t.id,
    user: t.user,
  };
  if (t.tokenid) e.tokenid = t.tokenid;
  if (t.endtime !== undefined) {
    e.endtime = t.endtime;
    e.status = t.status ?? 'unexpected status';
  }
  if (withSaved) {
    // The cluster tasklist carries `saved`; a finished entry read back from the active file is the string "1".
    e.saved = t.endtime !== undefined ? '1' : '0';
    // RESTEnvironment.pm `active_workers` deletes pstart from every entry and pid from finished ones.
    delete e.pstart;
    if (t.endtime !== undefined) delete e.pid;
  }
  return e;
}

export function taskStatus(t: SimTask): Entry {
  const e: Entry = {
    upid: t.upid,
    node: t.node,
    pid: t.pid,
    pstart: t.pstart,
    starttime: t.starttime,
    type: t.type,
    id: t.id,
    user: t.user,
    status: t.endtime === undefined ? 'running' : 'stopped',
  };
  if (t.tokenid) e.tokenid = t.tokenid;
  if (t.endtime !== undefined) e.exitstatus = t.status ?? 'unexpected status';
  return e;
}

export function haStatus(c: SimCluster): Entry[] {
  const master = c.nodes.find((n) => n.online) ?? c.nodes[0]!;
  const now = c.now();
  const stamp = new Date(now * 1000).toUTCString().replace(/,/, '');
  const quorate = c.quorate();
  const out: Entry[] = [
    {
      id: 'quorum',
      type: 'quorum',
      node: master.name,
      status: quorate ? 'OK' : `No quorum on node '${master.name}'!`,
      quorate: quorate ? 1 : 0,
    },
    { id: 'master', type: 'master', node: master.name, status: `${master.name} (active, ${stamp})`, timestamp: now },
  ];
  if (c.pveMajor >= 9)
    out.push({
      id: 'fencing',
      type: 'fencing',
      node: master.name,
      status: 'armed (CRM watchdog active)',
      'armed-state': 'armed',
    });
  for (const n of c.nodes)
    out.push({
      id: `lrm:${n.name}`,
      type: 'lrm',
      node: n.name,
      status: n.online
        ? `${n.name} (active, watchdog active, ${stamp})`
        : `${n.name} (old timestamp - dead?, ${stamp})`,
      timestamp: now,
    });
  for (const g of c.guests.values()) {
    if (!g.ha) continue;
    const sid = `${g.type === 'qemu' ? 'vm' : 'ct'}:${g.vmid}`;
    out.push({
      id: `service:${sid}`,
      type: 'service',
      sid,
      node: g.node,
      crm_state: g.ha.state,
      state: g.ha.state,
      request_state: g.ha.state,
      status: `${sid} (${g.node}, ${g.ha.state})`,
      max_restart: 1,
      max_relocate: 1,
    });
  }
  return out;
}

export function haResources(c: SimCluster): Entry[] {
  const out: Entry[] = [];
  for (const vmid of [...c.guests.keys()].sort((a, b) => a - b)) {
    const g = c.guests.get(vmid)!;
    if (g.ha)
      out.push({
        sid: `${g.type === 'qemu' ? 'vm' : 'ct'}:${vmid}`,
        type: g.type === 'qemu' ? 'vm' : 'ct',
        state: g.ha.state,
        max_restart: 1,
        max_relocate: 1,
        digest: '3b5f0c6a0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b',
      });
  }
  return out;
}

export function poolsList(c: SimCluster, poolid: string | undefined): Array<Record<string, unknown>> {
  const names = poolid ? [poolid] : [...c.pools.keys()].sort();
  return names
    .filter((p) => c.pools.has(p))
    .map((p) => {
      const e: Record<string, unknown> = { poolid: p };
      if (c.pools.get(p)!.comment) e.comment = c.pools.get(p)!.comment;
      if (poolid) {
        const online = new Map(c.nodes.map((n) => [n.name, n.online]));
        e.members = [...c.guests.values()]
          .filter((g) => g.pool === p)
          .map((g) => guestResource(c, g, online.get(g.node) ?? false));
      }
      return e;
    });
}
