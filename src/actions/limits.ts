/**
 * Limits inside the action worker: at most N actions per node at once (Proxmox serialises guest
 * changes on config locks, and a node's pvedaemon has a few workers), and one action per guest at
 * a time. BullMQ's worker concurrency bounds the whole; the per-principal rate limit is checked
 * when an action is asked for (submit.ts).
 */
export class KeyedLimiter {
  private readonly running = new Map<string, number>();
  private readonly waiting = new Map<string, Array<() => void>>();

  constructor(private readonly limit: number) {}

  /** Resolves with a release function once fewer than `limit` holders of `key` run. */
  async acquire(key: string): Promise<() => void> {
    if ((this.running.get(key) ?? 0) >= this.limit) {
      await new Promise<void>((resolve) => {
        const queue = this.waiting.get(key) ?? [];
        queue.push(resolve);
        this.waiting.set(key, queue);
      });
    } else this.running.set(key, (this.running.get(key) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.get(key)?.shift();
      if (next)
        next(); // the slot passes straight to the next waiter
      else {
        const n = (this.running.get(key) ?? 1) - 1;
        if (n > 0) this.running.set(key, n);
        else this.running.delete(key);
      }
      if (this.waiting.get(key)?.length === 0) this.waiting.delete(key);
    };
  }
}
