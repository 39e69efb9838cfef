import { pino } from 'pino';

/** The logging the data plane needs; a pino logger satisfies it. */
export type DataPlaneLogger = Pick<pino.Logger, 'debug' | 'info' | 'warn' | 'error'>;

/** A logger that writes nothing, the default when none is given. */
export function silentLogger(): DataPlaneLogger {
  return pino({ level: 'silent' });
}

/** What replaces a redacted value. */
export const REDACTED = '[redacted]';

/**
 * Keys whose values never reach a log line, at any depth, compared case-insensitively
 * with `-` and `_` ignored: credentials in headers (`authorization`, `cookie`,
 * `x-api-key`, …), tokens, secrets, passwords, keys, session ids.
 */
const SECRET_KEY = /^(authorization|proxyauthorization|cookie|setcookie|xapikey|apikey|token|accesstoken|refreshtoken|idtoken|bearer|secret|clientsecret|secretenv|password|passwd|passphrase|privatekey|key|sessionsecret|mcpsessionid|sessionid|plaintext|credential|credentials)$/;

/**
 * Credentials that can hide inside any string (an error message, a URL, a dumped header):
 * bearer/basic credentials, Gatehouse tokens, URL userinfo, and `name: value` or
 * `name=value` pairs whose name says secret (`Cookie: …`, `?api_key=…`, `password=…`).
 */
const SECRET_IN_TEXT =
  /((?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]+|\bgh_(?:at|dp|ak)_[A-Za-z0-9_-]+|(\/\/)[^/\s:@]+:[^/\s@]+@|(\b(?:set-cookie|cookie|authorization|x-api-key|api[-_]?key|access[-_]?token|refresh[-_]?token|token|secret|client[-_]?secret|password|passwd)\s*[:=]\s*)((?:(?:bearer|basic)\s+)?(?:"[^"]*"|[^\s,;&"]+(?:;\s*[^\s,;&"]+)*))/gi;

/** Cheap test before the replace: most log strings contain none of these. */
const MAYBE_SECRET = /bearer|basic|gh_|@|cookie|authori[sz]ation|key|token|secret|passw/i;

/** pino `redact` paths for loggers the data plane creates itself (a first line of defence; {@link redactingLogger} is the rule). */
export const DATA_PLANE_REDACT_PATHS: readonly string[] = [
  'authorization',
  'cookie',
  'token',
  'secret',
  'password',
  'headers.authorization',
  'headers.cookie',
  'req.headers.authorization',
  'req.headers.cookie',
  '*.authorization',
  '*.cookie',
  '*.token',
  '*.secret',
  '*.password',
];

/** A pino logger for a data plane running on its own: JSON lines, ISO times, secrets redacted. */
export function createDataPlaneLogger(level: string, destination?: pino.DestinationStream): DataPlaneLogger {
  const base = pino(
    {
      level,
      base: { service: 'gatehouse-data-plane' },
      redact: { paths: [...DATA_PLANE_REDACT_PATHS], censor: REDACTED },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
  return redactingLogger(base);
}

type Level = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: readonly Level[] = ['debug', 'info', 'warn', 'error'];

/**
 * Wraps any logger so that every object it is given is redacted first, at any depth:
 * values under secret-looking keys (see {@link SECRET_KEY}) become `[redacted]`, and
 * bearer tokens, Gatehouse tokens (`gh_at_…`, `gh_dp_…`) and URL credentials are cut
 * out of every string, error messages and stacks included. `buildDataPlane` wraps the
 * logger it is given with it, so the rule holds whatever logger the host passes. Skipped
 * for levels the logger does not write, so disabled debug lines cost nothing.
 */
export function redactingLogger(base: DataPlaneLogger): DataPlaneLogger {
  if ((base as { [WRAPPED]?: true })[WRAPPED]) return base;
  const enabled = (level: Level) => {
    const check = (base as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled;
    return typeof check === 'function' ? check.call(base, level) : true;
  };
  const wrapped = {} as Record<Level, (...args: unknown[]) => void> & { [WRAPPED]?: true };
  for (const level of LEVELS) {
    const write = (base[level] as (...args: unknown[]) => void).bind(base);
    wrapped[level] = (...args: unknown[]) => {
      if (!enabled(level)) return;
      write(...args.map((arg) => redactValue(arg)));
    };
  }
  wrapped[WRAPPED] = true;
  return wrapped as unknown as DataPlaneLogger;
}

const WRAPPED = Symbol('gatehouse.redacting-logger');

/** A copy of `value` with secrets redacted (see {@link redactingLogger}); primitives other than strings pass through. */
export function redactValue(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return redactText(value);
  if (typeof value !== 'object' || value === null) return value;
  if (seen.has(value)) return '[circular]';
  if (depth > 8) return '[too deep]';
  seen.add(value);
  if (value instanceof Error) {
    // Same class (so pino's error serializer still names its type), redacted contents.
    const copy = Object.create(Object.getPrototypeOf(value) as object) as Error;
    const hidden = (v: unknown) => ({ value: v, enumerable: false, writable: true, configurable: true });
    Object.defineProperties(copy, { message: hidden(redactText(value.message)), stack: hidden(value.stack === undefined ? undefined : redactText(value.stack)) });
    if (value.cause !== undefined) Object.defineProperty(copy, 'cause', hidden(redactValue(value.cause, depth + 1, seen)));
    for (const [key, inner] of Object.entries(value)) {
      Object.defineProperty(copy, key, { value: isSecretKey(key) ? REDACTED : redactValue(inner, depth + 1, seen), enumerable: true, writable: true, configurable: true });
    }
    return copy;
  }
  if (Array.isArray(value)) return value.map((item) => redactValue(item, depth + 1, seen));
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return `[${value.byteLength} bytes]`;
  if (value instanceof Map) return redactValue(Object.fromEntries(value), depth + 1, seen);
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) out[key] = isSecretKey(key) ? REDACTED : redactValue(inner, depth + 1, seen);
  return out;
}

function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key.toLowerCase().replace(/[-_]/g, ''));
}

function redactText(text: string): string {
  if (!MAYBE_SECRET.test(text)) return text;
  return text.replace(SECRET_IN_TEXT, (match, scheme: string | undefined, slashes: string | undefined, name: string | undefined) => {
    if (scheme !== undefined) return `${scheme}${REDACTED}`;
    if (slashes !== undefined) return `${slashes}${REDACTED}@`;
    if (name !== undefined) return `${name}${REDACTED}`;
    return REDACTED;
  });
}
