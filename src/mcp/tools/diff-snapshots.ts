/**
 * Two inventory snapshots, or one and now, compared. The structured answer holds at most
 * STRUCTURED_CAP entries per list (with the full counts and `truncated`); the text lists at most
 * TEXT_CAP changes after the counts.
 */
import { z } from 'zod';
import {
  currentInventory,
  diffSnapshots,
  listSnapshots,
  readSnapshot,
  type SnapshotBody,
  type SnapshotGuest,
} from '../../store/snapshots.js';
import type { Store } from '../../store/db.js';
import { shortTime, sizeChange, untrusted } from '../render.js';
import { count } from '../schemas.js';
import { defineTool, READ_ONLY, ToolMiss } from '../tool.js';
import { Obj } from './shared.js';

const STRUCTURED_CAP = 200;
const TEXT_CAP = 50;

const guestView = (
  g: SnapshotGuest,
): Pick<SnapshotGuest, 'cluster' | 'vmid' | 'name' | 'type' | 'node' | 'status'> => ({
  cluster: g.cluster,
  vmid: g.vmid,
  name: g.name,
  type: g.type,
  node: g.node,
  status: g.status,
});

function load(store: Store, id: number): SnapshotBody {
  const body = readSnapshot(store, id);
  if (body) return body;
  const known = listSnapshots(store);
  throw new ToolMiss(
    `No snapshot ${id}.`,
    known.length
      ? `Known: ${known
          .slice(0, 10)
          .map((s) => `${s.id} (${shortTime(new Date(s.takenAt).toISOString())})`)
          .join(', ')}; list_snapshots lists all.`
      : 'No snapshot has been taken yet.',
  );
}

/** `from→to` of one field, sizes and lists kept short. */
function fieldChange(field: string, c: { from: unknown; to: unknown }): string {
  const show = (v: unknown): string => (v == null ? '-' : Array.isArray(v) ? v.join(',') : String(v));
  if (field === 'digest') return 'config';
  return (
    sizeChange(field, c.from, c.to) ??
    `${untrusted(field, 30)} ${untrusted(show(c.from), 30)}→${untrusted(show(c.to), 30)}`
  );
}

export const diffSnapshotsTool = defineTool({
  name: 'diff_snapshots',
  title: 'Diff inventory snapshots',
  description: `Guests and nodes added, removed or changed (field from→to) between snapshots from and to (default: now). Lists capped at ${STRUCTURED_CAP}; counts complete.`,
  input: z
    .object({ from: count(1, Number.MAX_SAFE_INTEGER), to: count(1, Number.MAX_SAFE_INTEGER).optional() })
    .strict(),
  output: z.object({ from: z.string(), to: z.string(), counts: Obj, guests: Obj, nodes: Obj, truncated: z.boolean() }),
  annotations: READ_ONLY,
  handler(args, { store, now }) {
    const a = load(store, args.from);
    const b = args.to === undefined ? currentInventory(store, now()) : load(store, args.to);
    const d = diffSnapshots(a, b);
    const counts = {
      added: d.added.length,
      removed: d.removed.length,
      changed: d.changed.length,
      nodesAdded: d.nodes.added.length,
      nodesRemoved: d.nodes.removed.length,
      nodesChanged: d.nodes.changed.length,
    };
    const truncated = Object.values(counts).some((n) => n > STRUCTURED_CAP);
    const cap = <T>(list: T[]): T[] => list.slice(0, STRUCTURED_CAP);
    const structured = {
      from: new Date(d.from).toISOString(),
      to: new Date(d.to).toISOString(),
      counts,
      guests: { added: cap(d.added).map(guestView), removed: cap(d.removed).map(guestView), changed: cap(d.changed) },
      nodes: {
        added: cap(d.nodes.added).map((n) => ({ cluster: n.cluster, node: n.node })),
        removed: cap(d.nodes.removed).map((n) => ({ cluster: n.cluster, node: n.node })),
        changed: cap(d.nodes.changed),
      },
      truncated,
    };
    const multi = new Set([...a.clusters, ...b.clusters].map((c) => c.name)).size > 1;
    const id = (g: { cluster: string; vmid: number; name: string | null }): string =>
      `${multi ? `${g.cluster}/` : ''}${g.vmid} ${untrusted(g.name, 30)}`;
    const nodeId = (n: { cluster: string; node: string }): string =>
      untrusted(multi ? `${n.cluster}/${n.node}` : n.node, 130);
    const lines = [
      ...d.added.map(
        (g) => `+ ${id(g)} ${untrusted(g.type, 10)} on ${untrusted(g.node, 63)}, ${untrusted(g.status, 20)}`,
      ),
      ...d.removed.map((g) => `- ${id(g)} was on ${untrusted(g.node, 63)}`),
      ...d.changed.map(
        (c) =>
          `~ ${id(c)} ${Object.entries(c.changes)
            .map(([f, v]) => fieldChange(f, v))
            .join('; ')}`,
      ),
      ...d.nodes.added.map((n) => `+ node ${nodeId(n)}`),
      ...d.nodes.removed.map((n) => `- node ${nodeId(n)}`),
      ...d.nodes.changed.map(
        (n) =>
          `~ node ${nodeId(n)} ${Object.entries(n.changes)
            .map(([f, v]) => fieldChange(f, v))
            .join('; ')}`,
      ),
    ];
    const head = `${shortTime(structured.from)} (snapshot ${args.from}) → ${shortTime(structured.to)} (${args.to === undefined ? 'now' : `snapshot ${args.to}`}): guests +${counts.added} -${counts.removed} ~${counts.changed}; nodes +${counts.nodesAdded} -${counts.nodesRemoved} ~${counts.nodesChanged}`;
    const shown = lines.slice(0, TEXT_CAP);
    if (lines.length > TEXT_CAP)
      shown.push(
        `… ${lines.length - TEXT_CAP} more in the structured answer${truncated ? ` (which keeps ${STRUCTURED_CAP} per list)` : ''}`,
      );
    return { structured, text: [head, ...shown].join('\n') };
  },
});
