import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseGuestConfig, propertyString, sizeToBytes } from '../../src/sync/parse-config.js';

/** A recorded config as the client hands it over: every value as text, digest apart. */
function recorded(name: string): Record<string, string> {
  const { data } = JSON.parse(readFileSync(new URL(`../fixtures/pve/recorded/${name}`, import.meta.url), 'utf8')) as {
    data: Record<string, unknown>;
  };
  return Object.fromEntries(
    Object.entries(data)
      .filter(([k]) => k !== 'digest')
      .map(([k, v]) => [k, String(v)]),
  );
}

describe('parseGuestConfig on recorded configs', () => {
  it('PVE 8.1 VM 100: sizes, the scsi disk with storage and size, the cdrom, and the NIC', () => {
    const parsed = parseGuestConfig('qemu', recorded('qemu-config.vm100.pve8.1.packer-plugin-proxmox.json'));
    expect(parsed).toMatchObject({ cores: 1, sockets: 1, memoryMib: 2048, ostype: 'l26', onboot: false, agent: false });
    // No snapshots and no protection: neither key is in the config.
    expect([parsed.protection, parsed.snapshotParent]).toEqual([false, undefined]);
    expect(parsed.disks).toEqual([
      { key: 'ide2', volume: 'none', storage: undefined, sizeBytes: undefined, media: 'cdrom' },
      { key: 'scsi0', volume: 'local-lvm:vm-100-disk-0', storage: 'local-lvm', sizeBytes: 32 * 2 ** 30 },
    ]);
    expect(parsed.nics).toEqual([
      { key: 'net0', model: 'virtio', mac: 'BC:24:11:30:AD:93', bridge: 'vmbr0', vlan: undefined, firewall: true },
    ]);
  });

  it('PVE 7 VM 107: memory as a number, a VLAN tag, agent "0"', () => {
    const parsed = parseGuestConfig('qemu', recorded('qemu-config.vm107.pve7.CRASH-Tech-proxmox-operator.json'));
    expect(parsed).toMatchObject({ cores: 8, sockets: 1, memoryMib: 8192, onboot: false, agent: false });
    expect(parsed.nics[0]).toMatchObject({ mac: 'A2:7B:45:48:9C:E5', vlan: 103, firewall: false });
  });

  it('the template VM 102 keeps its base disk', () => {
    const parsed = parseGuestConfig('qemu', recorded('qemu-config.vm102.template.pve8.1.packer-plugin-proxmox.json'));
    expect(parsed.disks.find((d) => d.key === 'scsi0')).toMatchObject({
      volume: 'local-lvm:base-102-disk-0',
      storage: 'local-lvm',
    });
  });
});

describe('parseGuestConfig on shapes the recorded set lacks', () => {
  it('qemu: memory as a property string, balloon, vcpus, agent options, cloud-init addresses per NIC', () => {
    const parsed = parseGuestConfig('qemu', {
      memory: 'current=4096',
      balloon: '1024',
      cores: '4',
      sockets: '2',
      vcpus: '6',
      agent: 'enabled=1,fstrim_cloned_disks=1',
      onboot: '1',
      protection: '1',
      parent: 'before-upgrade',
      net0: 'e1000=AA:BB:CC:DD:EE:01,bridge=vmbr1,tag=20',
      net1: 'virtio=aa:bb:cc:dd:ee:02,bridge=vmbr0,firewall=1',
      ipconfig0: 'ip=10.0.0.5/24,gw=10.0.0.1,ip6=fd00::5/64',
      ipconfig1: 'ip=dhcp',
      efidisk0: 'ceph-vm:vm-1-disk-1,efitype=4m,size=1M',
      unused0: 'local-lvm:vm-1-disk-9',
      virtio1: '/dev/disk/by-id/nvme-x,size=1T',
    });
    expect(parsed).toMatchObject({
      memoryMib: 4096,
      balloonMib: 1024,
      cores: 4,
      sockets: 2,
      vcpus: 6,
      agent: true,
      onboot: true,
      protection: true,
      snapshotParent: 'before-upgrade',
    });
    expect(parsed.nics).toEqual([
      {
        key: 'net0',
        model: 'e1000',
        mac: 'AA:BB:CC:DD:EE:01',
        bridge: 'vmbr1',
        vlan: 20,
        firewall: false,
        ip: '10.0.0.5/24',
        ip6: 'fd00::5/64',
      },
      { key: 'net1', model: 'virtio', mac: 'AA:BB:CC:DD:EE:02', bridge: 'vmbr0', vlan: undefined, firewall: true },
    ]);
    expect(parsed.disks.map((d) => [d.key, d.storage, d.sizeBytes])).toEqual([
      ['efidisk0', 'ceph-vm', 2 ** 20],
      ['unused0', 'local-lvm', undefined],
      ['virtio1', undefined, 2 ** 40],
    ]);
  });

  it('lxc: rootfs and mount points, veth NICs with static and DHCP addresses, garbage sizes ignored', () => {
    const parsed = parseGuestConfig('lxc', {
      hostname: 'ct',
      memory: '1024',
      cores: 'lots',
      rootfs: 'local-lvm:vm-200-disk-0,size=8G',
      mp0: '/srv/data,mp=/data',
      mp1: 'ceph-vm:vm-200-disk-1,mp=/var,size=100G',
      net0: 'name=eth0,bridge=vmbr0,hwaddr=bc:24:11:00:00:01,ip=192.0.2.10/24,type=veth,firewall=1',
      net1: 'name=eth1,bridge=vmbr1,ip=dhcp,tag=7',
    });
    expect(parsed).toMatchObject({ memoryMib: 1024, cores: undefined });
    expect(parsed.disks.map((d) => [d.key, d.storage, d.sizeBytes])).toEqual([
      ['mp0', undefined, undefined],
      ['mp1', 'ceph-vm', 100 * 2 ** 30],
      ['rootfs', 'local-lvm', 8 * 2 ** 30],
    ]);
    expect(parsed.nics).toEqual([
      {
        key: 'net0',
        model: 'veth',
        mac: 'BC:24:11:00:00:01',
        bridge: 'vmbr0',
        vlan: undefined,
        firewall: true,
        ip: '192.0.2.10/24',
      },
      { key: 'net1', model: 'veth', mac: undefined, bridge: 'vmbr1', vlan: 7, firewall: false },
    ]);
  });

  it('property strings and sizes', () => {
    expect(propertyString('virtio=AA,bridge=vmbr0', 'model')).toEqual({ virtio: 'AA', bridge: 'vmbr0' });
    expect(propertyString('local:iso/x.iso,media=cdrom', 'file')).toEqual({ file: 'local:iso/x.iso', media: 'cdrom' });
    expect([
      sizeToBytes('512M'),
      sizeToBytes('1.5G'),
      sizeToBytes('10'),
      sizeToBytes('x'),
      sizeToBytes(undefined),
    ]).toEqual([512 * 2 ** 20, 1.5 * 2 ** 30, 10, undefined, undefined]);
  });
});
