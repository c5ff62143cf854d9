/** `mcp`: the MCP server over stdio, reading the inventory file. */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { createLogger } from '../log.js';
import { configFromEnv } from './config-env.js';
import { packageVersion, stdioActions, stdioCaller } from '../main.js';
import { createMcpServer } from '../mcp/server.js';
import { openStore, type Store } from '../store/db.js';
import { inventoryExists } from '../store/files.js';

/**
 * `mcp`: the MCP server over stdio. It opens the inventory read-only, so it runs beside `serve`;
 * until the daemon has created the database it still answers, saying so. With ACTIONS set, its
 * write tools open the file for writing too (action rows) and enqueue on the daemon's Redis.
 * Logs go to stderr only.
 */
export async function runMcpStdio(configPath: string | undefined): Promise<void> {
  const config = configFromEnv(configPath, true);
  const log = createLogger(config.log);
  let store: Store | undefined;
  const actions = stdioActions(config, log);
  const server = createMcpServer({
    caller: stdioCaller(config),
    actions,
    log,
    version: packageVersion(),
    now: Date.now,
    staleAfterMs: config.mcp.http.readyMaxAgeSeconds * 1000,
    toolsets: config.mcp.toolsets,
    get store() {
      // A file that cannot be used throws its StoreError here, and every answer says it until it is fixed.
      if (!store && inventoryExists(config.dbPath)) store = openStore(config.dbPath, { readonly: true });
      return store;
    },
  });
  await server.connect(new StdioServerTransport());
  log.info({ db: config.dbPath }, 'MCP server on stdio');
  await new Promise<void>((resolveClosed) => {
    server.server.onclose = () => resolveClosed();
    // Not once: a second SIGINT (npm or tsx passing the same Ctrl-C on) would find no listener
    // and end the process in the middle of its close.
    process.on('SIGINT', () => resolveClosed());
    process.on('SIGTERM', () => resolveClosed());
  });
  await server.close();
  await actions?.submit.queue?.close();
  store?.close();
}
