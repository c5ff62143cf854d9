/**
 * What both reconcilers (actions, webhook deliveries) ask of BullMQ: does a row that SQLite says is
 * unfinished still have a live job? A job that ended in Redis while its row did not (it threw
 * before recording, Redis lost it) is removed, so the caller can add it again under the same id;
 * so is one a dead process left active, for a caller that is the queue's only worker.
 */
import type { Job, Queue } from 'bullmq';

const LIVE = new Set(['active', 'waiting', 'delayed', 'prioritized', 'waiting-children']);

/**
 * True when `jobId` has a job that will still run; otherwise any ended job under that id is gone
 * and it may be added again. With `takeOverFrom` (the caller's own worker id, given by a caller
 * that knows no other live worker takes jobs from this queue), an active job whose lock is not that
 * worker's is a dead process's: it is freed too, and answered as not live.
 */
export async function hasLiveJob(
  queue: Queue,
  jobId: string,
  takeOverFrom?: string,
): Promise<{ live: boolean; was: string }> {
  const job = await queue.getJob(jobId);
  const was = job ? await job.getState() : 'missing';
  if (job && was === 'active' && takeOverFrom !== undefined)
    return { live: !(await releaseOrphan(queue, job, takeOverFrom)), was };
  if (LIVE.has(was)) return { live: true, was };
  if (job) await job.remove().catch(() => undefined);
  return { live: false, was };
}

/**
 * Frees a job that a dead process left active: its lock deleted and the job removed, so the caller
 * can add it again at once instead of waiting for BullMQ's stalled check (up to two lock periods
 * after the start). A job locked by `ownToken` (a token of the caller's own worker) is left alone.
 * Answers whether it freed one.
 */
async function releaseOrphan(queue: Queue, job: Job, ownToken: string): Promise<boolean> {
  const client = await queue.getBackend().client;
  const lockKey = `${queue.toKey(job.id!)}:lock`;
  const holder = await client.get(lockKey);
  if (holder?.startsWith(ownToken)) return false;
  await client.del(lockKey);
  await job.remove();
  return true;
}
