// Structured logs: JSON lines on stdout for journald. Secret-looking keys are redacted
// at the logger, as a second line of defence behind the Secret type.
import type { Logger, DestinationStream } from 'pino';
import { requireCjs } from './cjs.js';

const { pino, destination } = requireCjs('pino') as typeof import('pino');

export type { Logger };

export const REDACT_PATHS = ['password', '*.password', '*.*.password', 'token', '*.token', 'secret', '*.secret', 'key', '*.keyPassphrase', 'authorization', '*.authorization', 'cookie', '*.cookie'];

export function createLogger(level: string, dest?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { svc: 'estate-edge' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '***' },
      formatters: { level: (label) => ({ level: label }) },
    },
    dest ?? destination({ fd: 1, sync: false }),
  );
}
