/**
 * What the model sees of each tool, snapshotted: a change to a name, description, schema or
 * annotation shows in review as a diff of test/mcp/__toolsnaps__/<tool>.json. A missing, different
 * or leftover snapshot fails, on CI and locally alike; after an intended change, rewrite them with
 *   UPDATE_TOOLSNAPS=1 npx vitest run test/mcp/toolsnaps.test.ts   (or vitest's -u)
 * and commit the diff. (toMatchFileSnapshot is not used: outside CI it writes a missing snapshot
 * and passes, so a new tool without one went unnoticed.)
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { createMcpServer } from '../../src/mcp/server.js';
import { allTools } from '../../src/mcp/tools/index.js';

const DIR = fileURLToPath(new URL('__toolsnaps__/', import.meta.url));
const HOW =
  'If the change is intended, rewrite the snapshots with UPDATE_TOOLSNAPS=1 npx vitest run test/mcp/toolsnaps.test.ts and commit them.';
/** UPDATE_TOOLSNAPS=1, or vitest run with -u. */
const updating = (): boolean =>
  process.env.UPDATE_TOOLSNAPS === '1' || expect.getState().snapshotState?.snapshotUpdateState === 'all';

describe('tool snapshots', () => {
  it.each(allTools.map((t) => t.name))('%s matches its snapshot', async (name) => {
    const server = createMcpServer({
      store: undefined,
      now: Date.now,
      staleAfterMs: Infinity,
      log: createLogger({ level: 'silent' }),
      version: 'snapshot',
    });
    const client = new Client({ name: 'snap', version: '1' });
    const [a, b] = InMemoryTransport.createLinkedPair();
    await Promise.all([server.connect(a), client.connect(b)]);
    const tool = (await client.listTools()).tools.find((t) => t.name === name);
    await client.close();
    const text = JSON.stringify(tool, null, 2) + '\n';
    const file = `${DIR}${name}.json`;
    if (updating()) {
      writeFileSync(file, text);
      return;
    }
    expect(existsSync(file), `no snapshot test/mcp/__toolsnaps__/${name}.json. ${HOW}`).toBe(true);
    expect(text, `${name} differs from test/mcp/__toolsnaps__/${name}.json. ${HOW}`).toBe(readFileSync(file, 'utf8'));
  });

  it('every snapshot belongs to a tool', () => {
    const names = new Set(allTools.map((t) => `${t.name}.json`));
    const leftover = readdirSync(DIR).filter((f) => !names.has(f));
    if (updating()) {
      for (const f of leftover) rmSync(`${DIR}${f}`);
      return;
    }
    expect(leftover, `snapshots of tools that no longer exist. ${HOW}`).toEqual([]);
  });

  it('the whole tools/list stays small', async () => {
    const server = createMcpServer({
      store: undefined,
      now: Date.now,
      staleAfterMs: Infinity,
      log: createLogger({ level: 'silent' }),
      version: 'snapshot',
    });
    const client = new Client({ name: 'snap', version: '1' });
    const [a, b] = InMemoryTransport.createLinkedPair();
    await Promise.all([server.connect(a), client.connect(b)]);
    const bytes = JSON.stringify(await client.listTools()).length;
    await client.close();
    expect(bytes).toBeLessThan(12_000); // the 12 KB, read as the smaller 12,000 bytes
  });
});
