import { z } from 'zod';
import {
  aggregate,
  listClusters,
  listGuests,
  listNodes,
  listStorage,
  topGuests,
  type TopGuest,
} from '../../store/queries.js';
import { countValues } from '../../store/queries/value-counts.js';
import { bytes, oneLine, percent, shortTime, table, untrusted } from '../render.js';
import { webhookProblemLine, webhookProblems } from '../../store/webhook-health.js';
import { text } from '../schemas.js';
import { defineTool, READ_ONLY } from '../tool.js';
import {
  checkCluster,
  duration,
  nameList,
  NODE_COLUMNS,
  nodeRow,
  nodeView,
  Obj,
  Rows,
  type NodeView,
} from './shared.js';

/** Storage above this used fraction is a problem. */
const STORAGE_FULL = 0.85;
/** A node with more of its memory in use than this is a problem: one more guest started may not fit. */
const MEMORY_FULL = 0.9;
const TOP = 5;
const LOCKED_SHOWN = 5;
/** Node lines in the text; every node is in the structured answer. */
const NODES_SHOWN = 20;

interface GuestRef {
  cluster: string;
  vmid: number;
  name: string | null;
  node: string;
  value: number | null;
}

const ref = (g: TopGuest, value: number | null): GuestRef => ({
  cluster: g.cluster,
  vmid: g.vmid,
  name: g.name,
  node: g.node,
  value,
});

/** Guests whose status is unknown now (stale), apart from the current counts: by last known status, and where. */
interface UnknownGuests {
  total: number;
  /** Their last known status: what they were doing when last seen. */
  lastKnown: Record<string, number>;
  /** On nodes that are offline or not read (their cluster unreachable). */
  onUnreachableNodes: number;
  unreachableNodes: string[];
  /** On reachable nodes, but missing from the last read. */
  missingFromLastRead: number;
}

function unknownGuests(
  total: number,
  lastKnown: Record<string, number>,
  nodes: NodeView[],
  multi: boolean,
): UnknownGuests {
  const unreachable = nodes.filter((n) => (!n.online || n.stale) && n.guests.unknown > 0);
  const onUnreachableNodes = unreachable.reduce((sum, n) => sum + n.guests.unknown, 0);
  return {
    total,
    lastKnown,
    onUnreachableNodes,
    unreachableNodes: unreachable.map((n) => (multi ? `${n.cluster}/${n.node}` : n.node)),
    missingFromLastRead: Math.max(0, total - onUnreachableNodes),
  };
}

/** `417 on unreachable nodes pve5 (last known: 300 running, 117 stopped)`, or the mixed and missing cases. */
function unknownText(u: UnknownGuests): string {
  const lastKnown = `last known: ${Object.entries(u.lastKnown)
    .map(([k, v]) => `${v} ${untrusted(k, 20)}`)
    .join(', ')}`;
  const unreachable = `on unreachable nodes ${nameList(u.unreachableNodes)}`;
  if (!u.missingFromLastRead) return `${u.total} ${unreachable} (${lastKnown})`;
  if (!u.onUnreachableNodes) return `${u.total} missing from the last read, status unknown (${lastKnown})`;
  return `${u.total} status unknown (${lastKnown}): ${u.onUnreachableNodes} ${unreachable}, ${u.missingFromLastRead} missing from the last read`;
}

export const inventoryOverviewTool = defineTool({
  name: 'inventory_overview',
  title: 'Inventory overview',
  description:
    'Start here: sync health, guest counts (those on unreachable nodes apart, by last known status), how many tags, pools, bridges, VLANs, storages and ostypes exist, per-node allocation vs physical, top 5 guests by memory and cpu, problems (stale, another cluster at a URL, failed syncs, node memory over 90 %, storage over 85 %, locks, change signals the token cannot see, webhook subscriptions failing or disabled).',
  input: z.object({ cluster: text(63).optional() }).strict(),
  output: z.object({ clusters: Rows, guests: Obj, values: Obj, nodes: Rows, top: Obj, problems: Obj }),
  annotations: READ_ONLY,
  handler(args, { store, now, staleAfterMs }) {
    checkCluster(store, args.cluster);
    const scope = args.cluster === undefined ? {} : { cluster: args.cluster };
    const clusters = listClusters(store, now(), staleAfterMs).filter(
      (c) => args.cluster === undefined || c.cluster === args.cluster,
    );
    const byType = aggregate(store, 'type', scope);
    const byStatus = aggregate(store, 'status', scope);
    const nodes = listNodes(store, args.cluster).items.map(nodeView);
    const topMem = topGuests(store, 'mem', scope, TOP);
    const topCpu = topGuests(store, 'cpu', scope, TOP);
    const locked = listGuests(store, { ...scope, lock: true }, { limit: LOCKED_SHOWN, fields: ['name', 'lock'] });
    // A stale node's use is its last read's, not now's: it is said as stale, not as full.
    const fullMemory = nodes.filter(
      (n) => n.online && !n.stale && n.mem != null && n.maxmem && n.mem / n.maxmem > MEMORY_FULL,
    );
    const fullStorage = listStorage(store, scope).items.filter(
      (s) => s.usedFraction != null && s.usedFraction > STORAGE_FULL,
    );
    const tally = (groups: Array<{ key: string | null; guests: number }>): Record<string, number> =>
      Object.fromEntries(groups.map((g) => [g.key ?? 'none', g.guests]));
    const multi = clusters.length > 1;
    const unknownTotal = byStatus.totals.unknown;
    const lastKnown = unknownTotal
      ? tally(aggregate(store, 'lastKnownStatus', { ...scope, status: 'unknown' }).groups)
      : {};
    const unknown = unknownGuests(unknownTotal, lastKnown, nodes, multi);
    // How many values each filter takes, so an agent asks list_guests countBy=… for them instead of guessing.
    const values = countValues(store, scope);

    const problems = {
      staleClusters: clusters.filter((c) => c.stale || c.lastSuccessAt == null).map((c) => c.cluster),
      staleNodes: nodes.filter((n) => n.stale).map((n) => `${n.cluster}/${n.node}`),
      // Another cluster answering at a cluster's URL is said on its own, not as one more failing sync.
      otherCluster: clusters.flatMap((c) => (c.identityChanged ? [{ cluster: c.cluster, ...c.identityChanged }] : [])),
      failedSyncs: clusters
        .filter((c) => c.consecutiveFailures > 0 && !c.identityChanged)
        .map((c) => ({ cluster: c.cluster, failures: c.consecutiveFailures, error: c.lastError })),
      signalProblems: clusters.flatMap((c) =>
        Object.entries(c.signalProblems).map(([signal, problem]) => ({ cluster: c.cluster, signal, problem })),
      ),
      memoryInUse: fullMemory.map((n) => ({
        cluster: n.cluster,
        node: n.node,
        usedFraction: Math.round((n.mem! / n.maxmem!) * 10_000) / 10_000,
      })),
      fullStorage: fullStorage.map((s) => ({
        cluster: s.cluster,
        storage: s.storage,
        nodes: s.nodes,
        usedFraction: s.usedFraction!,
      })),
      locked: {
        total: locked.total,
        guests: locked.items.map((g) => ({ cluster: g.cluster, vmid: g.vmid, name: g.name, lock: g.lock })),
      },
      webhooks: webhookProblems(store),
    };
    const structured = {
      clusters: clusters.map((c) => ({
        cluster: c.cluster,
        pveVersion: c.pveVersion,
        quorate: c.quorate,
        stale: c.stale,
        lastSuccessAt: c.lastSuccessAt,
      })),
      guests: {
        total: byType.totals.guests,
        templates: byType.totals.templates,
        byType: tally(byType.groups),
        byStatus: tally(byStatus.groups),
        unknown,
      },
      values,
      nodes,
      top: { memory: topMem.map((g) => ref(g, g.mem)), cpu: topCpu.map((g) => ref(g, g.cpu)) },
      problems,
    };

    const name = (g: { cluster: string; vmid: number; name: string | null }): string =>
      `${multi ? `${g.cluster}/` : ''}${g.vmid} ${untrusted(g.name, 30)}`;
    const counts = (r: Record<string, number>): string =>
      Object.entries(r)
        .map(([k, v]) => `${untrusted(k, 20)} ${v}`)
        .join(', ') || '-';
    // The status counts of guests the last read confirmed; those whose status is unknown are said apart.
    const current = Object.fromEntries(Object.entries(structured.guests.byStatus).filter(([k]) => k !== 'unknown'));
    const lines = [
      ...clusters.map(
        (c) =>
          `cluster ${c.cluster}: pve ${untrusted(c.pveVersion, 30)}, ${c.quorate === false ? 'NOT quorate' : c.quorate ? 'quorate' : 'quorum unknown'}, ${c.stale ? 'STALE, ' : ''}last sync ${shortTime(c.lastSuccessAt)}`,
      ),
      `guests ${structured.guests.total} (${counts(structured.guests.byType)}; ${Object.keys(current).length || !unknown.total ? `${counts(current)}; ` : ''}templates ${structured.guests.templates})${unknown.total ? `; ${unknownText(unknown)}` : ''}`,
      `filter values: ${Object.entries(values)
        .map(([k, n]) => `${n} ${k}`)
        .join(', ')} (list_guests countBy=tag|pool|bridge|vlan|storage|ostype lists them with counts)`,
      nodes.length ? 'nodes (_alloc: non-template guests, running or not; _run: running now):' : 'no node known yet',
      ...(nodes.length
        ? [
            table(
              NODE_COLUMNS,
              nodes.slice(0, NODES_SHOWN).map((n) => nodeRow(n, multi)),
            ),
          ]
        : []),
      ...(nodes.length > NODES_SHOWN ? [`+${nodes.length - NODES_SHOWN} more nodes: list_nodes`] : []),
      `top memory used${unknown.total ? ' (guests of status unknown left out)' : ''}: ${topMem.map((g) => `${name(g)} ${bytes(g.mem)}/${bytes(g.maxmem)}`).join('; ') || '-'}`,
      `top cpu (of own vcpus): ${topCpu.map((g) => `${name(g)} ${percent(g.cpu)} of ${g.maxcpu ?? '-'}`).join('; ') || '-'}`,
      'problems:',
    ];
    const issues = [
      ...clusters
        .filter((c) => problems.staleClusters.includes(c.cluster))
        .map(
          (c) =>
            `cluster ${c.cluster} stale${c.overdue ? ` (no sync for ${duration(c.ageMs)}; is \`proxmox-inventory serve\` running?)` : ''}`,
        ),
      ...(problems.staleNodes.length
        ? [`stale nodes: ${problems.staleNodes.map((n) => untrusted(n, 130)).join(', ')}`]
        : []),
      ...problems.otherCluster.map(
        (o) =>
          `cluster ${o.cluster}: ANOTHER CLUSTER answers at its URL (${oneLine(o.seen)}, not ${oneLine(o.expected)}); nothing applied until \`proxmox-inventory cluster reset ${o.cluster}\` or the old one answers`,
      ),
      ...problems.failedSyncs.map((f) => `sync of ${f.cluster} failing (${f.failures}x): ${untrusted(f.error, 120)}`),
      ...problems.signalProblems.map(
        (p) => `cluster ${p.cluster} (${oneLine(p.signal, 30)} signal): ${oneLine(p.problem, 400)}`,
      ),
      ...fullMemory.map(
        (n) =>
          `node ${untrusted(multi ? `${n.cluster}/${n.node}` : n.node, 130)} memory ${percent(n.mem! / n.maxmem!)} in use (${bytes(n.mem)}/${bytes(n.maxmem)})`,
      ),
      ...fullStorage.map(
        (s) =>
          `storage ${s.shared ? '' : `${s.nodes.map((n) => untrusted(n, 63)).join(',')}/`}${untrusted(s.storage, 40)}${multi ? ` (${s.cluster})` : ''} ${percent(s.usedFraction)} used (${bytes(s.disk)}/${bytes(s.maxdisk)})`,
      ),
      ...problems.webhooks.map((w) => webhookProblemLine(w, untrusted)),
      ...(locked.total
        ? [
            `locked guests ${locked.total}: ${locked.items.map((g) => `${name(g)} ${untrusted(g.lock, 20)}`).join('; ')}${locked.total > locked.items.length ? '; …' : ''}`,
          ]
        : []),
    ];
    lines.push(...(issues.length ? issues.map((i) => `- ${i}`) : ['- none']));
    return { structured, text: lines.join('\n') };
  },
});
