import { pino } from 'pino';

/** The logging the data plane needs; a pino logger satisfies it. */
export type DataPlaneLogger = Pick<pino.Logger, 'debug' | 'info' | 'warn' | 'error'>;

/** A logger that writes nothing, the default when none is given. */
export function silentLogger(): DataPlaneLogger {
  return pino({ level: 'silent' });
}
