/**
 * MCP resources: a cluster, a guest and a node as JSON documents, addressable by URI
 * (`proxmox://cluster/{name}`, `proxmox://guest/{cluster}/{vmid}`, `proxmox://node/{cluster}/{node}`),
 * and completed in their pickers. They read the same store as the tools. A guest's `{vmid}` may
 * also be its name (what a picker offers for letters typed); the document is the same.
 * resources/list names the clusters and nodes, a page at a time; guests are left to the template
 * (listing them cost 28k tokens at 2,000 guests, and grew with the cluster).
 */
import { ResourceTemplate, type McpServer, type ResourceMetadata } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Variables } from '@modelcontextprotocol/sdk/shared/uriTemplate.js';
import {
  ListResourcesRequestSchema,
  ReadResourceRequestSchema,
  type ListResourcesResult,
  type ReadResourceResult,
  type Resource,
} from '@modelcontextprotocol/sdk/types.js';
import type { Store } from '../store/db.js';
import { freshness, getGuest, getNode, listClusters, listNodes, oneRead, syncStatus } from '../store/queries.js';
import { clusterNames, guestRefs, nodeNames, type Completer } from './completions.js';
import { invalidParams, resourceNotFound } from './request-error.js';
import type { ToolContext } from './tool.js';

/** Resources per page of resources/list. */
export const RESOURCES_PAGE = 100;

/** Longer than any URI of ours by far; the SDK's own limit (1 MB) fails as an internal error. */
const MAX_URI_LENGTH = 2_048;

interface ResourceKind {
  name: string;
  template: ResourceTemplate;
  metadata: ResourceMetadata;
  /** What resources/list names of this kind (none for guests). */
  list(store: Store): Resource[];
  /** Completers by template variable. */
  complete: Record<string, Completer>;
  read(uri: URL, vars: Record<string, string>, store: Store): ReadResourceResult;
}

const json = (uri: URL, body: unknown): ReadResourceResult => ({
  contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(body) }],
});

const notFound = (uri: URL, what: string): never => resourceNotFound(`${uri.href}: no ${what} in the inventory`);

const one = (v: string | string[] | undefined): string => (Array.isArray(v) ? (v[0] ?? '') : (v ?? ''));

/** A URI's part as the inventory names it: `%C3%BC` is `ü`; a `%` that escapes nothing is the caller's mistake. */
function decoded(name: string, value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return invalidParams(
      `uri: the ${name} ${JSON.stringify(value.slice(0, 60))} holds a % that escapes nothing; write %25 for a %`,
    );
  }
}

const flat = (vars: Variables): Record<string, string> =>
  Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, decoded(k, one(v))]));

const fresh = (store: Store, context: ToolContext): ReturnType<typeof freshness> =>
  freshness(store, context.now(), context.staleAfterMs);

function resourceKinds(context: ToolContext): ResourceKind[] {
  return [clusterResource(context), guestResource(context), nodeResource(context)];
}

function clusterResource(context: ToolContext): ResourceKind {
  return {
    name: 'cluster',
    template: new ResourceTemplate('proxmox://cluster/{name}', { list: undefined }),
    list: (store) =>
      listClusters(store).map((c) => ({
        uri: `proxmox://cluster/${c.cluster}`,
        name: c.cluster,
        mimeType: 'application/json',
      })),
    metadata: {
      title: 'Cluster',
      description: 'A cluster: sync status, freshness and its nodes.',
      mimeType: 'application/json',
    },
    complete: { name: clusterNames },
    read: (uri, { name = '' }, store) => {
      const status =
        syncStatus(store, context.now(), context.staleAfterMs).clusters.find((c) => c.cluster === name) ??
        notFound(uri, `cluster ${name}`);
      return json(uri, { ...status, nodes: listNodes(store, name).items, freshness: fresh(store, context) });
    },
  };
}

function guestResource(context: ToolContext): ResourceKind {
  return {
    name: 'guest',
    template: new ResourceTemplate('proxmox://guest/{cluster}/{vmid}', { list: undefined }),
    list: () => [],
    metadata: {
      title: 'Guest',
      description:
        'A VM or container, by vmid or name, with its parsed config. Not listed (list_guests pages through them); the picker completes vmids and names.',
      mimeType: 'application/json',
    },
    complete: { cluster: clusterNames, vmid: guestRefs },
    read: (uri, { cluster = '', vmid = '' }, store) => {
      // Digits are a vmid; anything else is a name, as the completion offers them.
      const found = getGuest(store, /^\d+$/.test(vmid) ? { cluster, vmid: Number(vmid) } : { cluster, name: vmid });
      if (found.kind === 'ambiguous')
        invalidParams(
          `${uri.href}: the name ${vmid} is held by guests ${found.candidates.map((c) => c.vmid).join(', ')} in ${cluster}; use the vmid`,
        );
      if (found.kind !== 'found') return notFound(uri, `guest ${cluster}/${vmid}`);
      return json(uri, { ...found.guest, freshness: fresh(store, context) });
    },
  };
}

function nodeResource(context: ToolContext): ResourceKind {
  return {
    name: 'node',
    template: new ResourceTemplate('proxmox://node/{cluster}/{node}', { list: undefined }),
    list: (store) =>
      listNodes(store).items.map((n) => ({
        uri: `proxmox://node/${n.cluster}/${n.node}`,
        name: `${n.cluster}/${n.node}`,
        mimeType: 'application/json',
      })),
    metadata: {
      title: 'Node',
      description: 'A node: status, capacity (physical vs allocated), guest counts and storage.',
      mimeType: 'application/json',
    },
    complete: { cluster: clusterNames, node: nodeNames },
    read: (uri, { cluster = '', node = '' }, store) => {
      const found = getNode(store, cluster, node);
      if (found.kind !== 'found') return notFound(uri, `node ${cluster}/${node}`);
      return json(uri, { ...found.node, freshness: fresh(store, context) });
    },
  };
}

/**
 * Registers the resources; returns their completers by URI template. resources/read is answered
 * here rather than by the SDK, whose handler makes an unparsable URI an internal error (-32603)
 * and an unknown one invalid params: here they are invalid params (-32602) and resource not found
 * (-32002), as the MCP specification says.
 */
export function registerResources(server: McpServer, context: ToolContext): Record<string, Record<string, Completer>> {
  const kinds = resourceKinds(context);
  for (const kind of kinds)
    server.registerResource(kind.name, kind.template, kind.metadata, (uri, vars) =>
      readKind(kind, uri, flat(vars), context),
    );
  server.server.setRequestHandler(ReadResourceRequestSchema, (request) =>
    readResource(kinds, request.params.uri, context),
  );
  server.server.setRequestHandler(ListResourcesRequestSchema, (request) =>
    listResources(kinds, request.params?.cursor, context),
  );
  return Object.fromEntries(kinds.map((k) => [k.template.uriTemplate.toString(), k.complete]));
}

/**
 * A page of the clusters and nodes, in URI order; the cursor is the last URI of the previous page,
 * so a page follows on from it even when a node came or went in between.
 */
function listResources(kinds: ResourceKind[], cursor: string | undefined, context: ToolContext): ListResourcesResult {
  if (cursor !== undefined && !cursor.startsWith('proxmox://'))
    invalidParams(
      'cursor: pass nextCursor of the previous resources/list answer unchanged, or none for the first page',
    );
  const store = context.store;
  if (!store) return { resources: [] };
  const all = oneRead(store, () => kinds.flatMap((k) => k.list(store))).sort((a, b) =>
    a.uri < b.uri ? -1 : a.uri > b.uri ? 1 : 0,
  );
  const rest = cursor === undefined ? all : all.filter((r) => r.uri > cursor);
  const page = rest.slice(0, RESOURCES_PAGE);
  return rest.length > RESOURCES_PAGE ? { resources: page, nextCursor: page.at(-1)!.uri } : { resources: page };
}

function readResource(kinds: ResourceKind[], text: string, context: ToolContext): ReadResourceResult {
  const uri = parseUri(text);
  for (const kind of kinds) {
    const vars = kind.template.uriTemplate.match(uri.href);
    if (vars) return readKind(kind, uri, flat(vars), context);
  }
  const templates = kinds.map((k) => k.template.uriTemplate.toString()).join(', ');
  return resourceNotFound(`${uri.href}: no such resource; the resources are ${templates}`);
}

function parseUri(text: string): URL {
  if (text.length > MAX_URI_LENGTH)
    invalidParams(`uri: ${text.length} characters; a resource URI has at most ${MAX_URI_LENGTH}`);
  try {
    return new URL(text);
  } catch {
    return invalidParams(`uri: ${JSON.stringify(text.slice(0, 100))} is not a URI; e.g. proxmox://cluster/{name}`);
  }
}

function readKind(
  kind: ResourceKind,
  uri: URL,
  vars: Record<string, string>,
  context: ToolContext,
): ReadResourceResult {
  const store =
    context.store ??
    resourceNotFound(
      `${uri.href}: no inventory yet: the daemon has not synced any cluster; start \`proxmox-inventory serve\` (or run \`proxmox-inventory sync --once\`)`,
    );
  return oneRead(store, () => kind.read(uri, vars, store));
}
