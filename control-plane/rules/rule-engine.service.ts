import { randomBytes, randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import {
  DEFAULT_ENGINE_TIMEOUT_MS,
  EngineDestinationError,
  RuleEngineClient,
  SIGNATURE_HEADER,
  UNFORWARDABLE_HEADERS,
  assertPublicDestination,
  connectionTestEvaluation,
  snapshotSecretOpener,
  type LookupFunction,
} from '../../schema/rules/engines/index.js';
import type { EngineErrorCode } from '../../schema/rules/engines/verdict.js';
import { MAX_ENGINE_TIMEOUT_MS, SNAPSHOT_KEY_BYTES, sealSnapshotSecret, type SnapshotRuleEngine } from '../../schema/snapshot/index.js';
import { requireCapability, type Viewer } from '../access/viewer.js';
import type { Database } from '../db/database.js';
import type { DB } from '../db/tables.js';
import { ConflictError, NotFoundError, ValidationError, isUniqueViolation } from '../errors.js';
import { recordWorkspaceEvent } from '../events/workspace-events.js';
import type { Vault } from '../identities/vault.js';
import type { SealedSecret } from '../servers/server.table.js';
import { displayName, parseInput } from '../shared/input.js';
import { ruleEngineHeaderContext, ruleEngineSigningContext } from './rule-secrets.js';
import type { RuleEngineKind, RuleEngineRow } from './rule.table.js';

/** Prefix of generated signing secrets, so a leaked one is recognizable. */
export const SIGNING_SECRET_PREFIX = 'ghes_';

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Framing and our own signature: never configured by an admin. */
const RESERVED_HEADERS = new Set(['host', 'content-length', 'content-type', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'expect', SIGNATURE_HEADER]);
const MAX_HEADERS = 32;

const headerName = z
  .string()
  .regex(HEADER_NAME, 'must be an HTTP header name')
  .max(100)
  .superRefine((name, ctx) => {
    if (RESERVED_HEADERS.has(name.toLowerCase())) ctx.addIssue({ code: 'custom', message: `${name} is set by the gateway itself` });
  });

const headerList = z
  .array(z.strictObject({ name: headerName, value: z.string().min(1, 'must not be empty').max(8192).refine((v) => !/[\r\n\0]/.test(v), 'must not contain CR, LF or NUL') }))
  .max(MAX_HEADERS, `at most ${MAX_HEADERS} headers`)
  .refine((list) => new Set(list.map((h) => h.name.toLowerCase())).size === list.length, 'lists a header twice');

const forwardHeaders = z
  .array(
    z
      .string()
      .regex(HEADER_NAME, 'must be an HTTP header name')
      .max(100)
      .transform((name) => name.toLowerCase())
      .superRefine((name, ctx) => {
        if (UNFORWARDABLE_HEADERS.has(name)) ctx.addIssue({ code: 'custom', message: `${name} is never forwarded (credentials and framing stay at the gateway)` });
      }),
  )
  .max(MAX_HEADERS)
  .transform((list) => [...new Set(list)]);

const options = z
  .record(z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,63}$/, 'option names are letters, digits and _'), z.string().max(1000))
  .refine((o) => Object.keys(o).length <= 20, 'at most 20 options');

const url = z.string().trim().min(1, 'must not be empty').max(2048, 'must be at most 2048 characters');
const timeoutMs = z.int('must be a whole number of milliseconds').min(100, 'must be at least 100 ms').max(MAX_ENGINE_TIMEOUT_MS, `must be at most ${MAX_ENGINE_TIMEOUT_MS} ms`);

const createInput = z
  .strictObject({
    name: displayName(),
    kind: z.enum(['webhook', 'lakera', 'bedrock']),
    url,
    method: z.enum(['POST', 'PUT']).default('POST'),
    headers: headerList.default([]),
    forwardHeaders: forwardHeaders.default([]),
    timeoutMs: timeoutMs.default(DEFAULT_ENGINE_TIMEOUT_MS),
    allowPrivateNetwork: z.boolean().default(false),
    options: options.default({}),
  })
  .superRefine((input, ctx) => checkOptions(input.kind, input.options, ctx));

const updateInput = z.strictObject({
  name: displayName().optional(),
  url: url.optional(),
  method: z.enum(['POST', 'PUT']).optional(),
  /** Added or replaced by name (case-insensitive). */
  setHeaders: headerList.optional(),
  removeHeaders: z.array(z.string().max(100)).max(MAX_HEADERS).optional(),
  forwardHeaders: forwardHeaders.optional(),
  timeoutMs: timeoutMs.optional(),
  allowPrivateNetwork: z.boolean().optional(),
  options: options.optional(),
});

/** Adapter settings an engine of each kind cannot work without. */
const REQUIRED_OPTIONS: { readonly [K in RuleEngineKind]: readonly string[] } = {
  webhook: [],
  lakera: [],
  bedrock: ['guardrailIdentifier', 'guardrailVersion'],
};

function missingOption(kind: RuleEngineKind, given: Record<string, string>): string | undefined {
  return REQUIRED_OPTIONS[kind].find((name) => !given[name]);
}

function checkOptions(kind: RuleEngineKind, given: Record<string, string>, ctx: z.RefinementCtx): void {
  const missing = missingOption(kind, given);
  if (missing) ctx.addIssue({ code: 'custom', path: ['options', missing], message: `a ${kind} engine needs options.${missing}` });
}

/** A rule engine as created or rotated: the signing secret is shown this once. */
export interface RuleEngineWithSecret {
  readonly engine: RuleEngineRow;
  readonly signingSecret: string;
}

/** What `testRuleEngineConnection` reports. */
export interface RuleEngineConnectionTest {
  readonly ok: boolean;
  readonly verdict: 'pass' | 'block' | 'modify' | 'error';
  /** The engine's block reason or the error's. */
  readonly reason: string | null;
  readonly errorCode: EngineErrorCode | 'DESTINATION_REFUSED' | null;
  readonly durationMs: number;
}

export interface RuleEngineServiceOptions {
  /** Replaces the system resolver for the private-address checks (tests fake DNS). */
  readonly lookup?: LookupFunction;
}

/**
 * Custom rule engines of a workspace. URLs are checked at save (https unless
 * `allowPrivateNetwork`; loopback, private, link-local and unique-local addresses refused
 * after DNS resolution). Header values and the signing secret are vault-sealed and never
 * returned; the signing secret is generated here and shown once, at creation and rotation.
 */
export class RuleEngineService {
  constructor(
    private readonly database: Database,
    private readonly vault: Vault,
    private readonly options: RuleEngineServiceOptions = {},
  ) {}

  list(viewer: Viewer): Promise<RuleEngineRow[]> {
    requireCapability(viewer, 'integrations.view');
    return this.database.db.selectFrom('rule_engines').selectAll().where('workspace_id', '=', viewer.workspaceId).orderBy('name').orderBy('id').execute();
  }

  async byIds(workspaceId: string, ids: readonly string[]): Promise<RuleEngineRow[]> {
    if (ids.length === 0) return [];
    return this.database.db.selectFrom('rule_engines').selectAll().where('workspace_id', '=', workspaceId).where('id', 'in', ids).execute();
  }

  async get(viewer: Viewer, id: string, trx: Kysely<DB> = this.database.db): Promise<RuleEngineRow> {
    const row = await trx.selectFrom('rule_engines').selectAll().where('workspace_id', '=', viewer.workspaceId).where('id', '=', id).executeTakeFirst();
    if (!row) throw new NotFoundError('RuleEngine', id);
    return row;
  }

  async create(viewer: Viewer, rawInput: unknown): Promise<RuleEngineWithSecret> {
    requireCapability(viewer, 'integrations.manage');
    const input = parseInput(createInput, rawInput);
    await this.checkDestination(input.url, input.allowPrivateNetwork);
    const id = randomUUID();
    const signingSecret = generateSigningSecret();
    const engine = await this.write(input.name, async (trx) => {
      const row = await trx
        .insertInto('rule_engines')
        .values({
          id,
          workspace_id: viewer.workspaceId,
          name: input.name,
          kind: input.kind,
          url: input.url,
          method: input.method,
          headers: JSON.stringify(this.sealHeaders(id, {}, input.headers)),
          forward_headers: JSON.stringify(input.forwardHeaders),
          signing_secret: JSON.stringify(this.vault.seal(signingSecret, ruleEngineSigningContext(id))),
          timeout_ms: input.timeoutMs,
          allow_private_network: input.allowPrivateNetwork,
          options: JSON.stringify(input.options),
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.event(trx, viewer, 'rule_engine.created', row);
      return row;
    });
    return { engine, signingSecret };
  }

  async update(viewer: Viewer, id: string, rawInput: unknown): Promise<RuleEngineRow> {
    requireCapability(viewer, 'integrations.manage');
    const input = parseInput(updateInput, rawInput);
    const current = await this.get(viewer, id);
    const nextUrl = input.url ?? current.url;
    const allowPrivate = input.allowPrivateNetwork ?? current.allow_private_network;
    if (input.url !== undefined || input.allowPrivateNetwork !== undefined) await this.checkDestination(nextUrl, allowPrivate);
    const missing = input.options === undefined ? undefined : missingOption(current.kind, input.options);
    if (missing) throw new ValidationError(`input.options.${missing}`, `input.options.${missing}: a ${current.kind} engine needs options.${missing}`);
    return this.write(input.name ?? current.name, async (trx) => {
      const locked = await trx.selectFrom('rule_engines').selectAll().where('workspace_id', '=', viewer.workspaceId).where('id', '=', id).forUpdate().executeTakeFirst();
      if (!locked) throw new NotFoundError('RuleEngine', id);
      let headers: Record<string, SealedSecret> | undefined;
      if (input.setHeaders !== undefined || input.removeHeaders !== undefined) {
        const removed = new Set((input.removeHeaders ?? []).map((name) => name.toLowerCase()));
        const kept = Object.fromEntries(Object.entries(locked.headers).filter(([name]) => !removed.has(name.toLowerCase())));
        headers = this.sealHeaders(id, kept, input.setHeaders ?? []);
        if (Object.keys(headers).length > MAX_HEADERS) throw new ValidationError('input.setHeaders', `input.setHeaders: at most ${MAX_HEADERS} headers`);
      }
      const row = await trx
        .updateTable('rule_engines')
        .set({
          ...(input.name !== undefined && { name: input.name }),
          ...(input.url !== undefined && { url: input.url }),
          ...(input.method !== undefined && { method: input.method }),
          ...(headers !== undefined && { headers: JSON.stringify(headers) }),
          ...(input.forwardHeaders !== undefined && { forward_headers: JSON.stringify(input.forwardHeaders) }),
          ...(input.timeoutMs !== undefined && { timeout_ms: input.timeoutMs }),
          ...(input.allowPrivateNetwork !== undefined && { allow_private_network: input.allowPrivateNetwork }),
          ...(input.options !== undefined && { options: JSON.stringify(input.options) }),
          updated_at: new Date(),
        })
        .where('workspace_id', '=', viewer.workspaceId)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.event(trx, viewer, 'rule_engine.updated', row);
      return row;
    });
  }

  /** Refused while rules use the engine: delete or change those rules first. */
  async delete(viewer: Viewer, id: string): Promise<void> {
    requireCapability(viewer, 'integrations.manage');
    await this.database.db.transaction().execute(async (trx) => {
      const engine = await this.get(viewer, id, trx);
      const users = await trx.selectFrom('rules').select('name').where('workspace_id', '=', viewer.workspaceId).where('engine_id', '=', id).orderBy('name').execute();
      if (users.length > 0) {
        const names = users.slice(0, 5).map((r) => `"${r.name}"`).join(', ');
        throw new ConflictError(`rule engine "${engine.name}" is used by ${users.length} rule${users.length > 1 ? 's' : ''} (${names}${users.length > 5 ? ', …' : ''}); change or delete them first`);
      }
      await trx.deleteFrom('rule_engines').where('workspace_id', '=', viewer.workspaceId).where('id', '=', id).execute();
      await this.event(trx, viewer, 'rule_engine.deleted', engine);
    });
  }

  /** A new signing secret, shown once; the old one stops working with the next snapshot. */
  async rotateSecret(viewer: Viewer, id: string): Promise<RuleEngineWithSecret> {
    requireCapability(viewer, 'integrations.manage');
    const signingSecret = generateSigningSecret();
    const engine = await this.database.db.transaction().execute(async (trx) => {
      await this.get(viewer, id, trx);
      const row = await trx
        .updateTable('rule_engines')
        .set({ signing_secret: JSON.stringify(this.vault.seal(signingSecret, ruleEngineSigningContext(id))), updated_at: new Date() })
        .where('workspace_id', '=', viewer.workspaceId)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.event(trx, viewer, 'rule_engine.secret_rotated', row);
      return row;
    });
    return { engine, signingSecret };
  }

  /**
   * Sends the harmless test envelope through the same client a data plane uses (no
   * retries) and reports the verdict. The destination is checked again first.
   */
  async testConnection(viewer: Viewer, id: string): Promise<RuleEngineConnectionTest> {
    requireCapability(viewer, 'integrations.manage');
    const row = await this.get(viewer, id);
    try {
      await assertPublicDestination(row.url, row.allow_private_network, this.lookupOption());
    } catch (error) {
      if (!(error instanceof EngineDestinationError)) throw error;
      return { ok: false, verdict: 'error', reason: error.message, errorCode: 'DESTINATION_REFUSED', durationMs: 0 };
    }
    // Seal for this one client under a throwaway key, as a snapshot would carry them.
    const key = randomBytes(SNAPSHOT_KEY_BYTES);
    const keyId = `test_${randomUUID()}`;
    const reseal = (sealed: SealedSecret, context: string) => sealSnapshotSecret(key, keyId, this.vault.open(sealed, context), context);
    const engine: SnapshotRuleEngine = {
      allowPrivateNetwork: row.allow_private_network,
      forwardHeaders: row.forward_headers,
      headers: Object.entries(row.headers).map(([name, sealed]) => ({ name, value: reseal(sealed, ruleEngineHeaderContext(id, name)) })),
      id: row.id,
      kind: row.kind,
      method: row.method,
      name: row.name,
      options: row.options,
      signingSecret: reseal(row.signing_secret, ruleEngineSigningContext(id)),
      timeoutMs: row.timeout_ms,
      url: row.url,
    };
    const client = new RuleEngineClient(engine, snapshotSecretOpener(new Map([[keyId, key]])), { retries: 0, ...this.lookupOption() });
    try {
      const result = await client.testConnection(connectionTestEvaluation(viewer.workspaceId));
      const verdict = result.verdict;
      return {
        ok: result.ok,
        verdict: verdict.verdict,
        reason: verdict.verdict === 'block' || verdict.verdict === 'error' ? verdict.reason : null,
        errorCode: verdict.verdict === 'error' ? verdict.code : null,
        durationMs: Math.round(result.durationMs * 100) / 100,
      };
    } finally {
      await client.close();
    }
  }

  private lookupOption(): { lookup?: LookupFunction } {
    return this.options.lookup ? { lookup: this.options.lookup } : {};
  }

  private async checkDestination(target: string, allowPrivateNetwork: boolean): Promise<void> {
    try {
      await assertPublicDestination(target, allowPrivateNetwork, this.lookupOption());
    } catch (error) {
      if (error instanceof EngineDestinationError) throw new ValidationError('input.url', `input.url: ${error.message}`);
      throw error;
    }
  }

  private sealHeaders(engineId: string, kept: Record<string, SealedSecret>, set: readonly { name: string; value: string }[]): Record<string, SealedSecret> {
    const out: Record<string, SealedSecret> = {};
    const replaced = new Set(set.map((h) => h.name.toLowerCase()));
    for (const [name, sealed] of Object.entries(kept)) if (!replaced.has(name.toLowerCase())) out[name] = sealed;
    for (const header of set) out[header.name] = this.vault.seal(header.value, ruleEngineHeaderContext(engineId, header.name));
    return out;
  }

  private event(trx: Kysely<DB>, viewer: Viewer, type: string, engine: RuleEngineRow) {
    // The origin only: paths and queries of engine URLs sometimes carry keys.
    return recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, {
      type,
      subjectType: 'RuleEngine',
      subjectId: engine.id,
      details: { name: engine.name, kind: engine.kind, origin: originOf(engine.url) },
    });
  }

  private async write<T>(name: string, fn: (trx: Kysely<DB>) => Promise<T>): Promise<T> {
    try {
      return await this.database.db.transaction().execute(fn);
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`a rule engine named "${name}" already exists in this workspace`, 'input.name');
      throw err;
    }
  }
}

function generateSigningSecret(): string {
  return `${SIGNING_SECRET_PREFIX}${randomBytes(32).toString('base64url')}`;
}

function originOf(target: string): string {
  try {
    return new URL(target).origin;
  } catch {
    return '';
  }
}
