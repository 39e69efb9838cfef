import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ValidationError } from '../errors.js';
import { description, displayName } from '../shared/input.js';

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i;

/** Environment variable names that hold secrets by convention; they must go in `secret` entries. */
const SECRET_NAME = /(SECRET|TOKEN|PASSW(OR)?D|API_?KEY|PRIVATE_?KEY|CREDENTIAL|AUTH)/i;
/** Values that are recognisably credentials whatever the variable is called. */
const SECRET_VALUE = /^(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_|sk-[A-Za-z0-9_-]{16,}|xox[abpr]-|AKIA[0-9A-Z]{16}|eyJ[A-Za-z0-9_-]{10,}\.)/;

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FORBIDDEN_HEADERS = new Set(['host', 'content-length', 'connection', 'transfer-encoding', 'mcp-session-id', 'mcp-protocol-version']);

export const envVarInput = z.object({
  name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'must be a valid environment variable name'),
  value: z.string().max(8192),
  secret: z.boolean().default(false),
});
export const headerInput = z.object({
  name: z
    .string()
    .regex(HEADER_NAME, 'must be a valid HTTP header name')
    .refine((n) => !FORBIDDEN_HEADERS.has(n.toLowerCase()), 'is managed by the gateway and cannot be set'),
  value: z.string().min(1).max(8192).refine((v) => !/[\r\n]/.test(v), 'must not contain line breaks'),
});

export const remoteInput = z.object({
  url: z.string().max(2048),
  transport: z.enum(['streamable-http', 'sse']).default('streamable-http'),
  allowInsecure: z.boolean().default(false),
});
export const managedInput = z.object({
  launch: z.enum(['stdio', 'http']),
  command: z.string().trim().min(1, 'must not be empty').max(1024),
  args: z.array(z.string().max(4096)).max(100).default([]),
  env: z.array(envVarInput).max(100).default([]),
  cwd: z.string().max(1024).optional(),
  url: z.string().max(2048).optional(),
});
export const authInput = z.object({
  kind: z.enum(['none', 'headers']),
  headers: z.array(headerInput).max(50).default([]),
});

export const createServerInput = z.object({
  name: displayName(),
  description: description.optional(),
  remote: remoteInput.optional(),
  managed: managedInput.optional(),
  workstation: z.object({}).optional(),
  auth: authInput.optional(),
});
export type CreateServerInput = z.output<typeof createServerInput>;

export const updateServerInput = z.object({
  name: displayName().optional(),
  description: description.optional(),
  remote: remoteInput.optional(),
  managed: managedInput.optional(),
  auth: authInput.optional(),
});
export type UpdateServerInput = z.output<typeof updateServerInput>;

/** Checks an upstream URL: https, or http only on loopback or with the insecure flag. */
export function validateUpstreamUrl(raw: string, allowInsecure: boolean, field: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ValidationError(field, `${field}: "${raw.slice(0, 200)}" is not a valid URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ValidationError(field, `${field}: only https:// (or http:// on loopback) URLs are allowed`);
  }
  if (url.protocol === 'http:' && !LOOPBACK.test(url.hostname) && !allowInsecure) {
    throw new ValidationError(field, `${field}: plain http is allowed only for loopback addresses; use https or set allowInsecure`);
  }
  if (url.username || url.password) {
    throw new ValidationError(field, `${field}: credentials in the URL are not allowed; use auth headers, which are stored encrypted`);
  }
  return url.toString();
}

/**
 * Resolves a command the way a shell would (absolute, relative to cwd, or on PATH) and
 * refuses one with no executable behind it.
 */
export function validateCommand(command: string, cwd: string | undefined, field: string): void {
  const executable = (p: string) => {
    try {
      accessSync(p, constants.X_OK);
      return statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (cwd !== undefined) {
    let isDir = false;
    try {
      isDir = statSync(cwd).isDirectory();
    } catch {
      isDir = false;
    }
    if (!isDir) throw new ValidationError('input.managed.cwd', `input.managed.cwd: ${cwd} is not a directory`);
  }
  if (command.includes('/')) {
    const resolved = path.resolve(cwd ?? process.cwd(), command);
    if (!executable(resolved)) throw new ValidationError(field, `${field}: ${command} is not an executable file`);
    return;
  }
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  if (!dirs.some((dir) => executable(path.join(dir, command)))) {
    throw new ValidationError(field, `${field}: no executable named "${command}" on PATH`);
  }
}

/** Refuses secrets typed into plain environment fields. */
export function validateEnv(env: readonly z.output<typeof envVarInput>[], field: string): void {
  const seen = new Set<string>();
  env.forEach((v, i) => {
    if (seen.has(v.name)) throw new ValidationError(`${field}.${i}.name`, `${field}.${i}.name: ${v.name} is set twice`);
    seen.add(v.name);
    if (v.secret) return;
    if (SECRET_NAME.test(v.name) || SECRET_VALUE.test(v.value)) {
      throw new ValidationError(
        `${field}.${i}`,
        `${field}.${i}: ${v.name} looks like a secret; set secret: true so it is stored encrypted and never shown again`,
      );
    }
  });
}
