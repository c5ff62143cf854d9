import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';

describe('logger', () => {
  it('never writes a token secret, whether wrapped in Secret or passed under a secret-ish key', () => {
    const secret = '0d9b7c55-1111-2222-3333-444455556666';
    let output = '';
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        output += chunk.toString();
        done();
      },
    });
    const log = createLogger({ level: 'debug', destination: sink });
    const config = loadConfig({
      env: { PVE_URL: 'https://pve:8006', PVE_TOKEN_ID: 'a@pve!b', PVE_TOKEN_SECRET: secret },
      cwd: '/',
    });
    log.info({ config }, 'loaded');
    log.info(
      { headers: { authorization: `PVEAPIToken=a@pve!b=${secret}` }, tokenSecret: secret, nested: { secret } },
      'request',
    );
    expect(output).toContain('"msg":"loaded"');
    expect(output).toContain('[redacted]');
    expect(output).not.toContain(secret);
  });
});
