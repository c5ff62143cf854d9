/**
 * The one logger: JSON lines on stderr (stdout belongs to MCP over stdio), with secrets redacted
 * by path as a second line of defence behind the `Secret` wrapper.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'tokenSecret',
  '*.tokenSecret',
  'secret',
  '*.secret',
  'password',
  '*.password',
  'token',
  '*.token',
];

export function createLogger(options: { level: string; destination?: number | NodeJS.WritableStream }): Logger {
  const destination = options.destination ?? 2;
  return pino(
    {
      level: options.level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    typeof destination === 'number' ? pino.destination({ fd: destination, sync: true }) : destination,
  );
}
