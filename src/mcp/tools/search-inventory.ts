import { z } from 'zod';
import { QUERY_LIMITS, searchInventory } from '../../store/queries.js';
import { quoted, table, untrusted } from '../render.js';
import { count, text } from '../schemas.js';
import { defineTool, READ_ONLY } from '../tool.js';
import { Rows, STALE_WHY, statusCell } from './shared.js';

export const searchInventoryTool = defineTool({
  name: 'search_inventory',
  title: 'Search the inventory',
  description:
    'Match one string against names, tags, descriptions, MACs and IPs (or their start), bridges, `vlan N`, disk volumes, vmids, node names; says which field matched.',
  input: z.object({ query: text(200), limit: count(1, QUERY_LIMITS.search.max).optional() }).strict(),
  output: z.object({ total: z.number(), results: Rows }),
  annotations: READ_ONLY,
  handler(args, { store }) {
    const found = searchInventory(store, args.query, args.limit);
    const results = found.results.map(({ score: _score, ...r }) => r);
    const multi = new Set(results.map((r) => r.cluster)).size > 1;
    // Stale guests' status is unknown: a page of only those says so once, a mixed one marks them.
    const stale = results.filter((r) => r.kind === 'guest' && r.lastKnownStatus !== undefined).length;
    const allStale = stale > 0 && stale === results.length;
    const rows = results.map((r) => [
      r.kind === 'guest'
        ? `${multi ? `${r.cluster}/` : ''}${r.vmid}`
        : `node:${untrusted(multi ? `${r.cluster}/${r.node}` : r.node, 130)}`,
      r.kind === 'guest' ? untrusted(r.name, 40) : '-',
      r.kind === 'guest' ? `${untrusted(r.type, 10)}@${untrusted(r.node, 63)}` : '-',
      r.kind === 'guest'
        ? allStale
          ? untrusted(r.lastKnownStatus ?? r.status, 20)
          : statusCell(r)
        : untrusted(r.status, 20),
      r.matches.map((m) => `${m.field} ${untrusted(m.value, 60)}`).join('; '),
    ]);
    const staleNote = !stale
      ? ''
      : allStale
        ? `; all stale (${STALE_WHY}): status unknown`
        : `; ${stale} stale: status unknown(last known)`;
    const head = results.length
      ? `${results.length} of ${found.total} matches for ${quoted(found.query)}${staleNote}`
      : `nothing matches ${quoted(found.query)}; try part of a name, a tag, a MAC, an IP, a volume, a bridge, vlan N or a vmid`;
    return {
      structured: { total: found.total, results },
      text: results.length
        ? `${head}\n${table(['id', 'name', 'where', allStale ? 'lastKnownStatus' : 'status', 'matched'], rows)}`
        : head,
    };
  },
});
