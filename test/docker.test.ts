/**
 * docker/: the files agree with each other and with the daemon. compose.yaml's variables are all in
 * .env.example (and nothing stale is), what compose sets on the daemon is read by src/config*.ts,
 * the environment the container gets (image ENV, then compose's, secrets as files) passes the real
 * loadConfig, and the image's HEALTHCHECK command works against a real HTTP server. Building and
 * running the image is docker/verify.sh's job (minutes, root, podman): not part of npm test.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConfigError, loadConfig } from '../src/config.js';

const read = (path: string): string => readFileSync(path, 'utf8');
const composeText = read('docker/compose.yaml');
const envExample = read('docker/.env.example');
const dockerfile = read('docker/Dockerfile');
const verifyScript = read('docker/verify.sh');
const configSources = ['src/config.ts', 'src/config-actions.ts', 'src/config-webhooks.ts'].map(read).join('\n');

/** Variables Node itself reads, not the daemon's config. */
const NODE_OWN = new Set(['NODE_OPTIONS']);

interface ComposeService {
  image: string;
  environment?: Record<string, string>;
  secrets?: string[];
  ports?: string[];
  read_only?: boolean;
  cap_drop?: string[];
  security_opt?: string[];
  command?: string[];
  user?: string;
  tmpfs?: string[];
  healthcheck?: { test: string[] };
}
interface Compose {
  services: Record<string, ComposeService>;
  secrets: Record<string, { file: string }>;
}

/** `NAME=value` lines of .env.example, comments skipped. */
function exampleValues(): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of envExample.split('\n')) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) values.set(m[1]!, m[2]!);
  }
  return values;
}

/** Every variable compose interpolates: ${NAME}, ${NAME:-default}, ${NAME:?message}. */
function composeVariables(): Set<string> {
  return new Set([...composeText.matchAll(/\$\{([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]!));
}

/** Compose's interpolation, for the forms the file uses: after parsing, in string values only. */
function interpolate(text: string, values: Map<string, string>): string {
  return text.replace(
    /\$\{([A-Z][A-Z0-9_]*)(?::([-?])([^}]*))?\}/g,
    (_all, name: string, op?: string, arg?: string) => {
      const value = values.get(name);
      if (value) return value;
      if (op === '?') throw new Error(`${name}: ${arg}`);
      return op === '-' ? (arg ?? '') : '';
    },
  );
}

function interpolateAll(node: unknown, values: Map<string, string>): unknown {
  if (typeof node === 'string') return interpolate(node, values);
  if (Array.isArray(node)) return node.map((item) => interpolateAll(item, values));
  if (node && typeof node === 'object')
    return Object.fromEntries(Object.entries(node).map(([key, item]) => [key, interpolateAll(item, values)]));
  return node;
}

function compose(values = exampleValues()): Compose {
  return interpolateAll(parse(composeText), values) as Compose;
}

/** The final stage's ENV of the Dockerfile, as the container starts with it. */
function imageEnv(): Record<string, string> {
  const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  const env: Record<string, string> = {};
  for (const block of finalStage.matchAll(/^ENV ((?:.*\\\n)*.*)$/gm)) {
    for (const pair of block[1]!.replace(/\\\n/g, ' ').matchAll(/([A-Z_]+)=(\S+)/g)) env[pair[1]!] = pair[2]!;
  }
  return env;
}

describe('docker/compose.yaml and docker/.env.example', () => {
  it('names every variable compose uses in .env.example, and no variable compose does not use', () => {
    const used = composeVariables();
    const named = new Set(exampleValues().keys());
    expect([...used].filter((v) => !named.has(v))).toEqual([]);
    expect([...named].filter((v) => !used.has(v))).toEqual([]);
  });

  it('parses, with an inventory and a redis service', () => {
    const file = compose();
    expect(Object.keys(file.services).sort()).toEqual(['inventory', 'redis']);
  });

  it('sets on the daemon only variables that src/config*.ts reads (or Node does)', () => {
    const environment = compose().services.inventory!.environment ?? {};
    const unread = Object.keys(environment).filter(
      (name) => !NODE_OWN.has(name) && !configSources.includes(`'${name}'`) && !configSources.includes(`env.${name}`),
    );
    expect(unread).toEqual([]);
  });

  it('refuses to start without the cluster settings, naming the file to set them in', () => {
    const values = exampleValues();
    values.delete('PVE_URL');
    expect(() => compose(values)).toThrow('PVE_URL: set PVE_URL in docker/.env');
  });

  it('reads every secret through a *_FILE variable at /run/secrets/<name>, from files under docker/secrets/', () => {
    const file = compose();
    const inventory = file.services.inventory!;
    const environment = inventory.environment ?? {};
    for (const secret of inventory.secrets ?? []) {
      expect(Object.entries(environment).find(([, v]) => v === `/run/secrets/${secret}`)?.[0]).toMatch(/_FILE$/);
      expect(file.secrets[secret]?.file).toMatch(/^\.\/secrets\//);
    }
    expect(Object.keys(environment).filter((name) => /SECRET$|TOKEN$|PASSWORD/.test(name))).toEqual([]);
  });

  it('publishes the port on the host loopback only, with the same number the daemon listens on', () => {
    const inventory = compose().services.inventory!;
    const port = inventory.environment?.MCP_HTTP_PORT;
    expect(inventory.ports).toEqual([`127.0.0.1:${port}:${port}`]);
  });

  it('hardens both services: read-only root, every capability dropped, no new privileges, pinned images', () => {
    for (const [name, service] of Object.entries(compose().services)) {
      expect(service.read_only, name).toBe(true);
      expect(service.cap_drop, name).toEqual(['ALL']);
      expect(service.security_opt, name).toContain('no-new-privileges:true');
      expect(service.image, name).toMatch(/:\d+\.\d+/);
      expect(service.user ?? '', name).not.toMatch(/^(0|root)\b/);
    }
  });

  it('runs Redis with the settings the daemon checks at start: AOF every second, no eviction', () => {
    const redis = compose().services.redis!;
    const args = (redis.command ?? []).join(' ');
    expect(args).toContain('--appendonly yes');
    expect(args).toContain('--appendfsync everysec');
    expect(args).toContain('--maxmemory-policy noeviction');
    expect(redis.healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
  });
});

describe('the container environment passes the daemon configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pi-docker-'));
  writeFileSync(join(dir, 'pve_token_secret'), '11111111-2222-3333-4444-555555555555\n');
  writeFileSync(join(dir, 'mcp_bearer_token'), `${'ab'.repeat(32)}\n`);

  /** The image's ENV, then compose's environment, with /run/secrets/ pointed at the files above. */
  function containerEnv(): Record<string, string> {
    const values = exampleValues();
    values.set('PVE_FINGERPRINT', Array.from({ length: 32 }, () => 'AB').join(':'));
    const environment = compose(values).services.inventory!.environment ?? {};
    const env = { ...imageEnv(), ...environment };
    for (const [name, value] of Object.entries(env)) env[name] = value.replace('/run/secrets/', `${dir}/`);
    return env;
  }

  it('listens on every interface with the bearer token from its secret file, the external Redis and the heap cap', () => {
    const config = loadConfig({ env: containerEnv() });
    expect(config.mcp.http.host).toBe('0.0.0.0');
    expect(config.mcp.http.token?.reveal()).toBe('ab'.repeat(32));
    expect(config.redis.url?.reveal()).toBe('redis://redis:6379/0');
    expect(config.dataDir).toBe('/data');
    expect(config.clusters[0]?.tokenSecret.reveal()).toBe('11111111-2222-3333-4444-555555555555');
    expect(containerEnv().NODE_OPTIONS).toBe('--max-old-space-size=192');
  });

  it('is refused without the token, which is why compose passes one (0.0.0.0 off loopback)', () => {
    const env = containerEnv();
    delete env.MCP_BEARER_TOKEN_FILE;
    expect(() => loadConfig({ env, listensOnHttp: true })).toThrow(ConfigError);
    expect(() => loadConfig({ env, listensOnHttp: true })).toThrow(/MCP_HTTP_HOST.*0\.0\.0\.0.*MCP_BEARER_TOKEN/);
  });

  it("leaves the image's default endpoint on loopback, so one-off commands need no token", () => {
    expect(imageEnv().MCP_HTTP_HOST).toBeUndefined();
    const { PVE_TOKEN_SECRET_FILE: _unused, ...rest } = containerEnv();
    const env: Record<string, string> = {
      ...imageEnv(),
      PVE_URL: rest.PVE_URL!,
      PVE_TOKEN_ID: rest.PVE_TOKEN_ID!,
      PVE_TOKEN_SECRET: 'x',
    };
    expect(loadConfig({ env }).mcp.http.host).toBe('127.0.0.1');
  });
});

describe('docker/Dockerfile', () => {
  it('builds FROM the base image name docker/verify.sh imports', () => {
    const base = /^BASE_IMAGE=(\S+)$/m.exec(verifyScript)?.[1];
    expect(base).toBe('docker.io/library/debian:trixie-slim');
    expect(dockerfile).toContain(`ARG BASE_IMAGE=${base}`);
    expect([...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1])).toEqual(['${BASE_IMAGE}', '${BASE_IMAGE}']);
  });

  it("runs the package's bin as a fixed non-root uid under tini, serve by default", () => {
    const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string> };
    const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    expect(/^USER (\d+):(\d+)$/m.exec(finalStage)?.[1]).toBe('10001');
    expect(finalStage).toContain(`ENTRYPOINT ["tini", "--", "node", "${pkg.bin['proxmox-inventory']}"]`);
    expect(finalStage).toContain('CMD ["serve"]');
    expect(finalStage).toMatch(/apt-get install[^\n]* nodejs redis-server tini/);
    for (const path of ['dist', 'migrations', 'node_modules', 'package.json'])
      expect(finalStage).toContain(`COPY --from=build /src/${path}`);
  });

  it('keeps operators files out of the build context', () => {
    const ignored = read('.dockerignore').split('\n');
    for (const path of ['node_modules', 'data', 'docker/.env', 'docker/secrets']) expect(ignored).toContain(path);
  });
});

describe("the image's HEALTHCHECK command", () => {
  const servers: Server[] = [];
  afterAll(() => servers.forEach((s) => s.close()));

  /** The node one-liner of the HEALTHCHECK line, run as the container would with MCP_HTTP_PORT. */
  function healthcheck(port: number): Promise<number | null> {
    const script = /HEALTHCHECK [\s\S]*?CMD \["node", "-e", "(.*)"\]/.exec(dockerfile)?.[1];
    expect(script).toBeDefined();
    const code = JSON.parse(`"${script}"`) as string;
    return new Promise((resolve) => {
      const child = execFile(process.execPath, ['-e', code], { env: { MCP_HTTP_PORT: String(port) }, timeout: 10_000 });
      child.on('exit', (status) => resolve(status));
    });
  }

  async function listen(status: number): Promise<number> {
    const server = createServer((req, res) => {
      res.writeHead(req.url === '/healthz' ? status : 404).end();
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  }

  it('exits 0 when /healthz answers 200', async () => {
    expect(await healthcheck(await listen(200))).toBe(0);
  });

  it('exits 1 when /healthz fails or nothing listens', async () => {
    expect(await healthcheck(await listen(500))).toBe(1);
    const port = await listen(200);
    await new Promise((resolve) => servers.pop()!.close(resolve));
    expect(await healthcheck(port)).toBe(1);
  });
});
