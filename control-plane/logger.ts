import { pino, type Logger } from 'pino';

export type { Logger };

/** Paths whose values never reach a log line, whatever object they sit in. */
export const REDACTED_LOG_PATHS: readonly string[] = [
  'authorization',
  'token',
  'apiKey',
  'key',
  'secret',
  'password',
  'plaintext',
  '*.authorization',
  '*.token',
  '*.apiKey',
  '*.key',
  '*.secret',
  '*.password',
  '*.plaintext',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  'databaseUrl',
  '*.databaseUrl',
  'bootstrapAdminKey',
  '*.bootstrapAdminKey',
];

/** Structured JSON logs with secrets redacted. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'gatehouse-control-plane' },
      redact: { paths: [...REDACTED_LOG_PATHS], censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
