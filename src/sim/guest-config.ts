/**
 * Guest config files as pmxcfs stores them, and the values Proxmox derives from them.
 * The API's `digest` is the SHA-1 of the whole raw file, snapshot sections included.
 */
import { createHash } from 'node:crypto';

export type GuestType = 'qemu' | 'lxc';
export type ConfigValues = Record<string, string>;

export interface SnapshotSection {
  name: string;
  snaptime: number;
  description: string;
  /** The volume holding saved RAM (`local-lvm:vm-100-state-snap1`) for a qemu snapshot taken with vmstate. */
  vmstate?: string;
  parent?: string;
  values: ConfigValues;
}

const UNITS: Record<string, number> = { K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** `32G` → bytes; a bare number is bytes. */
export function parseSize(text: string | undefined): number {
  const m = /^(\d+(?:\.\d+)?)([KMGT])?$/.exec(text ?? '');
  if (!m) return 0;
  return Math.round(Number(m[1]) * (m[2] ? UNITS[m[2]]! : 1));
}

export function formatSize(bytes: number): string {
  for (const unit of ['T', 'G', 'M', 'K'] as const) {
    const n = bytes / UNITS[unit]!;
    if (n >= 1 && Number.isInteger(n)) return `${n}${unit}`;
  }
  return String(bytes);
}

/** Reads `key=value` pairs of a property string; a leading bare value is returned under `defaultKey`. */
export function parsePropertyString(text: string, defaultKey = '_'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) out[defaultKey] = part;
    else out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

const BOOT_DISKS = /^(scsi|virtio|sata|ide)\d+$/;

export function guestName(type: GuestType, vmid: number, values: ConfigValues): string {
  return type === 'qemu' ? (values.name ?? `VM ${vmid}`) : (values.hostname ?? `CT${vmid}`);
}

export function memoryBytes(type: GuestType, values: ConfigValues): number {
  const raw = values.memory;
  if (raw === undefined) return (type === 'qemu' ? 2048 : 512) * 2 ** 20;
  // PVE 8.1+ qemu memory is a property string (`current=2048`) whose default key is the size.
  const mib = Number(parsePropertyString(raw, 'current').current ?? raw);
  return mib * 2 ** 20;
}

export function cpuCount(type: GuestType, values: ConfigValues, nodeCpus: number): number {
  if (type === 'lxc') return values.cores ? Number(values.cores) : nodeCpus;
  if (values.vcpus) return Number(values.vcpus);
  return Number(values.cores ?? 1) * Number(values.sockets ?? 1);
}

export function diskBytes(type: GuestType, values: ConfigValues): number {
  if (type === 'lxc') return parseSize(parsePropertyString(values.rootfs ?? '', 'volume').size ?? '4G');
  const boot = /order=([^;,]+)/.exec(values.boot ?? '')?.[1];
  const key =
    boot && BOOT_DISKS.test(boot)
      ? boot
      : Object.keys(values).find((k) => BOOT_DISKS.test(k) && !values[k]!.includes('media=cdrom'));
  return key ? parseSize(parsePropertyString(values[key] ?? '', 'volume').size) : 0;
}

/** Every disk volume with its storage, e.g. `scsi0` → `local-lvm`, `rootfs` → `local-lvm`. */
export function diskVolumes(values: ConfigValues): Array<{ key: string; storage: string; bytes: number }> {
  const out: Array<{ key: string; storage: string; bytes: number }> = [];
  for (const [key, value] of Object.entries(values)) {
    if (!(BOOT_DISKS.test(key) || key === 'rootfs' || /^mp\d+$/.test(key) || key === 'efidisk0' || key === 'tpmstate0'))
      continue;
    if (value.includes('media=cdrom') || value.startsWith('none')) continue;
    const props = parsePropertyString(value, 'volume');
    const storage = props.volume?.split(':')[0];
    if (storage) out.push({ key, storage, bytes: parseSize(props.size) });
  }
  return out;
}

function renderSection(values: ConfigValues): string {
  let out = '';
  const description = values.description;
  if (description) for (const line of description.split('\n')) out += `#${line}\n`;
  for (const key of Object.keys(values).sort()) {
    if (key !== 'description') out += `${key}: ${values[key]}\n`;
  }
  return out;
}

/** The file as `write_vm_config` writes it: description as `#` lines, keys sorted, then `[snapshot]` sections. */
export function renderConfigFile(
  values: ConfigValues,
  parent: string | undefined,
  snapshots: SnapshotSection[],
): string {
  let out = renderSection(parent ? { ...values, parent } : values);
  for (const snap of snapshots) {
    const meta: ConfigValues = { ...snap.values, snaptime: String(snap.snaptime) };
    if (snap.parent) meta.parent = snap.parent;
    if (snap.vmstate) meta.vmstate = snap.vmstate;
    if (snap.description) meta.description = snap.description;
    out += `\n[${snap.name}]\n${renderSection(meta)}`;
  }
  return out;
}

export function sha1(text: string): string {
  return createHash('sha1').update(text).digest('hex');
}

/** Config keys Proxmox returns as JSON numbers (integer or boolean schema types); everything else stays a string. */
const NUMERIC_KEYS: Record<GuestType, Set<string>> = {
  qemu: new Set([
    'cores',
    'sockets',
    'vcpus',
    'balloon',
    'cpuunits',
    'shares',
    'numa',
    'onboot',
    'template',
    'kvm',
    'tablet',
    'acpi',
    'protection',
    'reboot',
    'localtime',
    'freeze',
    'autostart',
    'snaptime',
  ]),
  lxc: new Set([
    'cores',
    'memory',
    'swap',
    'cpuunits',
    'onboot',
    'template',
    'unprivileged',
    'protection',
    'console',
    'tty',
    'debug',
    'snaptime',
  ]),
};

/** The config GET answer: values typed as on the wire (`memory` stays a string for qemu, as since PVE 8.1). */
export function configResponse(
  type: GuestType,
  values: ConfigValues,
  digest: string,
  parent?: string,
): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const [key, value] of Object.entries(values)) {
    out[key] = NUMERIC_KEYS[type].has(key) && /^-?\d+$/.test(value) ? Number(value) : value;
  }
  if (parent) out.parent = parent;
  out.digest = digest;
  return out;
}
