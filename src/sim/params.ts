/**
 * Parameter verification and permission checks as pve-common JSONSchema.pm and the API's
 * `permissions` declarations do them, driven by the official schema extracted into pve-schema.json.
 * Messages are Proxmox's own wording, so clients see the same `errors` objects.
 */
import { readFileSync } from 'node:fs';
import { paramError, PveHttpError } from './state.js';

export interface ParamSchema {
  type?: string;
  optional?: number;
  enum?: string[];
  format?: unknown;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  maxLength?: number;
  items?: ParamSchema;
}

interface EndpointSchema {
  parameters: { additionalProperties?: number; properties?: Record<string, ParamSchema> };
  permissions: unknown;
}

const schemaFile = JSON.parse(readFileSync(new URL('./pve-schema.json', import.meta.url), 'utf8')) as {
  endpoints: Record<string, EndpointSchema>;
};

export function endpointSchema(endpoint: string): EndpointSchema | undefined {
  return schemaFile.endpoints[endpoint];
}

export type RawParams = Record<string, string | string[]>;
export type Params = Record<string, string | number | boolean | string[]>;

const FORMATS: Record<string, { re: RegExp; what: string }> = {
  'pve-node': { re: /^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/, what: 'node name' },
  'pve-configid': { re: /^[a-z][a-z0-9_-]+$/i, what: 'configuration ID' },
  'pve-storage-id': { re: /^[a-z][a-z0-9\-_.]*[a-z0-9]$/i, what: 'storage ID' },
  'pve-poolid': { re: /^[A-Za-z0-9_\-.]+(?:\/[A-Za-z0-9_\-.]+){0,2}$/, what: 'pool ID' },
};

/**
 * A schema pattern as JSONSchema.pm matches it (`m/^$pattern$/`). `(?^:…)` is how Perl prints a
 * qr// without flags and `(?>…)` an atomic group; JS has neither, and for a whole-string match a
 * plain group accepts the same strings (e.g. the `userid` of GET /access/permissions).
 */
function perlPattern(pattern: string): RegExp {
  return new RegExp(`^(?:${pattern.replaceAll('(?^:', '(?:').replaceAll('(?>', '(?:')})$`);
}

const TRUE = /^(1|on|yes|true)$/i;
const FALSE = /^(0|off|no|false)$/i;

function checkValue(
  schema: ParamSchema,
  raw: string | string[],
): { value?: string | number | boolean | string[]; error?: string } {
  if (schema.type === 'array') {
    const list = Array.isArray(raw) ? raw : [raw];
    return { value: list.map(String) };
  }
  const text = Array.isArray(raw) ? (raw[0] ?? '') : raw;
  switch (schema.type) {
    case 'boolean':
      if (TRUE.test(text)) return { value: true };
      if (FALSE.test(text)) return { value: false };
      return { error: `type check ('boolean') failed - got '${text}'` };
    case 'integer':
    case 'number': {
      const ok =
        schema.type === 'integer' ? /^[+-]?\d+$/.test(text) : /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text);
      if (!ok) return { error: `type check ('${schema.type}') failed - got '${text}'` };
      const n = Number(text);
      if (schema.minimum !== undefined && n < schema.minimum)
        return { error: `value must have a minimum value of ${schema.minimum}` };
      if (schema.maximum !== undefined && n > schema.maximum)
        return { error: `value must have a maximum value of ${schema.maximum}` };
      return { value: n };
    }
    default: {
      if (schema.enum && !schema.enum.includes(text))
        return { error: `value '${text}' does not have a value in the enumeration '${schema.enum.join(', ')}'` };
      if (schema.maxLength !== undefined && text.length > schema.maxLength)
        return { error: `value may only be ${schema.maxLength} characters long` };
      if (schema.pattern && !perlPattern(schema.pattern).test(text))
        return { error: `value does not match the regex pattern` };
      const format = typeof schema.format === 'string' ? FORMATS[schema.format] : undefined;
      if (format && !format.re.test(text)) return { error: `invalid format - invalid ${format.what} '${text}'` };
      return { value: text };
    }
  }
}

/** `net0` is declared as `net[n]` in the schema. */
function declared(properties: Record<string, ParamSchema>, name: string): ParamSchema | undefined {
  return properties[name] ?? properties[name.replace(/\d+$/, '[n]')];
}

/**
 * Verifies every parameter against the endpoint's schema and returns them typed.
 * Unknown, missing and malformed parameters all land in one 400 `errors` object, as in Proxmox.
 */
export function verifyParams(endpoint: string, raw: RawParams): Params {
  const schema = endpointSchema(endpoint);
  if (!schema) return raw;
  const properties = schema.parameters.properties ?? {};
  const errors: Record<string, string> = {};
  const out: Params = {};
  for (const [name, value] of Object.entries(raw)) {
    const prop = declared(properties, name);
    if (!prop) {
      errors[name] = 'property is not defined in schema and the schema does not allow additional properties';
      continue;
    }
    const checked = checkValue(prop, value);
    if (checked.error) errors[name] = checked.error;
    else out[name] = checked.value!;
  }
  for (const [name, prop] of Object.entries(properties)) {
    if (!prop.optional && !name.includes('[n]') && !(name in raw))
      errors[name] = 'property is missing and it is not optional';
  }
  if (Object.keys(errors).length) throw paramError(errors);
  return out;
}

/** A token's privileges; `*` grants everything. */
export type Privileges = ReadonlySet<string>;

function substitute(path: string, params: Params | RawParams): string {
  return path.replace(/\{(\w+)\}/g, (_, key: string) => String(params[key] ?? ''));
}

/**
 * Evaluates a schema `permissions.check` (`["perm", path, [privs], "any", 1]`, `["and", …]`,
 * `["or", …]`, `["perm", …, "require_param", p]`); returns the first failing (path, privilege).
 */
function evaluate(
  check: unknown,
  privs: Privileges,
  params: Params | RawParams,
): { path: string; priv: string } | undefined {
  if (!Array.isArray(check) || privs.has('*')) return undefined;
  const [op, ...rest] = check as [string, ...unknown[]];
  if (op === 'and') {
    for (const sub of rest) {
      const failed = evaluate(sub, privs, params);
      if (failed) return failed;
    }
    return undefined;
  }
  if (op === 'or') {
    let first: { path: string; priv: string } | undefined;
    for (const sub of rest) {
      const failed = evaluate(sub, privs, params);
      if (!failed) return undefined;
      first ??= failed;
    }
    return first;
  }
  if (op === 'perm') {
    const [pathTemplate, wanted, ...opts] = rest as [string, string[], ...unknown[]];
    const any = opts.includes('any');
    const required = opts.indexOf('require_param');
    if (required >= 0 && params[String(opts[required + 1])] === undefined)
      return { path: substitute(pathTemplate, params), priv: wanted.join('|') };
    const path = substitute(pathTemplate, params);
    if (any) return wanted.some((p) => privs.has(p)) ? undefined : { path, priv: wanted.join('|') };
    const missing = wanted.find((p) => !privs.has(p));
    return missing ? { path, priv: missing } : undefined;
  }
  return undefined; // userid-group, userid-param…: not used by the endpoints we serve
}

/** Whether a `permissions.check` passes: for handlers that filter entries per object instead of refusing the call. */
export function permits(check: unknown, privs: Privileges, params: Params | RawParams): boolean {
  return evaluate(check, privs, params) === undefined;
}

export function checkPermission(endpoint: string, privs: Privileges, params: Params | RawParams): void {
  const permissions = endpointSchema(endpoint)?.permissions as { check?: unknown } | null | undefined;
  const failed = evaluate(permissions?.check, privs, params);
  if (failed) throw new PveHttpError(403, `Permission check failed (${failed.path}, ${failed.priv})`);
}
