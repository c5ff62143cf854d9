/**
 * What the model sees of each tool, snapshotted: a change to a name, description, schema or
 * annotation shows in review as a diff of test/mcp/__toolsnaps__/<tool>.json. Under CI=true vitest
 * writes no new snapshot, so a tool added without one fails the build.
 */
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { createMcpServer } from '../../src/mcp/server.js';
import { allTools } from '../../src/mcp/tools/index.js';

describe('tool snapshots', () => {
  it.each(allTools.map((t) => t.name))('%s matches its snapshot', async (name) => {
    const server = createMcpServer({ store: undefined, now: Date.now, staleAfterMs: Infinity, log: createLogger({ level: 'silent' }), version: 'snapshot' });
    const client = new Client({ name: 'snap', version: '1' });
    const [a, b] = InMemoryTransport.createLinkedPair();
    await Promise.all([server.connect(a), client.connect(b)]);
    const tool = (await client.listTools()).tools.find((t) => t.name === name);
    await client.close();
    await expect(JSON.stringify(tool, null, 2) + '\n').toMatchFileSnapshot(`__toolsnaps__/${name}.json`);
  });

  it('the whole tools/list stays small', async () => {
    const server = createMcpServer({ store: undefined, now: Date.now, staleAfterMs: Infinity, log: createLogger({ level: 'silent' }), version: 'snapshot' });
    const client = new Client({ name: 'snap', version: '1' });
    const [a, b] = InMemoryTransport.createLinkedPair();
    await Promise.all([server.connect(a), client.connect(b)]);
    const bytes = JSON.stringify(await client.listTools()).length;
    await client.close();
    expect(bytes).toBeLessThan(12_000); // the 12 KB, read as the smaller 12,000 bytes
  });
});
