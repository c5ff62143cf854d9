/**
 * "The daemon's user writes, a desktop user reads": `mcp` run by a second Unix user, in a group
 * that may read DATA_DIR and the database but write nothing there (README "Store files"). It
 * reads while the daemon is stopped (the daemon leaves the file in rollback mode when it stops,
 * so no -wal/-shm files are needed), sees each new cycle while the daemon runs, and keeps
 * answering when the daemon stops under it. Without read access it says which file and what to do.
 *
 * The second user is `nobody` (65534:65534), switched to with setpriv, so the test needs root;
 * CI runs as root. The daemon is this process (root): its syncs write the inventory as the
 * daemon would, against the simulator.
 */
import { chmodSync, chownSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import type { ProxmoxClient } from '../../src/proxmox/client.js';
import { createHttpProxmoxClient } from '../../src/proxmox/http-client.js';
import { Secret } from '../../src/secret.js';
import { startSimulator, type Simulator } from '../../src/sim/server.js';
import { openStore, type Store } from '../../src/store/db.js';
import { createClusterSync, DEFAULT_SYNC_SETTINGS, type ClusterSync } from '../../src/sync/cycle.js';

const READER = { uid: 65534, gid: 65534 }; // nobody:nogroup
const isRoot = process.getuid?.() === 0;

/** `proxmox-inventory mcp` as the second user, through the real SDK client over stdio. */
async function connectAsReader(dataDir: string): Promise<Client> {
  const client = new Client({ name: 'desktop', version: '1.0.0' });
  await client.connect(
    new StdioClientTransport({
      command: 'setpriv',
      args: [
        `--reuid=${READER.uid}`,
        `--regid=${READER.gid}`,
        '--clear-groups',
        process.execPath,
        '--import',
        'tsx',
        'src/cli.ts',
        'mcp',
      ],
      env: { PATH: process.env.PATH ?? '', DATA_DIR: dataDir, LOG_LEVEL: 'error' },
      cwd: process.cwd(),
      stderr: 'ignore',
    }),
  );
  return client;
}

async function ask(client: Client, name = 'inventory_overview'): Promise<{ isError: boolean; text: string }> {
  const r = (await client.callTool({ name, arguments: {} })) as CallToolResult;
  return { isError: r.isError === true, text: (r.content[0] as { text: string }).text };
}

/** The guest count an overview states ("guests 41 (lxc …"), or the whole text when it states none. */
const guestCount = (a: { isError: boolean; text: string }): number | string =>
  a.isError ? a.text : Number(/^guests (\d+) \(/m.exec(a.text)?.[1] ?? NaN);

describe.skipIf(!isRoot)(
  'mcp as a second user who may read the inventory but not write in DATA_DIR (needs root)',
  () => {
    let sim: Simulator;
    let proxmox: ProxmoxClient;
    let dataDir: string;
    let dbPath: string;
    const readers: Client[] = [];

    /** The daemon: the store opened for writing and a cluster sync, as `serve` builds them. */
    const startDaemon = (): { store: Store; sync: ClusterSync } => {
      const store = openStore(dbPath);
      const sync = createClusterSync({
        store,
        client: proxmox,
        cluster: 'lab',
        settings: { ...DEFAULT_SYNC_SETTINGS, sweepEveryMs: 0 },
        log: createLogger({ level: 'silent' }),
      });
      return { store, sync };
    };
    const reader = async (): Promise<Client> => {
      const client = await connectAsReader(dataDir);
      readers.push(client);
      return client;
    };

    beforeAll(async () => {
      sim = await startSimulator({ tls: false, guests: 40, nodes: 2, seed: 41, taskDelayMs: 5 });
      proxmox = createHttpProxmoxClient({
        cluster: 'lab',
        url: sim.url,
        tokenId: sim.tokens.full.id,
        tokenSecret: new Secret(sim.tokens.full.secret),
        tls: {},
        retries: 0,
        timeoutMs: 5_000,
      });
      dataDir = mkdtempSync(join(tmpdir(), 'pi-other-user-'));
      dbPath = join(dataDir, 'inventory.db');
      // The first start creates DATA_DIR's files for the daemon's user alone; the operator then
      // shares them with a group, as README "Store files" says (setgid: new files take the group).
      const first = startDaemon();
      await first.sync.runCycle();
      first.store.close();
      chownSync(dataDir, 0, READER.gid);
      chmodSync(dataDir, 0o2750);
      chownSync(dbPath, 0, READER.gid);
      chmodSync(dbPath, 0o640);
    }, 60_000);

    afterAll(async () => {
      for (const r of readers) await r.close().catch(() => undefined);
      await proxmox?.close();
      await sim?.close();
    });

    let desktop: Client;
    let daemon: { store: Store; sync: ClusterSync };

    it('reads while the daemon is stopped, from a directory holding the database alone', async () => {
      expect(readdirSync(dataDir)).toEqual(['inventory.db']);
      desktop = await reader();
      for (const tool of ['inventory_overview', 'list_guests', 'sync_status']) {
        const answer = await ask(desktop, tool);
        expect({ tool, isError: answer.isError }, answer.text).toEqual({ tool, isError: false });
      }
      expect(guestCount(await ask(desktop))).toBe(40);
      expect(readdirSync(dataDir)).toEqual(['inventory.db']); // the reader created nothing
    }, 60_000);

    it('sees every new cycle once the daemon starts, also while cycles write as it reads', async () => {
      daemon = startDaemon();
      sim.createGuest({ name: 'added-1' });
      await daemon.sync.runCycle();
      expect(guestCount(await ask(desktop))).toBe(41);

      // Cycles and reads side by side: every answer is whole, and none goes back in time.
      const counts: Array<number | string> = [];
      let writing = true;
      const reading = (async () => {
        while (writing) counts.push(guestCount(await ask(desktop)));
      })();
      for (let i = 2; i <= 11; i++) {
        sim.createGuest({ name: `added-${i}` });
        await daemon.sync.runCycle();
      }
      writing = false;
      await reading;
      expect(counts.length).toBeGreaterThan(0);
      expect(counts.filter((c) => typeof c !== 'number' || c < 41 || c > 51)).toEqual([]);
      expect(counts).toEqual([...counts].sort((a, b) => (a as number) - (b as number)));
      expect(guestCount(await ask(desktop))).toBe(51);
    }, 60_000);

    it('keeps answering when the daemon stops under it, and a reader started afterwards reads too', async () => {
      daemon.store.close();
      expect(guestCount(await ask(desktop))).toBe(51);
      await desktop.close();
      // The reader was open when the daemon stopped: -wal and -shm stayed, and a new reader uses them.
      const next = await reader();
      expect(guestCount(await ask(next))).toBe(51);
      await next.close();

      // Started and stopped with no reader open: the daemon leaves the database alone again.
      const again = startDaemon();
      sim.createGuest({ name: 'added-12' });
      await again.sync.runCycle();
      again.store.close();
      expect(readdirSync(dataDir)).toEqual(['inventory.db']);
      const last = await reader();
      expect(guestCount(await ask(last))).toBe(52);
      await last.close();
    }, 60_000);

    it('without read access, every answer names the file and what to do', async () => {
      chmodSync(dbPath, 0o600);
      const denied = await reader();
      try {
        expect(await ask(denied)).toEqual({
          isError: true,
          text: `${dbPath} may not be read by this user (uid ${READER.uid}); give it read access (README "Store files": a group shared with the daemon's user) or run \`mcp\` as the daemon's user`,
        });
        chmodSync(dbPath, 0o640);
        chmodSync(dataDir, 0o700);
        expect(await ask(denied, 'list_guests')).toEqual({
          isError: true,
          text: `${dataDir} may not be entered by this user (uid ${READER.uid}), so the inventory in it cannot be read; give this user access (README "Store files": a group shared with the daemon's user) or run as the daemon's user`,
        });
        // Access given back: the same process answers.
        chmodSync(dataDir, 0o2750);
        expect(guestCount(await ask(denied))).toBe(52);
      } finally {
        chmodSync(dataDir, 0o2750);
        chmodSync(dbPath, 0o640);
        await denied.close();
      }
    }, 60_000);
  },
);
