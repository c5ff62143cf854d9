/**
 * What a configuration mistake looks like to the person who made it: every problem in one run,
 * each naming the variable or key, saying what to write, never zod's own words.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, type Env } from '../../src/config.js';

const dir = mkdtempSync(join(tmpdir(), 'pi-config-messages-'));
const base: Env = {
  PVE_URL: 'https://pve1.example.com:8006',
  PVE_TOKEN_ID: 'inventory@pve!sync',
  PVE_TOKEN_SECRET: '5f1e2d3c-aaaa-bbbb-cccc-0123456789ab',
};
const aFile = join(dir, 'a-file');
writeFileSync(aFile, 'not a directory\n');

/** Phrases zod uses when a schema gives no message of its own. */
const ZOD_WORDS =
  /Invalid input|Invalid option|Too small|Too big|expected number|expected string|expected boolean|received|Unrecognized key|NaN/;

function problems(env: Env, configPath?: string): string[] {
  try {
    // As serve reads it: MCP_HTTP_HOST is checked against the token only where the endpoint listens.
    loadConfig({ env, configPath, cwd: dir, listensOnHttp: true });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env)}`);
}

function yaml(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** Every variable loadConfig looks at, found by watching it read the environment. */
function variablesRead(): string[] {
  const read = new Set<string>();
  const env = new Proxy(base, {
    get(target, key) {
      if (typeof key === 'string') read.add(key);
      return target[key as string];
    },
  });
  loadConfig({ env, cwd: dir });
  return [...read].sort();
}

/** A wrong value for each variable; a variable the config starts to read needs one here. */
const BAD_VALUES: Record<string, string> = {
  PVE_URL: 'pve1.example.com',
  PVE_TOKEN_ID: 'root',
  PVE_TOKEN_SECRET: 'abc\u0007def',
  PVE_TOKEN_SECRET_FILE: join(dir, 'no-such-secret'),
  PVE_CA_FILE: join(dir, 'no-such-ca.pem'),
  PVE_FINGERPRINT: 'AB:CD',
  PVE_INSECURE: 'maybe',
  PVE_TIMEOUT_MS: '1.5',
  PVE_CONCURRENCY: 'lots',
  PVE_CLUSTER_NAME: 'no spaces please',
  PROXMOX_INVENTORY_CONFIG: join(dir, 'no-such-config.yaml'),
  DATA_DIR: aFile,
  LOG_LEVEL: 'loud',
  SYNC_INTERVAL_SECONDS: '1.5',
  SYNC_CYCLE_TIMEOUT_SECONDS: 'abc',
  SYNC_SWEEP_PERIOD_MINUTES: '0',
  SYNC_SWEEP_EVERY_SECONDS: '-1',
  SYNC_NODE_STATUS_MINUTES: 'often',
  SNAPSHOT_SCHEDULE: 'every hour',
  SNAPSHOT_KEEP: '1e3',
  SNAPSHOT_MAX_AGE_DAYS: 'week',
  RETENTION_SYNC_RUNS_DAYS: '99999',
  RETENTION_EVENTS_DAYS: 'x',
  MCP_HTTP: 'maybe',
  MCP_METRICS: 'sometimes',
  MCP_HTTP_HOST: '0.0.0.0',
  MCP_HTTP_PORT: '99999',
  MCP_BEARER_TOKEN: 'short',
  MCP_BEARER_TOKEN_FILE: join(dir, 'no-such-token'),
  MCP_ALLOWED_ORIGINS: 'app.example.com',
  MCP_ALLOWED_HOSTS: 'https://inventory.example.com/',
  MCP_READY_MAX_AGE_SECONDS: 'x',
  MCP_TOOLSETS: 'inventory,everything',
  ACTIONS: 'power,destroy',
  ACTIONS_TTL_SECONDS: '5',
  ACTIONS_PER_MINUTE: '0',
  ACTIONS_CONCURRENCY: 'many',
  ACTIONS_PER_NODE: '1.5',
  ACTIONS_WAIT_MAX_SECONDS: '9999',
  PVE_ACTION_TOKEN_ID: 'root',
  PVE_ACTION_TOKEN_SECRET: 'abc\u0007def',
  PVE_ACTION_TOKEN_SECRET_FILE: join(dir, 'no-such-action-secret'),
  REDIS_URL: 'localhost:6379',
  REDIS_URL_FILE: join(dir, 'no-such-redis-url'),
  WEBHOOK_ALLOW_CIDRS: '10.0.0.0/33',
  WEBHOOK_ALLOW_HTTP: 'maybe',
  WEBHOOK_TIMEOUT_SECONDS: '0',
  WEBHOOK_RETRY_SCHEDULE: '0, 5 minutes',
  WEBHOOK_DISABLE_AFTER_DAYS: '0',
  WEBHOOK_ROTATION_GRACE_HOURS: '1.5',
};

describe('environment variables: a wrong value names the variable and says what to write', () => {
  const variables = variablesRead();

  it('covers every variable the configuration reads', () => {
    expect(variables.length).toBeGreaterThan(25);
    expect(variables.filter((v) => !(v in BAD_VALUES))).toEqual([]);
  });

  it.each(variables)('%s', (variable) => {
    // The cluster name is only checked on a cluster from the environment, which PVE_URL makes.
    const found = problems({ ...base, [variable]: BAD_VALUES[variable] });
    const own = found.filter((p) => p.includes(variable));
    expect(own.length, `${variable}: ${found.join(' | ')}`).toBeGreaterThan(0);
    for (const problem of found) expect(problem).not.toMatch(ZOD_WORDS);
  });

  /** Variables that hold, or are easily mistaken for, a secret: what was given is never quoted back. */
  const SECRET_VARIABLES = [
    'PVE_TOKEN_ID',
    'PVE_TOKEN_SECRET',
    'PVE_ACTION_TOKEN_ID',
    'PVE_ACTION_TOKEN_SECRET',
    'MCP_BEARER_TOKEN',
  ];
  /** Where the message names something else than the whole value: the one bad entry of a list. */
  const QUOTED_AS: Record<string, string> = {
    MCP_TOOLSETS: '"everything"',
    ACTIONS: '"destroy"',
    WEBHOOK_ALLOW_CIDRS: '"10.0.0.0/33"',
    WEBHOOK_RETRY_SCHEDULE: "'5 minutes'",
  };

  it.each(variables)('%s quotes the value given, unless it may be a secret', (variable) => {
    const value = BAD_VALUES[variable]!;
    // The secret's file beside the secret itself is a clash, not a bad value.
    const { PVE_TOKEN_SECRET: _secret, ...withoutSecret } = base;
    const found = problems({ ...(variable === 'PVE_TOKEN_SECRET_FILE' ? withoutSecret : base), [variable]: value });
    const own = found.filter((p) => p.includes(variable)).join('\n');
    if (SECRET_VARIABLES.includes(variable)) {
      expect(found.join('\n')).not.toContain(JSON.stringify(value));
      if (value.length > 5) expect(found.join('\n')).not.toContain(value);
      return;
    }
    // A path is named as it is (the messages say what could not be done with it).
    const quoted = QUOTED_AS[variable] ?? (isAbsolute(value) ? value : JSON.stringify(value));
    expect(own, `${variable}: ${found.join(' | ')}`).toContain(quoted);
  });

  it('says for a number what kind, what range and an example (SYNC_INTERVAL_SECONDS=1.5)', () => {
    expect(problems({ ...base, SYNC_INTERVAL_SECONDS: '1.5', SYNC_CYCLE_TIMEOUT_SECONDS: 'abc' })).toEqual([
      'SYNC_INTERVAL_SECONDS: "1.5" is not valid: expected a whole number of seconds from 0 to 86400 (0 turns the schedule off), e.g. 15, the default',
      'SYNC_CYCLE_TIMEOUT_SECONDS: "abc" is not valid: expected a whole number of seconds from 10 to 86400, e.g. 300, the default',
    ]);
    expect(problems({ ...base, MCP_HTTP_PORT: '99999' })).toEqual([
      'MCP_HTTP_PORT: "99999" is not valid: expected a whole number from 0 to 65535 (0 picks a free port), e.g. 8765, the default',
    ]);
  });

  it('the actions and webhooks numbers read the same way and say it in the same sentence', () => {
    expect(
      problems({
        ...base,
        ACTIONS_TTL_SECONDS: '5',
        ACTIONS_PER_NODE: ' 1.5 ',
        WEBHOOK_TIMEOUT_SECONDS: '-1',
        WEBHOOK_ROTATION_GRACE_HOURS: '721',
      }),
    ).toEqual([
      'ACTIONS_TTL_SECONDS: "5" is not valid: expected a whole number of seconds from 10 to 86400, e.g. 300, the default',
      'ACTIONS_PER_NODE: " 1.5 " is not valid: expected a whole number of actions from 1 to 64, e.g. 4, the default',
      'WEBHOOK_TIMEOUT_SECONDS: "-1" is not valid: expected a whole number of seconds from 1 to 300, e.g. 15, the default',
      'WEBHOOK_ROTATION_GRACE_HOURS: "721" is not valid: expected a whole number of hours from 0 to 720 (0 retires the old secret at once), e.g. 24, the default',
    ]);
    const path = yaml('numbers.yaml', 'actions: { concurrency: 2.5, waitMaxSeconds: " 30 " }\n');
    expect(problems(base, path)).toEqual([
      'actions.concurrency: 2.5 is not valid: expected a whole number of actions from 1 to 256, e.g. 16, the default',
    ]);
    // Digits with spaces around them are a number, as everywhere else.
    const config = loadConfig({
      env: { ...base, ACTIONS_WAIT_MAX_SECONDS: ' 30 ', WEBHOOK_TIMEOUT_SECONDS: '7' },
      cwd: dir,
    });
    expect([config.actions.waitMaxSeconds, config.webhooks.timeoutMs]).toEqual([30, 7_000]);
  });
});

describe('config file keys: a wrong value names the key and says what to write', () => {
  /** The keys of a section, as its own "unknown key" message lists them. */
  function keysOf(section: string, nest: (inner: string) => string): string[] {
    const found = problems(base, yaml(`keys-${section}.yaml`, nest('zzzz: 1')));
    const listed = /the keys are (.*)$/.exec(found.join('\n'))?.[1];
    expect(listed, found.join('\n')).toBeDefined();
    return listed!.split(/, | and /);
  }

  const sections: Array<[string, (inner: string) => string]> = [
    ['sync', (inner) => `sync: { ${inner} }\n`],
    ['snapshots', (inner) => `snapshots: { ${inner} }\n`],
    ['retention', (inner) => `retention: { ${inner} }\n`],
    ['mcp.http', (inner) => `mcp: { http: { ${inner} } }\n`],
    ['actions', (inner) => `actions: { ${inner} }\n`],
    ['redis', (inner) => `redis: { ${inner} }\n`],
    ['webhooks', (inner) => `webhooks: { ${inner} }\n`],
  ];

  it.each(sections)('every key of %s', (section, nest) => {
    const keys = keysOf(section, nest);
    expect(keys.length).toBeGreaterThan(1);
    // A mapping is wrong for every key: each must say so in its own words.
    const found = problems(base, yaml(`bad-${section}.yaml`, nest(keys.map((k) => `${k}: { x: 1 }`).join(', '))));
    for (const key of keys.filter((k) => k !== 'token' && k !== 'tokenFile')) {
      // What a key that may hold a secret was given is never quoted back.
      const given = /token/i.test(key) ? '' : '{"x":1} is not valid: ';
      expect(
        found.some((p) => p.startsWith(`${section}.${key}: ${given}expected `)),
        `${key}: ${found.join(' | ')}`,
      ).toBe(true);
    }
    for (const problem of found) expect(problem).not.toMatch(ZOD_WORDS);
  });

  it('every key of a cluster', () => {
    const found = problems(base, yaml('cluster-keys.yaml', 'clusters:\n  - { zzzz: 1 }\n'));
    const keys = /the keys are (.*)$/m.exec(found.join('\n'))![1]!.split(/, | and /);
    expect(keys).toContain('tokenId');
    const bad = problems(
      base,
      yaml('bad-cluster.yaml', `clusters:\n  - { ${keys.map((k) => `${k}: { x: 1 }`).join(', ')} }\n`),
    );
    for (const problem of bad) expect(problem).not.toMatch(ZOD_WORDS);
  });
});

describe('every problem at once', () => {
  it('an unknown top-level key and a bad log.level no longer hide the sections and clusters', () => {
    const path = yaml(
      'everything.yaml',
      [
        'bogus: 1',
        'log: { level: loud }',
        'sync: { intervalSeconds: soon }',
        'snapshots: { keep: -1 }',
        'mcp: { http: { port: 99999 } }',
        'clusters:',
        '  - { name: a, url: "https://a:8006", tokenid: "a@pve!b", tokenSecret: s }',
      ].join('\n'),
    );
    const found = problems({}, path);
    expect(found).toEqual([
      `config file ${path}: unknown key "bogus"; the keys are dataDir, log, clusters, sync, snapshots, retention, mcp, actions, redis and webhooks`,
      'clusters[0] (a).tokenId: missing; expected an API token id "user@realm!tokenid", e.g. inventory@pve!sync',
      'clusters[0] (a): unknown key "tokenid"; did you mean "tokenId"?',
      `config file ${path}: log.level: "loud" is not one of fatal, error, warn, info, debug, trace`,
      'sync.intervalSeconds: "soon" is not valid: expected a whole number of seconds from 0 to 86400 (0 turns the schedule off), e.g. 15, the default',
      'snapshots.keep: -1 is not valid: expected a whole number of snapshots from 0 to 1000000 (0 keeps any number), e.g. 48, the default',
      'mcp.http.port: 99999 is not valid: expected a whole number from 0 to 65535 (0 picks a free port), e.g. 8765, the default',
    ]);
  });

  it('a section of the wrong shape is named, and the rest still checked', () => {
    const path = yaml('shapes.yaml', 'sync: 15\nclusters: { name: a }\nmcp: { https: {} }\nlog: { lvl: info }\n');
    expect(problems({ ...base, SNAPSHOT_KEEP: 'x' }, path)).toEqual([
      `config file ${path}: log: unknown key "lvl"; the only key is level`,
      `config file ${path}: clusters: expected a list of clusters (YAML: lines starting with "- name: …"); found a mapping`,
      `config file ${path}: sync: expected a mapping of settings, e.g. { intervalSeconds: 15 }; found a number`,
      `config file ${path}: mcp: unknown key "https"; did you mean "http"?`,
      'SNAPSHOT_KEEP: "x" is not valid: expected a whole number of snapshots from 0 to 1000000 (0 keeps any number), e.g. 48, the default',
    ]);
  });
});

describe('misspelt keys', () => {
  it('get "did you mean" when one valid key is close, and the list of keys otherwise', () => {
    const path = yaml(
      'typos.yaml',
      'cluster: []\nsync: { intervalSecs: 5, sweepperiodminutes: 60, colour: blue }\nlog: { level: warning }\n',
    );
    const found = problems(base, path);
    expect(found).toContain(`config file ${path}: unknown key "cluster"; did you mean "clusters"?`);
    expect(found).toContain('sync: unknown key "intervalSecs"; did you mean "intervalSeconds"?');
    expect(found).toContain('sync: unknown key "sweepperiodminutes"; did you mean "sweepPeriodMinutes"?');
    expect(found).toContain(
      'sync: unknown key "colour"; the keys are intervalSeconds, missingThreshold, configConcurrency, configBudget, sweepPeriodMinutes, sweepEverySeconds, clusterLog, nodeStatusMinutes and cycleTimeoutSeconds',
    );
    expect(found).toContain(
      `config file ${path}: log.level: "warning" is not one of fatal, error, warn, info, debug, trace; did you mean "warn"?`,
    );
  });
});

describe('yes/no settings', () => {
  it.each([
    ['false', false],
    ['0', false],
    ['no', false],
    ['OFF', false],
    ['true', true],
    ['1', true],
    ['Yes', true],
    ['on', true],
  ])('MCP_HTTP and PVE_INSECURE set to %s are read as %s', (text, value) => {
    const config = loadConfig({ env: { ...base, MCP_HTTP: text, PVE_INSECURE: text }, cwd: dir });
    expect(config.mcp.http.enabled).toBe(value);
    expect(config.clusters[0]!.tls.insecure).toBe(value);
  });

  it('a YAML file may write them either way too; anything else lists the spellings', () => {
    const path = yaml('flags.yaml', 'sync: { clusterLog: "off" }\nmcp: { http: { enabled: no } }\n');
    const config = loadConfig({ env: base, configPath: path, cwd: dir });
    expect(config.sync.clusterLog).toBe(false);
    expect(config.mcp.http.enabled).toBe(false);
    expect(problems({ ...base, MCP_HTTP: 'disabled', PVE_INSECURE: '2' })).toEqual([
      'PVE_INSECURE: "2" is not valid: expected true or false (also 1/0, yes/no, on/off, in any case)',
      'MCP_HTTP: "disabled" is not valid: expected true or false (also 1/0, yes/no, on/off, in any case)',
    ]);
  });
});

describe('the bearer token: the same rules from MCP_BEARER_TOKEN and MCP_BEARER_TOKEN_FILE', () => {
  it('a 3-character token from a file does not open a 0.0.0.0 listener', () => {
    const file = join(dir, 'short.token');
    writeFileSync(file, 'abc\n');
    expect(problems({ ...base, MCP_HTTP_HOST: '0.0.0.0', MCP_BEARER_TOKEN_FILE: file })).toEqual([
      `MCP_BEARER_TOKEN_FILE: the token in ${file} is too short; use at least 16 characters (e.g. \`openssl rand -hex 32\`)`,
    ]);
    expect(problems({ ...base, MCP_HTTP_HOST: '0.0.0.0', MCP_BEARER_TOKEN: 'abc' })).toEqual([
      'MCP_BEARER_TOKEN: the token is too short; use at least 16 characters (e.g. `openssl rand -hex 32`)',
    ]);
  });

  it('a token with a space or a control character inside is refused, from either source, without echoing it', () => {
    const file = join(dir, 'spaced.token');
    writeFileSync(file, 'correct horse battery staple\n');
    const fromFile = problems({ ...base, MCP_BEARER_TOKEN_FILE: file });
    expect(fromFile).toEqual([
      `MCP_BEARER_TOKEN_FILE: the token in ${file} has spaces, control or non-ASCII characters; use e.g. \`openssl rand -hex 32\``,
    ]);
    const fromEnv = problems({ ...base, MCP_BEARER_TOKEN: 'abcdefgh\u0007ijklmnopq' });
    expect(fromEnv[0]).toMatch(/^MCP_BEARER_TOKEN: the token has spaces, control/);
    expect([...fromFile, ...fromEnv].join('\n')).not.toMatch(/horse|abcdefgh/);
  });

  it('a long enough token from a file is used, and the file key is named in the file form', () => {
    const file = join(dir, 'good.token');
    writeFileSync(file, `${'k'.repeat(32)}\n`);
    const config = loadConfig({ env: { ...base, MCP_HTTP_HOST: '0.0.0.0', MCP_BEARER_TOKEN_FILE: file }, cwd: dir });
    expect(config.mcp.http.token?.reveal()).toBe('k'.repeat(32));
    const short = join(dir, 'short2.token');
    writeFileSync(short, 'abc');
    const path = yaml('token.yaml', `mcp: { http: { tokenFile: ${short} } }\n`);
    expect(problems(base, path)).toEqual([
      `mcp.http.tokenFile: the token in ${short} is too short; use at least 16 characters (e.g. \`openssl rand -hex 32\`)`,
    ]);
  });
});

describe('relative paths in the environment', () => {
  it('MCP_BEARER_TOKEN_FILE starts from the working directory, as PVE_TOKEN_SECRET_FILE does, not the config file’s', () => {
    writeFileSync(join(dir, 'rel.token'), `${'r'.repeat(20)}\n`);
    const elsewhere = mkdtempSync(join(tmpdir(), 'pi-config-elsewhere-'));
    const path = join(elsewhere, 'c.yaml');
    writeFileSync(path, 'sync: { intervalSeconds: 30 }\n');
    const config = loadConfig({ env: { ...base, MCP_BEARER_TOKEN_FILE: 'rel.token' }, configPath: path, cwd: dir });
    expect(config.mcp.http.token?.reveal()).toBe('r'.repeat(20));
  });
});

describe('data directory and HTTP lists', () => {
  it('DATA_DIR that is a file, or below a file, is named before anything tries to create it', () => {
    expect(problems({ ...base, DATA_DIR: aFile })).toEqual([
      `DATA_DIR: ${aFile} is a file, not a directory; point it at a directory (it is created if missing)`,
    ]);
    expect(problems({ ...base, DATA_DIR: join(aFile, 'data') })).toEqual([
      `DATA_DIR: ${join(aFile, 'data')} cannot be created: ${aFile} is a file; point it at a directory (it is created if missing)`,
    ]);
    const path = yaml('datadir.yaml', `dataDir: ${aFile}\n`);
    expect(problems(base, path)[0]).toMatch(/^config file .*datadir\.yaml: dataDir: .* is a file, not a directory/);
  });

  it('allowed origins and hosts are checked and written the way browsers and proxies send them', () => {
    const config = loadConfig({
      env: {
        ...base,
        MCP_ALLOWED_ORIGINS: 'https://App.Example.com/, http://localhost:6274',
        MCP_ALLOWED_HOSTS: 'Inventory.example.com, inventory.example.com:8443, [::1]:8765',
      },
      cwd: dir,
    });
    expect(config.mcp.http.allowedOrigins).toEqual(['https://app.example.com', 'http://localhost:6274']);
    expect(config.mcp.http.allowedHosts).toEqual(['inventory.example.com', 'inventory.example.com:8443', '[::1]:8765']);
    expect(
      problems({ ...base, MCP_ALLOWED_ORIGINS: 'app.example.com', MCP_ALLOWED_HOSTS: 'https://x.example/' }),
    ).toEqual([
      'MCP_ALLOWED_ORIGINS: "app.example.com" is not valid: expected origins like https://app.example.com, separated by commas',
      'MCP_ALLOWED_HOSTS: "https://x.example/" is not valid: expected host names like inventory.example.com or inventory.example.com:8443',
    ]);
  });
});

// The queue's own parser judges REDIS_URL at start: a URL it cannot connect with used to pass the
// scheme check here and fail only once serve reached the queue (exit 1), or never, for sync --once.
describe('REDIS_URL is read by the parser the queue connects with', () => {
  const EXPECTED =
    'expected redis://[user:password@]host[:port][/db], rediss://… for TLS, or the absolute path of a unix socket';
  it.each([
    ['redis://u:hunter2@h:1 garbage', 'REDIS_URL: "redis://***@h:1 garbage" is not a URL'],
    [
      'redis://cache.example/zero',
      'REDIS_URL: "redis://cache.example/zero" names the database "zero", which is not a number',
    ],
    ['redis://[::1', 'REDIS_URL: "redis://[::1" is not a URL'],
  ])('%s', (url, said) => {
    const found = problems({ ...base, REDIS_URL: url });
    expect(found).toEqual([`${said}; ${EXPECTED}`]);
    expect(found.join('\n')).not.toContain('hunter2');
  });

  it('says what is wrong with the URL in REDIS_URL_FILE without quoting the file', () => {
    const file = join(dir, 'redis-url-bad');
    writeFileSync(file, 'https://default:hunter2@cache.example:6380\n', { mode: 0o600 });
    expect(problems({ ...base, REDIS_URL_FILE: file })).toEqual([
      `REDIS_URL_FILE: the URL in ${file} has the scheme https: that Redis does not speak; ${EXPECTED}`,
    ]);
  });

  it('takes a good URL, a socket path, and a file holding a good URL', () => {
    const file = join(dir, 'redis-url-good');
    writeFileSync(file, 'rediss://default:hunter2@cache.example:6380/2\n', { mode: 0o600 });
    for (const env of [
      { REDIS_URL: 'redis://cache.example:6379/0' },
      { REDIS_URL: '/run/redis.sock' },
      { REDIS_URL_FILE: file },
    ])
      expect(loadConfig({ env: { ...base, ...env }, cwd: dir }).redis.url).toBeDefined();
  });
});

describe('a value quoted back: short, on one line, never a secret', () => {
  it('escapes control characters, cuts a long value, and masks the password in a URL', () => {
    const found = problems({
      ...base,
      LOG_LEVEL: 'loud\u001b[31m\nx',
      SNAPSHOT_SCHEDULE: 'x'.repeat(500),
      REDIS_URL: 'default:hunter2@redis.example.com:6379',
    });
    expect(found).toEqual([
      'LOG_LEVEL: "loud\\u001b[31m\\nx" is not one of fatal, error, warn, info, debug, trace',
      `SNAPSHOT_SCHEDULE: "${'x'.repeat(60)}…" is not valid: expected a cron pattern such as "0 * * * *" (hourly), or "off"`,
      'REDIS_URL: "***@redis.example.com:6379" has the scheme default: that Redis does not speak; expected redis://[user:password@]host[:port][/db], rediss://… for TLS, or the absolute path of a unix socket',
    ]);
    const control = (text: string): boolean =>
      [...text].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f);
    expect(found.filter(control)).toEqual([]);
    expect(found.join('\n')).not.toContain('hunter2');
  });

  it('a secret pasted where the token id goes, or given to a file key, is not echoed', () => {
    const secret = '5f1e2d3c-aaaa-bbbb-cccc-0123456789ab';
    const path = yaml(
      'secret-values.yaml',
      `clusters:\n  - { name: a, url: "https://a:8006", tokenId: "${secret}", tokenSecret: 12345678 }\n`,
    );
    const found = problems({ ...base, PVE_ACTION_TOKEN_ID: secret, PVE_ACTION_TOKEN_SECRET: 'x'.repeat(20) }, path);
    expect(found.some((p) => p.startsWith('clusters[0] (a).tokenId: expected an API token id'))).toBe(true);
    expect(found.some((p) => p.startsWith('PVE_ACTION_TOKEN_ID: expected an API token id'))).toBe(true);
    expect(found.join('\n')).not.toMatch(/5f1e2d3c|12345678/);
  });

  it('the error is one line per problem, with no header line', () => {
    let error: unknown;
    try {
      loadConfig({ env: { ...base, SYNC_INTERVAL_SECONDS: 'soon', LOG_LEVEL: 'loud' }, cwd: dir });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message.split('\n')).toEqual((error as ConfigError).problems);
    expect((error as ConfigError).problems).toHaveLength(2);
  });
});
