/**
 * Progress of a long first sync (every config of a big cluster): a redrawn bar on a terminal,
 * a log line every 10 % otherwise. Small jobs show nothing.
 */
import type { Logger } from './log.js';

const MIN_TOTAL = 50;
const WIDTH = 30;

export function createProgress(
  stream: NodeJS.WriteStream,
  log: Logger,
  label: string,
): (done: number, total: number) => void {
  let lastDraw = 0;
  let lastTenth = -1;
  return (done, total) => {
    if (total < MIN_TOTAL) return;
    if (stream.isTTY) {
      const now = Date.now();
      if (done < total && now - lastDraw < 100) return;
      lastDraw = now;
      const filled = Math.round((done / total) * WIDTH);
      stream.write(
        `\r${label} [${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}] ${done}/${total} configs ${Math.floor((done / total) * 100)}%`,
      );
      if (done === total) stream.write('\n');
    } else {
      const tenth = Math.floor((done / total) * 10);
      if (tenth === lastTenth) return;
      lastTenth = tenth;
      log.info({ cluster: label, done, total }, `reading guest configs: ${tenth * 10}%`);
    }
  };
}
