/**
 * Extracts the endpoints this project touches from the official Proxmox VE API schema into
 * src/sim/pve-schema.json, which the simulator validates parameters against and the contract
 * tests check response shapes against. The extracted file ships with the code: this is needed
 * only to follow a new Proxmox VE release.
 *
 * The schema is the API viewer's data, installed on every Proxmox VE node by the pve-docs
 * package as /usr/share/pve-docs/api-viewer/apidoc.js (also served at
 * https://pve.proxmox.com/pve-docs/api-viewer/apidoc.js for the current release):
 *
 *   scp root@pve1:/usr/share/pve-docs/api-viewer/apidoc.js .
 *   npm run extract-schema -- apidoc.js [OUT]    # OUT defaults to src/sim/pve-schema.json
 *
 * apidoc.js (`const apiSchema = [...];` and the viewer's code), apidata.js (8.x: `var pveapi =
 * [...];`) and the bare JSON array are all read.
 *
 * Descriptions and UI hints are dropped to keep the file small; everything that
 * constrains a value (type, optional, enum, format, pattern, minimum, maximum,
 * maxLength, items, properties, additionalProperties) and the permission checks are kept.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const SHIPPED = fileURLToPath(new URL('../src/sim/pve-schema.json', import.meta.url));
const WHERE_FROM =
  'copy /usr/share/pve-docs/api-viewer/apidoc.js from a Proxmox VE node (package pve-docs) or download ' +
  'https://pve.proxmox.com/pve-docs/api-viewer/apidoc.js, then run `npm run extract-schema -- apidoc.js`';

/** A failure the person running the script can fix: printed as one sentence, without a stack. */
class ExtractError extends Error {}

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

/**
 * The JSON array that starts at the first `[`: apidoc.js follows it with the viewer's code, so its
 * end is found by counting brackets outside strings rather than by the end of the file.
 */
function schemaArrayText(text: string): string | undefined {
  const start = text.indexOf('[');
  if (start < 0) return undefined;
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === '[') depth++;
    else if (ch === ']' && --depth === 0) return text.slice(start, i + 1);
  }
  return undefined;
}

function loadSchema(file: string, text: string): SchemaNode[] {
  const json = schemaArrayText(text);
  try {
    if (json) return JSON.parse(json) as SchemaNode[];
  } catch {
    // reported below, with what to use instead
  }
  throw new ExtractError(`${file} holds no API schema (a JSON array of paths); ${WHERE_FROM}`);
}

function readSource(file: string | undefined): Buffer {
  if (!file)
    throw new ExtractError(
      `no API schema given (src/sim/pve-schema.json ships extracted; this only updates it): ${WHERE_FROM}`,
    );
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ExtractError(`cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'}); ${WHERE_FROM}`);
  }
}

function indexByPath(nodes: SchemaNode[], into = new Map<string, SchemaNode>()): Map<string, SchemaNode> {
  for (const node of nodes) {
    into.set(node.path, node);
    if (node.children) indexByPath(node.children, into);
  }
  return into;
}

function main([source, out = SHIPPED]: string[]): void {
  const raw = readSource(source);
  const byPath = indexByPath(loadSchema(source!, raw.toString('utf8')));
  const missing = ENDPOINTS.filter((endpoint) => {
    const [method, path] = endpoint.split(' ') as [string, string];
    return !byPath.get(path)?.info?.[method];
  });
  if (missing.length)
    throw new ExtractError(
      `${source} lacks ${missing.length} of the ${ENDPOINTS.length} endpoints this project uses (${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', …' : ''}); is it a Proxmox VE 8 or 9 apidoc.js?`,
    );
  const endpoints: Record<string, unknown> = {};
  for (const endpoint of ENDPOINTS) {
    const [method, path] = endpoint.split(' ') as [string, string];
    const info = byPath.get(path)!.info![method]!;
    endpoints[endpoint] = {
      parameters: strip(info.parameters ?? {}),
      returns: strip(info.returns ?? {}),
      permissions: info.permissions ?? null,
    };
  }
  const schema = {
    generatedBy: 'scripts/extract-pve-schema.ts (npm run extract-schema)',
    source: { file: source!.split('/').pop(), sha256: createHash('sha256').update(raw).digest('hex') },
    endpoints,
  };
  writeFileSync(out, JSON.stringify(schema, null, 1) + '\n');
  console.log(`wrote ${out}: ${ENDPOINTS.length} endpoints from ${source}`);
}

try {
  main(process.argv.slice(2));
} catch (err) {
  if (!(err instanceof ExtractError)) throw err;
  process.stderr.write(`extract-schema: ${err.message}\n`);
  process.exitCode = 2;
}
