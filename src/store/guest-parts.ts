/**
 * The parts of a guest config the store keeps as JSON (guests.disks, guests.nics): written by the
 * sync's config parser, read back by the queries.
 */
export interface GuestDisk {
  key: string;
  /** Storage id, or undefined for a passthrough/none entry. */
  storage?: string;
  volume: string;
  sizeBytes?: number;
  media?: string;
}

export interface GuestNic {
  key: string;
  model?: string;
  mac?: string;
  bridge?: string;
  vlan?: number;
  firewall: boolean;
  /** Addresses from the config (CIDR), not from the guest agent. */
  ip?: string;
  ip6?: string;
}
