/**
 * What both reconcilers (actions, webhook deliveries) ask of BullMQ: does a row that SQLite says is
 * unfinished still have a live job? A job that ended in Redis while its row did not (it threw
 * before recording, Redis lost it) is removed, so the caller can add it again under the same id.
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
