/**
 * The daemon's log lines as an operator's log shipper reads them: each key once. A duplicate key is
 * valid to pino but not to every JSON reader (the last one wins, or the line is refused).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { createDaemon } from '../src/main.js';

const dir = mkdtempSync(join(tmpdir(), 'pi-daemon-log-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it("names a cluster once in its client's warnings (TLS verification off)", async () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const config = loadConfig({
    env: {
      DATA_DIR: join(dir, 'data'),
      PVE_URL: 'https://127.0.0.1:1',
      PVE_TOKEN_ID: 'audit@pve!inventory',
      PVE_TOKEN_SECRET: '00000000-0000-0000-0000-000000000000',
      PVE_INSECURE: 'true',
      PVE_CLUSTER_NAME: 'lab',
    },
  });
  const daemon = createDaemon(config, createLogger({ level: 'warn', destination: sink }));
  try {
    const warning = lines.find((l) => l.includes('TLS verification is off'));
    expect(warning, lines.join('\n')).toBeDefined();
    expect(warning!.match(/"cluster":/g)).toHaveLength(1);
    expect(JSON.parse(warning!)).toMatchObject({ cluster: 'lab' });
  } finally {
    await daemon.close();
  }
});
