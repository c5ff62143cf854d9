/**
 * Extracts the endpoints this project touches from the official Proxmox VE API schema
 * (pve-docs api-viewer/apidata.js, converted to JSON in ../shared/pve/) into
 * src/sim/pve-schema.json, which the simulator validates parameters against and the
 * contract tests check response shapes against.
 *
 *   npm run extract-schema                       # reads ../shared/pve/pve-9.1-apischema.json beside the checkout
 *   npm run extract-schema -- path/to/apidata.js # or an apidata.js / JSON of another release
 *
 * Descriptions and UI hints are dropped to keep the file small; everything that
 * constrains a value (type, optional, enum, format, pattern, minimum, maximum,
 * maxLength, items, properties, additionalProperties) and the permission checks are kept.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';

export const ENDPOINTS = [
  'GET /version',
  'GET /access/permissions',
  // Not served: its return properties are the privilege catalogue (AccessControl.pm $valid_privs),
  // which the simulator grants in full to the root token.
  'GET /access/roles/{roleid}',
  'GET /cluster/resources',
  'GET /cluster/status',
  'GET /cluster/tasks',
  'GET /cluster/log',
  'GET /cluster/nextid',
  'GET /cluster/ha/status/current',
  'GET /cluster/ha/resources',
  'GET /pools',
  'GET /storage',
  'GET /nodes',
  'GET /nodes/{node}/status',
  'GET /nodes/{node}/storage',
  'GET /nodes/{node}/storage/{storage}/status',
  'GET /nodes/{node}/tasks',
  'GET /nodes/{node}/tasks/{upid}/status',
  'GET /nodes/{node}/tasks/{upid}/log',
  'GET /nodes/{node}/qemu',
  'GET /nodes/{node}/lxc',
  'GET /nodes/{node}/qemu/{vmid}/config',
  'POST /nodes/{node}/qemu/{vmid}/config',
  'PUT /nodes/{node}/qemu/{vmid}/config',
  'GET /nodes/{node}/lxc/{vmid}/config',
  'PUT /nodes/{node}/lxc/{vmid}/config',
  'GET /nodes/{node}/qemu/{vmid}/status/current',
  'GET /nodes/{node}/lxc/{vmid}/status/current',
  'POST /nodes/{node}/qemu/{vmid}/agent/exec',
  'GET /nodes/{node}/qemu/{vmid}/agent/exec-status',
  ...(['qemu', 'lxc'] as const).flatMap((t) => [
    ...['start', 'stop', 'shutdown', 'reboot', 'suspend', 'resume'].map(
      (a) => `POST /nodes/{node}/${t}/{vmid}/status/${a}`,
    ),
    `GET /nodes/{node}/${t}/{vmid}/snapshot`,
    `POST /nodes/{node}/${t}/{vmid}/snapshot`,
    `POST /nodes/{node}/${t}/{vmid}/snapshot/{snapname}/rollback`,
    `DELETE /nodes/{node}/${t}/{vmid}/snapshot/{snapname}`,
    `POST /nodes/{node}/${t}/{vmid}/clone`,
    `POST /nodes/{node}/${t}/{vmid}/migrate`,
  ]),
];

const KEEP = new Set([
  'type',
  'optional',
  'enum',
  'format',
  'pattern',
  'minimum',
  'maximum',
  'maxLength',
  'items',
  'properties',
  'additionalProperties',
  'default',
]);

interface SchemaNode {
  path: string;
  info?: Record<string, { parameters?: unknown; returns?: unknown; permissions?: unknown }>;
  children?: SchemaNode[];
}

function strip(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(strip);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (key === 'properties' || key === 'format') {
      // `properties` maps names to schemas; `format` is a name or an inline property-string schema.
      out[key] =
        typeof v === 'object' && v !== null && !Array.isArray(v)
          ? Object.fromEntries(Object.entries(v).map(([k, s]) => [k, strip(s)]))
          : v;
    } else if (KEEP.has(key)) {
      out[key] = strip(v);
    }
  }
  return out;
}

function loadSchema(file: string): SchemaNode[] {
  const text = readFileSync(file, 'utf8').trim();
  // apidata.js is `const apiSchema = [...];` (9.x) or `var pveapi = [...];` (8.x); the JSON copies are the bare array.
  const json = text.replace(/^(const\s+apiSchema|var\s+pveapi)\s*=\s*/, '').replace(/;\s*$/, '');
  return JSON.parse(json) as SchemaNode[];
}

function indexByPath(nodes: SchemaNode[], into = new Map<string, SchemaNode>()): Map<string, SchemaNode> {
  for (const node of nodes) {
    into.set(node.path, node);
    if (node.children) indexByPath(node.children, into);
  }
  return into;
}

function main(): void {
  const source = process.argv[2] ?? fileURLToPath(new URL('../../shared/pve/pve-9.1-apischema.json', import.meta.url));
  const raw = readFileSync(source);
  const byPath = indexByPath(loadSchema(source));
  const endpoints: Record<string, unknown> = {};
  for (const endpoint of ENDPOINTS) {
    const [method, path] = endpoint.split(' ') as [string, string];
    const info = byPath.get(path)?.info?.[method];
    if (!info) throw new Error(`${endpoint} is not in ${source}`);
    endpoints[endpoint] = {
      parameters: strip(info.parameters ?? {}),
      returns: strip(info.returns ?? {}),
      permissions: info.permissions ?? null,
    };
  }
  const out = {
    generatedBy: 'scripts/extract-pve-schema.ts (npm run extract-schema)',
    source: { file: source.split('/').pop(), sha256: createHash('sha256').update(raw).digest('hex') },
    endpoints,
  };
  writeFileSync(new URL('../src/sim/pve-schema.json', import.meta.url), JSON.stringify(out, null, 1) + '\n');
  console.log(`wrote src/sim/pve-schema.json: ${ENDPOINTS.length} endpoints from ${source}`);
}

main();
