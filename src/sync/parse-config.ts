/**
 * Turns a guest config (every value as text, as the client returns it) into the fields the
 * inventory keeps: CPU and memory sizing, disks with storage and size, NICs with MAC, bridge,
 * VLAN and firewall, and the IPs the config names (cloud-init `ipconfigN`, LXC `ip=`).
 */
import type { GuestDisk as DiskInfo, GuestNic as NicInfo } from '../store/guest-parts.js';

export interface ParsedConfig {
  cores?: number;
  sockets?: number;
  vcpus?: number;
  memoryMib?: number;
  balloonMib?: number;
  ostype?: string;
  onboot: boolean;
  agent: boolean;
  protection: boolean;
  /** The snapshot the current state is based on: present while the guest has snapshots. */
  snapshotParent?: string;
  description?: string;
  disks: DiskInfo[];
  nics: NicInfo[];
}

/** `a=1,b=2` → {a, b}; a leading value without `=` goes under `defaultKey`. */
export function propertyString(text: string, defaultKey: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) {
      if (part) out[defaultKey] = part;
    } else out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

const UNITS: Record<string, number> = { K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

export function sizeToBytes(text: string | undefined): number | undefined {
  const m = /^(\d+(?:\.\d+)?)([KMGT])?$/i.exec(text ?? '');
  return m ? Math.round(Number(m[1]) * (m[2] ? UNITS[m[2].toUpperCase()]! : 1)) : undefined;
}

const int = (text: string | undefined): number | undefined => {
  if (text === undefined || !/^-?\d+$/.test(text.trim())) return undefined;
  return Number(text);
};

const QEMU_DISK = /^(ide|sata|scsi|virtio)\d+$|^efidisk0$|^tpmstate0$|^unused\d+$/;
const LXC_DISK = /^rootfs$|^mp\d+$|^unused\d+$/;
const NIC_MODELS = new Set([
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
]);
const MAC_RE = /^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$/;

function parseDisk(key: string, value: string): DiskInfo {
  const props = propertyString(value, 'file');
  const volume = props.file ?? props.volume ?? '';
  const colon = volume.indexOf(':');
  // `none`, `cdrom` and absolute paths (bind mounts, passthrough) have no storage.
  const storage = colon > 0 && !volume.startsWith('/') ? volume.slice(0, colon) : undefined;
  const disk: DiskInfo = { key, volume, storage, sizeBytes: sizeToBytes(props.size) };
  if (props.media) disk.media = props.media;
  return disk;
}

function parseQemuNic(key: string, value: string, ipconfig: string | undefined): NicInfo {
  const props = propertyString(value, 'model');
  let model = props.model;
  let mac = props.macaddr;
  for (const [k, v] of Object.entries(props)) {
    if (NIC_MODELS.has(k)) {
      model = k;
      if (MAC_RE.test(v)) mac = v;
    }
  }
  const nic: NicInfo = {
    key,
    model,
    mac: mac?.toUpperCase(),
    bridge: props.bridge,
    vlan: int(props.tag),
    firewall: props.firewall === '1',
  };
  if (ipconfig) {
    const ip = propertyString(ipconfig, 'ip');
    if (ip.ip && ip.ip !== 'dhcp') nic.ip = ip.ip;
    if (ip.ip6 && ip.ip6 !== 'dhcp' && ip.ip6 !== 'auto') nic.ip6 = ip.ip6;
  }
  return nic;
}

function parseLxcNic(key: string, value: string): NicInfo {
  const props = propertyString(value, 'name');
  const nic: NicInfo = {
    key,
    model: props.type ?? 'veth',
    mac: props.hwaddr?.toUpperCase(),
    bridge: props.bridge,
    vlan: int(props.tag),
    firewall: props.firewall === '1',
  };
  if (props.ip && props.ip !== 'dhcp' && props.ip !== 'manual') nic.ip = props.ip;
  if (props.ip6 && !['dhcp', 'auto', 'manual'].includes(props.ip6)) nic.ip6 = props.ip6;
  return nic;
}

const byIndex = (a: { key: string }, b: { key: string }): number => a.key.localeCompare(b.key, 'en', { numeric: true });

export function parseGuestConfig(type: 'qemu' | 'lxc', values: Record<string, string>): ParsedConfig {
  const disks: DiskInfo[] = [];
  const nics: NicInfo[] = [];
  for (const [key, value] of Object.entries(values)) {
    if ((type === 'qemu' ? QEMU_DISK : LXC_DISK).test(key)) disks.push(parseDisk(key, value));
    else if (/^net\d+$/.test(key))
      nics.push(
        type === 'qemu' ? parseQemuNic(key, value, values[`ipconfig${key.slice(3)}`]) : parseLxcNic(key, value),
      );
  }
  // qemu memory is `2048` or, since PVE 8.1, a property string `current=2048`.
  const memory = values.memory === undefined ? undefined : int(propertyString(values.memory, 'current').current);
  const agent =
    values.agent === undefined
      ? false
      : ['1', 'on', 'yes'].includes(propertyString(values.agent, 'enabled').enabled ?? '');
  return {
    cores: int(values.cores),
    sockets: int(values.sockets),
    vcpus: int(values.vcpus),
    memoryMib: memory,
    balloonMib: int(values.balloon),
    ostype: values.ostype,
    onboot: values.onboot === '1',
    agent,
    protection: values.protection === '1',
    snapshotParent: values.parent || undefined,
    description: values.description,
    disks: disks.sort(byIndex),
    nics: nics.sort(byIndex),
  };
}
