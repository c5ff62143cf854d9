/**
 * How a long-running command (serve, demo, sim) meets signals and faults: while it starts, and
 * then until it stops. A Ctrl-C reaches it two or three times (npm, tsx and the shell each pass it
 * on), so copies within RELAYED_SIGNAL_MS of the first are one signal; a later one exits at once.
 */
import type { Logger } from './log.js';
import { EXIT_FATAL } from './version.js';

/** How soon after a first signal another one counts as the same Ctrl-C passed on by a wrapper. */
export const RELAYED_SIGNAL_MS = 1_000;

/** A signal that arrived, and when. */
export interface Signalled {
  signal: NodeJS.Signals;
  at: number;
}

/**
 * A listener that calls `onFirst` for the first signal, ignores a wrapper's copies of it, and
 * exits with 130 on a later one: the user asking again, for a start or a close that hangs.
 */
function signalListener(
  log: Logger,
  onFirst: (signal: NodeJS.Signals) => void,
  first?: Signalled,
): (signal: NodeJS.Signals) => void {
  let firstAt = first?.at;
  return (signal) => {
    if (firstAt === undefined) {
      firstAt = Date.now();
      onFirst(signal);
      return;
    }
    if (Date.now() - firstAt < RELAYED_SIGNAL_MS) return;
    log.warn({ signal }, 'second signal: exiting at once, without a clean shutdown');
    process.exit(130);
  };
}

function listen(listener: (signal: NodeJS.Signals) => void): () => void {
  // For good (not once): a signal with no listener would end the process on the spot.
  process.on('SIGINT', listener);
  process.on('SIGTERM', listener);
  return () => {
    process.off('SIGINT', listener);
    process.off('SIGTERM', listener);
  };
}

/** Signals kept while a daemon starts: `release()` stops keeping them and says what arrived. */
export interface SignalHold {
  release(): Signalled | undefined;
}

/**
 * Keeps a SIGINT/SIGTERM that arrives while the daemon starts (a Redis coming up, a first sync),
 * so that the start finishes and `runUntilStopped` closes it cleanly at once: Node's default would
 * end a half-started process and leave its embedded redis-server running.
 */
export function holdSignalsWhileStarting(log: Logger): SignalHold {
  let held: Signalled | undefined;
  const stopListening = listen(
    signalListener(log, (signal) => {
      held = { signal, at: Date.now() };
      log.info({ signal }, 'stopping once the start has finished');
    }),
  );
  return {
    release() {
      stopListening();
      return held;
    },
  };
}

/**
 * Runs until SIGINT/SIGTERM, or until an exception or rejection that nothing caught, then runs
 * `close` once and resolves with the exit code: 0 after a signal, EXIT_FATAL after a fault. A
 * process in a state nobody planned for does not carry on (Node's own advice for
 * `uncaughtException`): it logs the fault, closes the store and its port cleanly, and exits for its
 * supervisor to restart it; a close that hangs past `closeDeadlineMs` exits anyway. It takes over
 * from `holding`: a signal kept while starting closes at once.
 */
export function runUntilStopped(
  close: () => Promise<void>,
  log: Logger,
  { closeDeadlineMs = 10_000, holding }: { closeDeadlineMs?: number; holding?: SignalHold } = {},
): Promise<number> {
  return new Promise((resolveDone) => {
    let closing = false;
    const stop = (code: number): void => {
      if (closing) return;
      closing = true;
      const deadline = setTimeout(() => {
        log.error({ closeDeadlineMs }, 'shutdown did not finish in time; exiting');
        process.exit(code || 1);
      }, closeDeadlineMs);
      deadline.unref();
      close()
        .catch((err: unknown) => log.error({ err }, 'error during shutdown'))
        .finally(() => {
          clearTimeout(deadline);
          resolveDone(code);
        });
    };
    const onFirstSignal = (signal: NodeJS.Signals): void => {
      if (closing) {
        log.warn({ signal }, 'signal during the shutdown after a fault: exiting before it finished');
        process.exit(130);
      }
      log.info({ signal }, 'shutting down');
      stop(0);
    };
    const onFault = (err: unknown, origin: string): void => {
      log.fatal({ err, origin }, 'unexpected error; shutting down cleanly so the supervisor can restart the daemon');
      stop(EXIT_FATAL);
    };
    // Listening before the hold lets go: with no listener between the two, Node closes the signal's
    // handle, and a signal on its way (sent during a long synchronous write) is lost.
    let onSignal: (signal: NodeJS.Signals) => void = () => undefined;
    listen((signal) => onSignal(signal));
    const held = holding?.release();
    onSignal = signalListener(log, onFirstSignal, held);
    process.on('uncaughtException', onFault);
    process.on('unhandledRejection', (reason) => onFault(reason, 'unhandledRejection'));
    if (held) onFirstSignal(held.signal);
  });
}
