/**
 * The embedded Redis under supervision (superviseEmbeddedRedis), with a real redis-server and a
 * real BullMQ worker: SIGKILLed while the worker waits for jobs, it is started again on the same
 * socket, and a job added afterwards is taken by the worker that was created before the kill (the
 * "worker never resumes" class of bug). Once stopped, it stays stopped.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, Worker } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { pingSocket, superviseEmbeddedRedis, type SupervisedRedis } from '../../src/queue/embedded-redis.js';
import { redisConnection } from '../../src/queue/redis.js';
import { processAlive } from '../../src/store/lock.js';

const log = createLogger({ level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'pi-sup-'));
let redis: SupervisedRedis | undefined;

afterAll(async () => {
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('superviseEmbeddedRedis', () => {
  it('starts redis-server again after a SIGKILL, and a worker made before it takes new jobs', async () => {
    redis = await superviseEmbeddedRedis({ dataDir: dir, log, firstRestartDelayMs: 200 });
    const taken: string[] = [];
    const worker = new Worker(
      'sup',
      async (job) => {
        taken.push(job.id!);
      },
      { connection: redisConnection(redis.path, 'worker') },
    );
    worker.on('error', () => undefined);
    const queue = new Queue('sup', { connection: redisConnection(redis.path, 'queue') });
    queue.on('error', () => undefined);
    try {
      await queue.add('x', {}, { jobId: 'before' });
      await until('the job before the kill', () => taken.includes('before'));

      const first = redis.pid;
      process.kill(first, 'SIGKILL');
      await until('the old redis-server gone', () => !processAlive(first));
      await until('a new redis-server', () => redis!.pid !== first);
      await until('it answers', async () => (await pingSocket(redis!.path)) === 'ready');

      await until(
        'the queue to take a job again',
        () =>
          queue.add('x', {}, { jobId: 'after' }).then(
            () => true,
            () => false,
          ),
        20_000,
      );
      await until('the old worker to take it', () => taken.includes('after'), 30_000);
    } finally {
      await worker.close();
      await queue.close();
    }
  }, 60_000);

  it('stays stopped once stopped', async () => {
    const pid = redis!.pid;
    await redis!.stop();
    await sleep(600); // longer than the restart delay
    expect(processAlive(pid)).toBe(false);
    expect(await pingSocket(redis!.path)).toBe('down');
    redis = undefined;
  }, 30_000);
});
