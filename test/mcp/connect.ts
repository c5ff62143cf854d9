/** The real MCP SDK client, connected in memory to our server over a store: how the tool tests ask questions. */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { createLogger } from '../../src/log.js';
import { createMcpServer, type McpDeps } from '../../src/mcp/server.js';
import type { Store } from '../../src/store/db.js';

export async function connectClient(
  store: Store,
  name: string,
  deps: Partial<Omit<McpDeps, 'store'>> = {},
): Promise<Client> {
  const server = createMcpServer({
    store,
    now: Date.now,
    staleAfterMs: Infinity,
    log: createLogger({ level: 'silent' }),
    version: 'test',
    ...deps,
  });
  const client = new Client({ name, version: '1' });
  const [a, b] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(a), client.connect(b)]);
  await client.listTools(); // so the client checks every structuredContent against its output schema
  return client;
}
