import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, type Env } from '../../src/config.js';

const FP = 'D3:9E:13:3A:CE:55:60:9A:F7:F7:91:F6:88:3D:AA:D8:EB:8A:62:97:BA:00:1F:33:18:BE:F6:47:71:55:88:2D';
const SECRET = '5f1e2d3c-aaaa-bbbb-cccc-0123456789ab';
const base: Env = {
  PVE_URL: 'https://pve1.example.com:8006',
  PVE_TOKEN_ID: 'inventory@pve!sync',
  PVE_TOKEN_SECRET: SECRET,
  PVE_FINGERPRINT: FP,
};
const dir = mkdtempSync(join(tmpdir(), 'pi-config-'));

function problems(env: Env, configPath?: string, listensOnHttp = false): string[] {
  try {
    loadConfig({ env, configPath, cwd: dir, listensOnHttp });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('builds one cluster from the environment, with defaults from the schema', () => {
    const config = loadConfig({ env: base, cwd: dir });
    expect(config.clusters).toHaveLength(1);
    const [c] = config.clusters;
    expect(c).toMatchObject({
      name: 'default',
      url: 'https://pve1.example.com:8006',
      tokenId: 'inventory@pve!sync',
      timeoutMs: 15_000,
      concurrency: 8,
    });
    expect(c!.tls).toMatchObject({ fingerprint: FP, insecure: false });
    expect(c!.tokenSecret.reveal()).toBe(SECRET);
    expect(config.dataDir).toBe(join(dir, 'data'));
    expect(config.log.level).toBe('info');
  });

  it('normalizes a fingerprint given in lowercase or without colons', () => {
    const bare = FP.replace(/:/g, '').toLowerCase();
    expect(loadConfig({ env: { ...base, PVE_FINGERPRINT: bare }, cwd: dir }).clusters[0]!.tls.fingerprint).toBe(FP);
  });

  it('reads the token secret from PVE_TOKEN_SECRET_FILE (Docker secrets)', () => {
    const file = join(dir, 'secret');
    writeFileSync(file, `${SECRET}\n`);
    const env = { ...base, PVE_TOKEN_SECRET: undefined, PVE_TOKEN_SECRET_FILE: file };
    expect(loadConfig({ env, cwd: dir }).clusters[0]!.tokenSecret.reveal()).toBe(SECRET);
  });

  it('reports every problem at once, naming the variable and the fix', () => {
    const found = problems({
      PVE_URL: 'http://10.1.2.3',
      PVE_TOKEN_ID: 'root',
      PVE_FINGERPRINT: 'abc',
      PVE_CONCURRENCY: '0',
      LOG_LEVEL: 'loud',
    });
    expect(found).toHaveLength(6);
    expect(found.join('\n')).toMatch(/PVE_TOKEN_ID: expected an API token id "user@realm!tokenid"/);
    expect(found.join('\n')).toMatch(/PVE_TOKEN_SECRET: missing/);
    expect(found.join('\n')).toMatch(
      /PVE_URL: plain http would send the API token unencrypted; use https:\/\/10\.1\.2\.3:8006/,
    );
    expect(found.join('\n')).toMatch(/PVE_FINGERPRINT: .*pvenode cert info/);
    expect(found.join('\n')).toMatch(/PVE_CONCURRENCY: /);
    expect(found.join('\n')).toMatch(/LOG_LEVEL: "loud" is not one of/);
  });

  it('asks for a cluster when none is configured', () => {
    expect(problems({})[0]).toMatch(/no Proxmox cluster configured: set PVE_URL/);
    expect(loadConfig({ env: {}, clustersOptional: true, cwd: dir }).clusters).toEqual([]);
  });

  it('refuses contradictory trust settings and two secret sources', () => {
    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, 'not a certificate');
    const found = problems({
      ...base,
      PVE_CA_FILE: caFile,
      PVE_INSECURE: '1',
      PVE_TOKEN_SECRET_FILE: join(dir, 'missing'),
    });
    const text = found.join('\n');
    expect(text).toMatch(/PVE_TOKEN_SECRET and PVE_TOKEN_SECRET_FILE: set only one/);
    expect(text).toMatch(/PVE_CA_FILE: .* holds no PEM certificate/);
    expect(text).toMatch(/PVE_CA_FILE and PVE_FINGERPRINT: choose one/);
    expect(text).toMatch(/PVE_INSECURE: contradicts/);
  });

  it('allows plain http only to loopback (the simulator)', () => {
    expect(
      loadConfig({ env: { ...base, PVE_URL: 'http://127.0.0.1:8006', PVE_FINGERPRINT: undefined }, cwd: dir })
        .clusters[0]!.url,
    ).toBe('http://127.0.0.1:8006');
  });

  it('reads several clusters from a YAML file; the environment overrides the cluster it names', () => {
    const secretFile = join(dir, 'lab.secret');
    writeFileSync(secretFile, 'lab-secret');
    const file = join(dir, 'clusters.yaml');
    writeFileSync(
      file,
      `
dataDir: /var/lib/proxmox-inventory
log: { level: debug }
clusters:
  - name: prod
    url: https://pve-prod.example.com:8006
    tokenId: inventory@pve!prod
    tokenSecret: prod-secret
    fingerprint: "${FP}"
  - name: lab
    url: https://pve-lab.example.com:8006
    tokenId: inventory@pve!lab
    tokenSecretFile: lab.secret
    insecure: true
    timeoutMs: 5000
`,
    );
    const config = loadConfig({ env: { PVE_CLUSTER_NAME: 'prod', PVE_CONCURRENCY: '2' }, configPath: file, cwd: '/' });
    expect(config.dataDir).toBe('/var/lib/proxmox-inventory');
    expect(config.log.level).toBe('debug');
    expect(config.clusters.map((c) => c.name)).toEqual(['prod', 'lab']);
    expect(config.clusters[0]!.concurrency).toBe(2);
    expect(config.clusters[1]).toMatchObject({ timeoutMs: 5000, tls: { insecure: true } });
    expect(config.clusters[1]!.tokenSecret.reveal()).toBe('lab-secret');
  });

  it('names file keys by position and cluster name, and catches unknown keys and duplicates', () => {
    const file = join(dir, 'bad.json');
    writeFileSync(
      file,
      JSON.stringify({
        clusters: [
          { name: 'a', url: 'https://a:8006', tokenId: 'x@pve!t', tokenSecret: 's', fingerprnt: FP },
          { name: 'a', url: 'https://b:8006', tokenId: 'x@pve!t', tokenSecret: 's' },
        ],
        extra: 1,
      }),
    );
    const text = problems({}, file).join('\n');
    expect(text).toMatch(/config file .*bad\.json: unknown key "extra"; the keys are dataDir, log, clusters, sync/);
    expect(text).toMatch(/clusters\[0\] \(a\): unknown key "fingerprnt"; did you mean "fingerprint"\?/);
    // a cluster that failed its checks does not count as a duplicate of the next
    expect(text).not.toMatch(/clusters\[1\]/);
  });

  it('reports a duplicate cluster name', () => {
    const file = join(dir, 'dup.json');
    writeFileSync(
      file,
      JSON.stringify({
        clusters: [
          { name: 'a', url: 'https://a:8006', tokenId: 'x@pve!t', tokenSecret: 's' },
          { name: 'a', url: 'https://b:8006', tokenId: 'x@pve!t', tokenSecret: 's' },
        ],
      }),
    );
    expect(problems({}, file)).toEqual(['clusters[1] (a).name: cluster name "a" is used twice; names must be unique']);
  });

  it('never lets the secret out: JSON, String, inspect, and error messages', () => {
    const config = loadConfig({ env: base, cwd: dir });
    expect(JSON.stringify(config)).not.toContain(SECRET);
    expect(inspect(config, { depth: 10 })).not.toContain(SECRET);
    expect(`${config.clusters[0]!.tokenSecret}`).toBe('[redacted]');
    const text = problems({ ...base, PVE_TOKEN_ID: 'nope', PVE_URL: 'ftp://x' }).join('\n');
    expect(text).not.toContain(SECRET);
  });
});

describe('loadConfig with a file but no clusters', () => {
  it('still asks for a cluster', () => {
    const file = join(dir, 'empty.yaml');
    writeFileSync(file, 'dataDir: ./state\n');
    expect(problems({}, file)).toEqual([expect.stringMatching(/^no Proxmox cluster configured/)]);
  });
});

describe('loadConfig: cases found in review', () => {
  it('never quotes a malformed file back (parsers quote the text around the error, which may be a secret)', () => {
    const json = join(dir, 'broken.json');
    writeFileSync(json, `{"clusters":[{"tokenSecret":${SECRET}}]}`);
    const yaml = join(dir, 'broken.yaml');
    writeFileSync(yaml, `clusters:\n  - tokenSecret: "${SECRET}\n   bad: [\n`);
    const text = [...problems({}, json), ...problems({}, yaml)].join('\n');
    expect(text).toMatch(/broken\.json: not valid JSON; check its syntax/);
    expect(text).toMatch(/broken\.yaml: not valid YAML at line \d+, column \d+/);
    expect(text).not.toContain(SECRET.slice(0, 8));
  });

  it('says "expected …" for a value of the wrong kind, and "missing" only for an absent one', () => {
    const found = problems({ ...base, PVE_INSECURE: 'maybe', PVE_TIMEOUT_MS: 'abc', PVE_CONCURRENCY: '1.5' });
    expect(found).toEqual([
      'PVE_INSECURE: "maybe" is not valid: expected true or false (also 1/0, yes/no, on/off, in any case)',
      'PVE_TIMEOUT_MS: "abc" is not valid: expected a whole number of milliseconds from 100 to 600000, e.g. 15000, the default',
      'PVE_CONCURRENCY: "1.5" is not valid: expected a whole number from 1 to 64, e.g. 8, the default',
    ]);
    const file = join(dir, 'types.yaml');
    writeFileSync(
      file,
      'clusters:\n  - name: a\n    url: https://a:8006\n    tokenSecret: s\n    fingerprint: 12\n    concurrency: [1]\n',
    );
    expect(problems({}, file)).toEqual([
      'clusters[0] (a).tokenId: missing; expected an API token id "user@realm!tokenid", e.g. inventory@pve!sync',
      'clusters[0] (a).fingerprint: 12 is not valid: expected the SHA-256 fingerprint as 32 colon-separated hex bytes (`pvenode cert info`)',
      'clusters[0] (a).concurrency: [1] is not valid: expected a whole number from 1 to 64, e.g. 8, the default',
    ]);
  });

  it('lets the environment replace a file cluster’s secret source and trust setting instead of clashing', () => {
    const caFile = join(dir, 'prod-ca.pem');
    writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const file = join(dir, 'override.yaml');
    writeFileSync(
      file,
      `clusters:\n  - name: prod\n    url: https://prod:8006\n    tokenId: a@pve!b\n    tokenSecretFile: missing.secret\n    caFile: ${caFile}\n`,
    );
    const config = loadConfig({
      env: { PVE_CLUSTER_NAME: 'prod', PVE_TOKEN_SECRET: `${SECRET}\n`, PVE_FINGERPRINT: FP },
      configPath: file,
      cwd: dir,
    });
    expect(config.clusters[0]!.tokenSecret.reveal()).toBe(SECRET); // trailing newline trimmed
    expect(config.clusters[0]!.tls).toMatchObject({ fingerprint: FP, ca: undefined });
  });

  it('reports variables that no cluster uses instead of inventing a cluster', () => {
    const file = join(dir, 'one.yaml');
    writeFileSync(file, 'clusters:\n  - { name: a, url: "https://a:8006", tokenId: "a@pve!b", tokenSecret: s }\n');
    expect(problems({ PVE_TIMEOUT_MS: '5000', PVE_TOKEN_ID: 'x@pve!y' }, file)).toEqual([
      'PVE_TOKEN_ID, PVE_TIMEOUT_MS: set but no cluster uses them; set PVE_URL for a cluster from the environment, or PVE_CLUSTER_NAME to the config-file cluster they override',
    ]);
  });

  it('resolves a relative PVE_TOKEN_SECRET_FILE from the working directory, not the config file', () => {
    const work = mkdtempSync(join(tmpdir(), 'pi-cwd-'));
    writeFileSync(join(work, 'rel.secret'), 'from-cwd');
    const env = { ...base, PVE_TOKEN_SECRET: undefined, PVE_TOKEN_SECRET_FILE: 'rel.secret' };
    expect(loadConfig({ env, cwd: work }).clusters[0]!.tokenSecret.reveal()).toBe('from-cwd');
  });

  it('refuses a secret with control characters inside, and names the http host once', () => {
    const text = problems({
      ...base,
      PVE_TOKEN_SECRET: 'abc\u0007def',
      PVE_URL: 'http://10.0.0.1:8006',
      PVE_FINGERPRINT: undefined,
    }).join('\n');
    expect(text).toContain('PVE_TOKEN_SECRET: the secret contains control characters');
    expect(text).toMatch(/use https:\/\/10\.0\.0\.1:8006$/m);
    expect(text).not.toContain('8006:8006');
  });
});

describe('loadConfig: sync and snapshot schedules', () => {
  it('has defaults: a cycle every 15 s, hourly snapshots kept 48 deep and 7 days', () => {
    const config = loadConfig({ env: base, cwd: dir });
    expect(config.sync).toEqual({
      intervalSeconds: 15,
      missingThreshold: 2,
      configConcurrency: 8,
      configBudget: 200,
      sweepPeriodMinutes: 360,
      sweepEverySeconds: 60,
      clusterLog: true,
      nodeStatusMinutes: 5,
      cycleTimeoutSeconds: 300,
    });
    expect(config.snapshots).toEqual({ schedule: '0 * * * *', keep: 48, maxAgeDays: 7 });
    expect(config.dbPath).toBe(join(dir, 'data', 'inventory.db'));
  });

  it('reads both sections from the file, the environment winning, and "off" turns snapshots off', () => {
    const file = join(dir, 'schedules.yaml');
    writeFileSync(
      file,
      'sync: { intervalSeconds: 30, missingThreshold: 3, clusterLog: false }\nsnapshots: { schedule: "*/5 * * * *", keep: 10 }\n',
    );
    const config = loadConfig({
      env: { ...base, SYNC_INTERVAL_SECONDS: '5', SNAPSHOT_SCHEDULE: 'off' },
      configPath: file,
      cwd: dir,
    });
    expect(config.sync).toMatchObject({ intervalSeconds: 5, missingThreshold: 3, clusterLog: false });
    expect(config.snapshots).toEqual({ schedule: 'off', keep: 10, maxAgeDays: 7 });
  });

  it('node status reads every 5 minutes by default, from the file or SYNC_NODE_STATUS_MINUTES (0: never)', () => {
    expect(loadConfig({ env: base }).sync.nodeStatusMinutes).toBe(5);
    const file = join(dir, 'node-status.yaml');
    writeFileSync(file, 'sync: { nodeStatusMinutes: 15 }\n');
    expect(loadConfig({ env: base, configPath: file, cwd: dir }).sync.nodeStatusMinutes).toBe(15);
    expect(
      loadConfig({ env: { ...base, SYNC_NODE_STATUS_MINUTES: '0' }, configPath: file, cwd: dir }).sync
        .nodeStatusMinutes,
    ).toBe(0);
    expect(problems({ ...base, SYNC_NODE_STATUS_MINUTES: '2000' })).toEqual([
      'SYNC_NODE_STATUS_MINUTES: "2000" is not valid: expected a whole number of minutes from 0 to 1440 (0 never reads node status), e.g. 5, the default',
    ]);
  });

  it('the sweep from the file or the environment (SYNC_SWEEP_PERIOD_MINUTES, SYNC_SWEEP_EVERY_SECONDS), the environment winning', () => {
    const file = join(dir, 'sweep.yaml');
    writeFileSync(file, 'sync: { sweepPeriodMinutes: 240, sweepEverySeconds: 120 }\n');
    expect(loadConfig({ env: base, configPath: file, cwd: dir }).sync).toMatchObject({
      sweepPeriodMinutes: 240,
      sweepEverySeconds: 120,
    });
    const env = { ...base, SYNC_SWEEP_PERIOD_MINUTES: '60', SYNC_SWEEP_EVERY_SECONDS: '0' };
    expect(loadConfig({ env, configPath: file, cwd: dir }).sync).toMatchObject({
      sweepPeriodMinutes: 60,
      sweepEverySeconds: 0,
    });
    const found = problems({ ...base, SYNC_SWEEP_PERIOD_MINUTES: '0', SYNC_SWEEP_EVERY_SECONDS: 'often' });
    expect(found.some((p) => p.startsWith('SYNC_SWEEP_PERIOD_MINUTES: '))).toBe(true);
    expect(found.some((p) => p.startsWith('SYNC_SWEEP_EVERY_SECONDS: '))).toBe(true);
  });

  it('names the variable or key of a bad schedule value', () => {
    const file = join(dir, 'bad-schedules.yaml');
    writeFileSync(file, 'sync: { missingThreshold: 0, bogus: 1 }\n');
    const found = problems({ ...base, SNAPSHOT_SCHEDULE: 'every hour', SNAPSHOT_KEEP: '-1' }, file);
    expect(found).toContain(
      'SNAPSHOT_SCHEDULE: "every hour" is not valid: expected a cron pattern such as "0 * * * *" (hourly), or "off"',
    );
    expect(found.some((p) => p.startsWith('SNAPSHOT_KEEP: '))).toBe(true);
    expect(found.some((p) => p.startsWith('sync.missingThreshold: '))).toBe(true);
    expect(found).toContain(
      'sync: unknown key "bogus"; the keys are intervalSeconds, missingThreshold, configConcurrency, configBudget, sweepPeriodMinutes, sweepEverySeconds, clusterLog, nodeStatusMinutes and cycleTimeoutSeconds',
    );
  });
});

describe('loadConfig: the MCP HTTP endpoint', () => {
  it('listens on 127.0.0.1:8765 by default, without a token', () => {
    const { mcp } = loadConfig({ env: base, cwd: dir });
    expect(mcp.http).toMatchObject({
      enabled: true,
      host: '127.0.0.1',
      port: 8765,
      token: undefined,
      readyMaxAgeSeconds: 60,
    });
  });

  it('refuses to listen beyond loopback without a bearer token, and accepts it with one', () => {
    expect(problems({ ...base, MCP_HTTP_HOST: '0.0.0.0' }, undefined, true)).toEqual([
      'MCP_HTTP_HOST (mcp.http.host): "0.0.0.0" is reachable from other machines; set MCP_BEARER_TOKEN (or MCP_BEARER_TOKEN_FILE) so /mcp requires it, or listen on 127.0.0.1',
    ]);
    const token = 'x'.repeat(32);
    const { mcp } = loadConfig({
      listensOnHttp: true,
      env: {
        ...base,
        MCP_HTTP_HOST: '0.0.0.0',
        MCP_BEARER_TOKEN: token,
        MCP_ALLOWED_ORIGINS: 'https://a.example, https://b.example',
      },
      cwd: dir,
    });
    expect(mcp.http.token?.reveal()).toBe(token);
    expect(mcp.http.allowedOrigins).toEqual(['https://a.example', 'https://b.example']);
    expect(JSON.stringify(mcp)).not.toContain(token);
  });

  it('asks for the token only of a command that listens: sync --once, mcp over stdio and check never do', () => {
    // One environment shared with serve (a container's, a systemd unit's) must not stop them.
    const shared = { ...base, MCP_HTTP_HOST: '0.0.0.0' };
    expect(loadConfig({ env: shared, cwd: dir }).mcp.http.host).toBe('0.0.0.0');
    expect(problems(shared, undefined, true)).toEqual([expect.stringContaining('set MCP_BEARER_TOKEN')]);
    // Off, the endpoint is not started even by serve.
    expect(loadConfig({ env: { ...shared, MCP_HTTP: 'off' }, cwd: dir, listensOnHttp: true }).mcp.http.enabled).toBe(
      false,
    );
  });

  it('names a short token and can be switched off', () => {
    expect(problems({ ...base, MCP_BEARER_TOKEN: 'short' })).toEqual([
      'MCP_BEARER_TOKEN: the token is too short; use at least 16 characters (e.g. `openssl rand -hex 32`)',
    ]);
    expect(loadConfig({ env: { ...base, MCP_HTTP: 'off', MCP_HTTP_HOST: '0.0.0.0' }, cwd: dir }).mcp.http.enabled).toBe(
      false,
    );
  });
});
