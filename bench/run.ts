/**
 * Benchmarks, printed as Markdown tables (copy them into docs/benchmarks.md with machine and date).
 *   npm run bench                      # all
 *   npm run bench -- sync              # one (bulk-read, sync, mcp, cost, facts, actions, webhooks)
 */
import { benchActions } from './actions.js';
import { benchBulkRead } from './bulk-read.js';
import { benchCost } from './cost.js';
import { benchFacts } from './facts.js';
import { benchMcp } from './mcp.js';
import { benchSync } from './sync.js';
import { benchWebhooks } from './webhooks.js';

const benches: Record<string, () => Promise<void>> = {
  'bulk-read': benchBulkRead,
  sync: benchSync,
  mcp: benchMcp,
  cost: () => benchCost(),
  facts: benchFacts,
  actions: benchActions,
  webhooks: benchWebhooks,
};
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
for (const name of wanted.length ? wanted : Object.keys(benches)) {
  const bench = benches[name];
  if (!bench) {
    process.stderr.write(`unknown benchmark "${name}"; known: ${Object.keys(benches).join(', ')}\n`);
    process.exit(2);
  }
  await bench();
}
