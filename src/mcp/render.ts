/**
 * Compact text for models: a header line and one line per row, values separated by spaces, no
 * padding and no emoji. Free text from Proxmox (names, tags, descriptions) is data: it is
 * truncated and, where it could hold spaces or instructions, quoted as a JSON string.
 */
const UNITS = ['B', 'K', 'M', 'G', 'T', 'P'];

/** 4294967296 → "4G", 1610612736 → "1.5G". */
export function bytes(n: number | null | undefined): string {
  if (n == null) return '-';
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  // Round first, then choose the form: 9.99K shows as 10K, and 1023.99M carries into 1G.
  const rounded = value >= 10 ? Math.round(value) : Math.round(value * 10) / 10;
  if (rounded >= 1024 && unit < UNITS.length - 1) return `1${UNITS[unit + 1]}`;
  const shown = rounded >= 10 || Number.isInteger(rounded) ? Math.round(rounded).toString() : rounded.toFixed(1);
  return `${shown}${UNITS[unit]}`;
}

/** `2025-01-02T03:04:05.678Z` → `2025-01-02T03:04:05Z`. */
export const shortTime = (iso: string | null | undefined): string => (iso ? iso.replace(/\.\d{3}Z$/, 'Z') : '-');

export function percent(fraction: number | null | undefined): string {
  return fraction == null ? '-' : `${Math.round(fraction * 100)}%`;
}

/** Text from Proxmox, as data: cut to `max` characters and quoted unless it is a plain token. */
export function untrusted(text: string | null | undefined, max = 60): string {
  if (text == null || text === '') return '-';
  const cut = text.length > max ? `${text.slice(0, max - 1)}…` : text;
  return /^[\w.@:/+,-]+$/.test(cut) ? cut : JSON.stringify(cut);
}

/** A header and rows, one line each. */
export function table(columns: string[], rows: string[][]): string {
  return [columns.join(' '), ...rows.map((r) => r.join(' '))].join('\n');
}

export interface FreshnessView {
  asOf: string | null;
  ageMs: number | null;
  staleClusters: string[];
  overdue: boolean;
  staleNodes: Array<{ cluster: string; node: string; lastSeenAt: string | null }>;
}

export function freshnessLine(f: FreshnessView): string {
  if (!f.asOf) return 'inventory: no successful sync yet';
  const seconds = f.ageMs == null ? undefined : Math.round(f.ageMs / 1000);
  const age =
    seconds === undefined
      ? ''
      : f.overdue
        ? ` (${seconds} s ago: no sync since; is \`proxmox-inventory serve\` running?)`
        : ` (${seconds} s ago)`;
  const stale = [
    ...f.staleClusters.map((c) => `cluster ${c}`),
    ...f.staleNodes.map((n) => `node ${n.cluster}/${n.node}`),
  ];
  return `as of ${shortTime(f.asOf)}${age}${stale.length ? `; stale: ${stale.join(', ')}` : ''}`;
}
