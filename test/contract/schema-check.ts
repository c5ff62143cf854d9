import { readFileSync } from 'node:fs';

/**
 * One node of the PVE API schema, as extracted into src/sim/pve-schema.json from the
 * pve-docs apidata.js. Only the keys the checker understands are typed; the rest
 * (description, default, typetext, ...) pass through the index signature.
 */
export interface PveSchema {
  type?: string;
  optional?: number | boolean;
  enum?: readonly unknown[];
  pattern?: string;
  minimum?: number;
  maximum?: number;
  maxLength?: number;
  format?: unknown;
  items?: PveSchema;
  properties?: Record<string, PveSchema>;
  [key: string]: unknown;
}

export interface SchemaCheckResult {
  problems: string[];
  undeclared: string[];
}

export interface EndpointSchema {
  parameters: PveSchema;
  returns: PveSchema;
}

/**
 * Checks a decoded wire value against a PVE schema fragment.
 *
 * Deliberate differences from a generic JSON-Schema validator, all taken from how PVE
 * itself behaves:
 * - `boolean` accepts 0/1 as well as true/false (PVE emits 0/1 on the wire).
 * - `pattern` is anchored (`^(?:...)$`), as PVE's JSONSchema.pm matches `m/^$pattern$/`.
 * - A `null` on an optional property counts as absent, because Perl `undef` is
 *   serialised as `null` and PVE's own validator treats undef as "not set".
 * - Indexed names such as `net[n]` declare `net0`, `net1`, ...
 * - Properties not declared in the schema are reported in `undeclared`, not as
 *   problems: real PVE responses carry fields the schema does not list.
 * - A node without `type` (or an object without `properties`) accepts any value, but an
 *   `enum` on it is still enforced (the HA status `type` field is declared that way).
 */
export function checkAgainstSchema(value: unknown, schema: PveSchema, path = '$'): SchemaCheckResult {
  const result: SchemaCheckResult = { problems: [], undeclared: [] };
  checkNode(value, schema, path, result);
  return result;
}

/** Returns the `parameters` and `returns` schema of one endpoint, e.g. "GET /cluster/resources". */
export function loadEndpointSchema(endpoint: string): EndpointSchema {
  const entry = loadSchemaFile()[endpoint];
  if (entry === undefined) {
    throw new Error(`endpoint ${JSON.stringify(endpoint)} is not in src/sim/pve-schema.json`);
  }
  return entry;
}

/** Every endpoint key present in src/sim/pve-schema.json. */
export function listSchemaEndpoints(): string[] {
  return Object.keys(loadSchemaFile());
}

/** A short, stable rendering of a wire value for problem messages. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'string') return `string ${truncate(JSON.stringify(value))}`;
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  return typeof value;
}

/** JSON path of a property: `$.vmid`, but `$["cgroup-mode"]` when the name is not an identifier. */
export function propertyPath(parent: string, key: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? `${parent}.${key}` : `${parent}[${JSON.stringify(key)}]`;
}

function truncate(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function checkNode(value: unknown, schema: PveSchema, path: string, result: SchemaCheckResult): void {
  const type = typeof schema.type === 'string' ? schema.type : undefined;
  if (type !== undefined && !matchesType(value, type)) {
    result.problems.push(`${path}: expected ${type}, got ${describeValue(value)}`);
    return;
  }
  checkEnum(value, schema, path, result.problems);
  if (typeof value === 'string') checkString(value, schema, path, result.problems);
  if (typeof value === 'number') checkRange(value, schema, path, result.problems);
  if (type === 'array' && Array.isArray(value) && schema.items !== undefined) {
    const items = schema.items;
    value.forEach((item, index) => checkNode(item, items, `${path}[${index}]`, result));
  }
  if (type === 'object' && isRecord(value) && schema.properties !== undefined) {
    checkProperties(value, schema.properties, path, result);
  }
}

function matchesType(value: unknown, type: string): boolean {
  switch (type) {
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return Number.isInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'boolean':
      return value === 0 || value === 1 || value === true || value === false;
    case 'array':
      return Array.isArray(value);
    case 'object':
      return isRecord(value);
    case 'null':
      return value === null;
    default:
      // An unknown type name means the extractor or the schema changed; fail loudly
      // rather than letting every value through.
      return false;
  }
}

function checkEnum(value: unknown, schema: PveSchema, path: string, problems: string[]): void {
  if (!Array.isArray(schema.enum)) return;
  if (!schema.enum.includes(value)) {
    problems.push(`${path}: ${describeValue(value)} is not one of ${JSON.stringify(schema.enum)}`);
  }
}

function checkString(value: string, schema: PveSchema, path: string, problems: string[]): void {
  if (typeof schema.pattern === 'string') {
    const regex = compilePattern(schema.pattern);
    if (regex === undefined) {
      problems.push(`${path}: schema pattern ${JSON.stringify(schema.pattern)} cannot be compiled as a JS regex`);
    } else if (!regex.test(value)) {
      problems.push(`${path}: ${describeValue(value)} does not match pattern ${JSON.stringify(schema.pattern)}`);
    }
  }
  // PVE counts characters, not UTF-16 units.
  if (typeof schema.maxLength === 'number' && Array.from(value).length > schema.maxLength) {
    problems.push(`${path}: string longer than maxLength ${schema.maxLength}`);
  }
}

function checkRange(value: number, schema: PveSchema, path: string, problems: string[]): void {
  if (typeof schema.minimum === 'number' && value < schema.minimum) {
    problems.push(`${path}: ${value} is below minimum ${schema.minimum}`);
  }
  if (typeof schema.maximum === 'number' && value > schema.maximum) {
    problems.push(`${path}: ${value} is above maximum ${schema.maximum}`);
  }
}

function checkProperties(
  value: Record<string, unknown>,
  properties: Record<string, PveSchema>,
  path: string,
  result: SchemaCheckResult,
): void {
  for (const [name, propSchema] of Object.entries(properties)) {
    if (isIndexedName(name)) continue;
    const childPath = propertyPath(path, name);
    const child = Object.hasOwn(value, name) ? value[name] : undefined;
    if (child === undefined || (child === null && isOptional(propSchema))) {
      if (!isOptional(propSchema)) result.problems.push(`${childPath}: required property is missing`);
      continue;
    }
    checkNode(child, propSchema, childPath, result);
  }
  for (const [key, child] of Object.entries(value)) {
    if (Object.hasOwn(properties, key) && !isIndexedName(key)) continue;
    const childPath = propertyPath(path, key);
    const indexedSchema = findIndexedSchema(properties, key);
    if (indexedSchema === undefined) {
      result.undeclared.push(childPath);
    } else if (!(child === null && isOptional(indexedSchema))) {
      checkNode(child, indexedSchema, childPath, result);
    }
  }
}

function isOptional(schema: PveSchema): boolean {
  return schema.optional === 1 || schema.optional === true;
}

function isIndexedName(name: string): boolean {
  return name.endsWith('[n]');
}

/** `net0` is declared by `net[n]`; `numa` stays with `numa`, only `numa0` uses `numa[n]`. */
function findIndexedSchema(properties: Record<string, PveSchema>, key: string): PveSchema | undefined {
  const match = /^(.*?)(\d+)$/.exec(key);
  if (match === null) return undefined;
  return properties[`${match[1] ?? ''}[n]`];
}

const patternCache = new Map<string, RegExp | undefined>();

/**
 * The schema holds Perl regexes. `(?^:...)` is how Perl stringifies a qr// without
 * flags and `(?>...)` is an atomic group; neither exists in JS, and for the anchored
 * whole-string matches done here a plain group accepts the same strings.
 */
function compilePattern(pattern: string): RegExp | undefined {
  if (patternCache.has(pattern)) return patternCache.get(pattern);
  const jsSource = pattern.replaceAll('(?^:', '(?:').replaceAll('(?>', '(?:');
  let regex: RegExp | undefined;
  try {
    regex = new RegExp(`^(?:${jsSource})$`);
  } catch {
    regex = undefined;
  }
  patternCache.set(pattern, regex);
  return regex;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

let schemaFile: Record<string, EndpointSchema> | undefined;

function loadSchemaFile(): Record<string, EndpointSchema> {
  if (schemaFile !== undefined) return schemaFile;
  const url = new URL('../../src/sim/pve-schema.json', import.meta.url);
  const parsed: unknown = JSON.parse(readFileSync(url, 'utf8'));
  if (!isRecord(parsed) || !isRecord(parsed.endpoints)) {
    throw new Error('src/sim/pve-schema.json has no "endpoints" object');
  }
  const endpoints: Record<string, EndpointSchema> = {};
  for (const [name, entry] of Object.entries(parsed.endpoints)) {
    endpoints[name] = toEndpointSchema(name, entry);
  }
  schemaFile = endpoints;
  return endpoints;
}

function toEndpointSchema(name: string, entry: unknown): EndpointSchema {
  if (!isRecord(entry)) throw new Error(`pve-schema.json: endpoint ${name} is not an object`);
  // An endpoint without a `returns` declares nothing about its payload: accept anything.
  const parameters = isRecord(entry.parameters) ? (entry.parameters as PveSchema) : {};
  const returns = isRecord(entry.returns) ? (entry.returns as PveSchema) : {};
  return { parameters, returns };
}
