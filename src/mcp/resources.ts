/**
 * MCP resources: a cluster, a guest and a node as JSON documents, addressable by URI
 * (`proxmox://cluster/{name}`, `proxmox://guest/{cluster}/{vmid}`, `proxmox://node/{cluster}/{node}`),
 * listed for clients that browse. They read the same store as the tools.
 */
import { ResourceTemplate, type McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { ReadResourceResult } from '@modelcontextprotocol/sdk/types.js';
import {
  freshness,
  getGuest,
  getNode,
  listClusters,
  listGuests,
  listNodes,
  oneRead,
  syncStatus,
} from '../store/queries.js';
import type { ToolContext } from './tool.js';

/** Guests listed as resources; beyond this, list_guests pages through them. */
const LISTED_GUESTS = 500;

const json = (uri: URL, body: unknown): ReadResourceResult => ({
  contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(body) }],
});

function notFound(uri: URL, what: string): never {
  throw new Error(`${uri.href}: no ${what} in the inventory`);
}

export function registerResources(server: McpServer, context: ToolContext): void {
  const store = (): NonNullable<ToolContext['store']> =>
    context.store ?? notFound(new URL('proxmox://inventory'), 'data yet (the daemon has not synced)');
  const one = (v: string | string[] | undefined): string => (Array.isArray(v) ? (v[0] ?? '') : (v ?? ''));

  server.registerResource(
    'cluster',
    new ResourceTemplate('proxmox://cluster/{name}', {
      list: () => ({
        resources: context.store
          ? listClusters(context.store).map((c) => ({
              uri: `proxmox://cluster/${c.cluster}`,
              name: c.cluster,
              mimeType: 'application/json',
            }))
          : [],
      }),
    }),
    { title: 'Cluster', description: 'A cluster: sync status, freshness and its nodes.', mimeType: 'application/json' },
    (uri, vars) => {
      const name = one(vars.name);
      return oneRead(store(), () => {
        const status =
          syncStatus(store(), context.now(), context.staleAfterMs).clusters.find((c) => c.cluster === name) ??
          notFound(uri, `cluster ${name}`);
        return json(uri, {
          ...status,
          nodes: listNodes(store(), name).items,
          freshness: freshness(store(), context.now(), context.staleAfterMs),
        });
      });
    },
  );

  server.registerResource(
    'guest',
    new ResourceTemplate('proxmox://guest/{cluster}/{vmid}', {
      list: () => ({
        resources: context.store
          ? listGuests(context.store, {}, { limit: LISTED_GUESTS, fields: ['name'] }).items.map((g) => ({
              uri: `proxmox://guest/${g.cluster}/${g.vmid}`,
              name: `${g.cluster}/${g.vmid} ${g.name ?? ''}`.trim(),
              mimeType: 'application/json',
            }))
          : [],
      }),
    }),
    {
      title: 'Guest',
      description: `A VM or container with its parsed config (the first ${LISTED_GUESTS} are listed; list_guests pages through all).`,
      mimeType: 'application/json',
    },
    (uri, vars) => {
      return oneRead(store(), () => {
        const found = getGuest(store(), { cluster: one(vars.cluster), vmid: Number(one(vars.vmid)) });
        if (found.kind !== 'found') notFound(uri, `guest ${one(vars.cluster)}/${one(vars.vmid)}`);
        return json(uri, { ...found.guest, freshness: freshness(store(), context.now(), context.staleAfterMs) });
      });
    },
  );

  server.registerResource(
    'node',
    new ResourceTemplate('proxmox://node/{cluster}/{node}', {
      list: () => ({
        resources: context.store
          ? listNodes(context.store).items.map((n) => ({
              uri: `proxmox://node/${n.cluster}/${n.node}`,
              name: `${n.cluster}/${n.node}`,
              mimeType: 'application/json',
            }))
          : [],
      }),
    }),
    {
      title: 'Node',
      description: 'A node: status, capacity (physical vs allocated), guest counts and storage.',
      mimeType: 'application/json',
    },
    (uri, vars) => {
      return oneRead(store(), () => {
        const found = getNode(store(), one(vars.cluster), one(vars.node));
        if (found.kind !== 'found') notFound(uri, `node ${one(vars.cluster)}/${one(vars.node)}`);
        return json(uri, { ...found.node, freshness: freshness(store(), context.now(), context.staleAfterMs) });
      });
    },
  );
}
