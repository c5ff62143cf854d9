/**
 * Compact text for models: a header line and one line per row, values separated by spaces, no
 * padding and no emoji. Every text from Proxmox (names, tags, descriptions, but also node, storage
 * and lock names, statuses, IPs) is data: cut, and quoted as a JSON string unless it is a plain
 * token, so no value can add a line or a column, or hide characters in one.
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

/**
 * Characters that change how text reads without being seen, which JSON.stringify leaves as they
 * are: DEL and the C1 controls (U+0085 is a line break to some readers), the soft hyphen,
 * bidirectional controls (U+061C, U+200E/F, U+202A–202E, U+2066–2069: they reorder what follows),
 * zero-width and invisible formatting characters (U+180E, U+200B–200D, U+2060–2064, U+FEFF),
 * line and paragraph separators, interlinear annotation marks, and the tag characters
 * (U+E0000–E007F: invisible ASCII look-alikes used to smuggle instructions to models).
 */
const INVISIBLE =
  /[\u007F-\u009F\u00AD\u061C\u180E\u200B-\u200F\u2028-\u202E\u2060-\u2069\uFEFF\uFFF9-\uFFFB]|[\u{E0000}-\u{E007F}]/gu;

/** Each UTF-16 unit as `\uXXXX`, so the quoted text stays a valid JSON string. */
const escapeUnits = (c: string): string =>
  [...Array(c.length).keys()].map((i) => `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`).join('');

/** Cut to `max` characters (code points, so no pair is split), the last one an ellipsis. */
function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

/**
 * Text from Proxmox, as data: cut to `max` characters and, unless it is a plain token (which is
 * what Proxmox's own formats for node, storage, bridge and lock names, IPs and MACs produce),
 * quoted as a JSON string with the invisible characters escaped too. Whatever it holds, it stays
 * one cell: no space, newline or `|` of its own splits a row, and nothing in it reorders the line.
 */
export function untrusted(text: string | null | undefined, max = 60): string {
  if (text == null || text === '') return '-';
  const shown = cut(text, max);
  return /^[\w.@:/+,-]+$/.test(shown) ? shown : quoted(shown, max);
}

/** Text always in quotes, as a JSON string with the invisible characters escaped too: a caller's query echoed. */
export function quoted(text: string, max = 200): string {
  return JSON.stringify(cut(text, max)).replace(INVISIBLE, escapeUnits);
}

const CONTROL_OR_INVISIBLE = new RegExp(`[\\u0000-\\u001F]|${INVISIBLE.source}`, 'gu');

/**
 * Prose that has Proxmox values in it (`cluster "prod" (pve1, pve2)`, a request path), left
 * readable: cut to `max` characters, with control and invisible characters escaped so it stays on
 * its line and reads as it is.
 */
export function oneLine(text: string | null | undefined, max = 200): string {
  if (text == null || text === '') return '-';
  return cut(text, max).replace(CONTROL_OR_INVISIBLE, escapeUnits);
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
    ...f.staleNodes.map((n) => `node ${untrusted(`${n.cluster}/${n.node}`, 130)}`),
  ];
  return `as of ${shortTime(f.asOf)}${age}${stale.length ? `; stale: ${stale.join(', ')}` : ''}`;
}

/** Guest fields that hold bytes: a change shows them as 2G→4G, not 2147483648→4294967296. */
const SIZE_FIELDS = new Set(['maxmem', 'maxdisk']);

/** `maxmem 2G→4G` for a size field; undefined for any other field, or when neither side is a number. */
export function sizeChange(field: string, from: unknown, to: unknown): string | undefined {
  if (!SIZE_FIELDS.has(field) || (typeof from !== 'number' && typeof to !== 'number')) return undefined;
  const size = (v: unknown): string => (typeof v === 'number' ? bytes(v) : '-');
  return `${untrusted(field, 30)} ${size(from)}→${size(to)}`;
}
