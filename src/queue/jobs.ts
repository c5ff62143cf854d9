/**
 * What both reconcilers (actions, webhook deliveries) ask of BullMQ: does a row that SQLite says is
 * unfinished still have a live job? A job that ended in Redis while its row did not (it threw
 * before recording, Redis lost it) is removed, so the caller can add it again under the same id;
 * so is one a dead process left active, for a caller that is the queue's only worker.
 */
import type { Queue } from 'bullmq';

const LIVE = new Set(['active', 'waiting', 'delayed', 'prioritized', 'waiting-children']);

/** True when `jobId` has a job that will still run; otherwise any ended job under that id is gone and it may be added again. */
export async function hasLiveJob(queue: Queue, jobId: string): Promise<{ live: boolean; was: string }> {
  const job = await queue.getJob(jobId);
  const was = job ? await job.getState() : 'missing';
  if (LIVE.has(was)) return { live: true, was };
  if (job) await job.remove().catch(() => undefined);
  return { live: false, was };
}

/**
 * Frees a job that a dead process left active: its lock deleted and the job removed, so the caller
 * can add it again at once instead of waiting for BullMQ's stalled check (up to two lock periods
 * after the start). Only for a caller that knows no other live worker takes jobs from this queue;
 * a job locked by `ownToken` (a token of the caller's own worker) is left alone. Answers whether
 * it freed one.
 */
export async function releaseOrphan(queue: Queue, jobId: string, ownToken: string): Promise<boolean> {
  const client = await queue.getBackend().client;
  const lockKey = `${queue.toKey(jobId)}:lock`;
  const holder = await client.get(lockKey);
  if (holder?.startsWith(ownToken)) return false;
  await client.del(lockKey);
  const job = await queue.getJob(jobId);
  await job?.remove();
  return true;
}
