import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SIGNATURE_HEADER, verifyEngineSignature } from '../../../schema/rules/engines/index.js';
import { acceptSnapshot } from '../../../data-plane/snapshot/compiled-snapshot.js';
import { openSnapshotSecret, type GatewaySnapshot } from '../../../schema/snapshot/index.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { keyWithRole, ok, startTestControlPlane, type TestControlPlane } from '../../helpers/control-plane.js';

const ERRORS = `... on Error { __typename code message } ... on ValidationError { field } ... on ForbiddenError { capability } ... on NotFoundError { resourceType } ... on ConflictError { field }`;
const ENGINE = 'id name kind url method headerNames forwardHeaders timeoutMs allowPrivateNetwork options';
const CREATED = `... on CreateRuleEngineSuccess { created { signingSecret ruleEngine { ${ENGINE} } } }`;
const HEADER_SECRET = 'Bearer engine-api-key-9f8e7d6c5b4a';

let tdb: TestDatabase;
let cp: TestControlPlane;
let gatewayId: string;
/** A local rule engine speaking the webhook protocol; `answer` decides its reply. */
let engineServer: Server;
let engineUrl: string;
let answer: (body: string, headers: IncomingHttpHeaders) => { status: number; body: unknown } = () => ({ status: 200, body: { verdict: 'pass' } });
const received: { body: string; headers: IncomingHttpHeaders }[] = [];
/** Every GraphQL response body of this file, to prove no secret ever leaves. */
const responses: string[] = [];

const rawId = (globalId: string) => Buffer.from(globalId, 'base64url').toString().split(':')[1]!;

async function gql(query: string, vars: Record<string, unknown> = {}, key = cp.ownerKey) {
  const res = await cp.gql(query, vars, key);
  responses.push(JSON.stringify(res.data ?? res.errors));
  return ok(res);
}

async function mutate(field: string, args: string, vars: Record<string, unknown>, selection: string, key = cp.ownerKey) {
  const res = await gql(`mutation${args ? `(${args})` : ''} { ${field} { __typename ${selection} ${ERRORS} } }`, vars, key);
  return res[Object.keys(res)[0]!];
}

const createEngine = (input: Record<string, unknown>, key = cp.ownerKey) =>
  mutate('createRuleEngine(input: $input)', '$input: CreateRuleEngineInput!', { input }, CREATED, key);

async function latestSnapshot(accept: (s: GatewaySnapshot) => boolean): Promise<GatewaySnapshot> {
  let found: GatewaySnapshot | undefined;
  await expect
    .poll(
      async () => {
        const body = (await cp.app.services.snapshots.latest(cp.workspaceId, { fresh: true }))?.body as unknown as GatewaySnapshot | undefined;
        if (body && accept(body)) found = body;
        return found !== undefined;
      },
      { timeout: 10_000, interval: 50 },
    )
    .toBe(true);
  return found!;
}

beforeAll(async () => {
  engineServer = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      received.push({ body, headers: req.headers });
      const reply = answer(body, req.headers);
      res.writeHead(reply.status, { 'content-type': 'application/json' }).end(JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((resolve) => engineServer.listen(0, '127.0.0.1', resolve));
  engineUrl = `http://127.0.0.1:${(engineServer.address() as AddressInfo).port}/verdict`;

  tdb = await createTestDatabase();
  cp = await startTestControlPlane(tdb.database);
  gatewayId = (await mutate('createGateway(input: $input)', '$input: CreateGatewayInput!', { input: { name: 'Engineering', slug: 'eng' } }, '... on CreateGatewaySuccess { gateway { id } }')).gateway
    .id;
}, 60_000);

afterAll(async () => {
  await cp?.close();
  await tdb?.drop();
  await new Promise((resolve) => engineServer?.close(resolve));
});

describe('registering a rule engine', () => {
  it('refuses loopback, private, link-local and unique-local destinations, and plain http', async () => {
    const refused: [string, string][] = [
      ['https://127.0.0.1/verdict', 'loopback'],
      ['https://localhost:8443/verdict', 'loopback'],
      ['https://10.1.2.3/verdict', 'private'],
      ['https://192.168.0.10/verdict', 'private'],
      ['https://169.254.169.254/latest/meta-data', 'link-local'],
      ['https://[::1]/verdict', 'loopback'],
      ['https://[fd00::1]/verdict', 'unique-local'],
      ['http://93.184.216.34/verdict', 'https'],
      ['ftp://93.184.216.34/verdict', 'https'],
    ];
    for (const [url, why] of refused) {
      const res = await createEngine({ name: `Engine ${url}`, kind: 'WEBHOOK', url });
      expect(res.__typename, url).toBe('ValidationError');
      expect(res.field).toBe('input.url');
      expect(res.message.toLowerCase(), url).toContain(why);
    }
    expect(ok(await cp.gql(`{ ruleEngines { id } }`)).ruleEngines).toEqual([]);
  });

  it('accepts a public https address, and a private one only with allowPrivateNetwork', async () => {
    const pub = await createEngine({ name: 'Public', kind: 'LAKERA', url: 'https://93.184.216.34/v2/guard', options: { projectId: 'proj-1' } });
    expect(pub.__typename).toBe('CreateRuleEngineSuccess');
    expect(pub.created.ruleEngine).toMatchObject({ kind: 'LAKERA', method: 'POST', timeoutMs: 30000, allowPrivateNetwork: false, options: { projectId: 'proj-1' } });
    const local = await createEngine({
      name: 'Local dev engine',
      kind: 'WEBHOOK',
      url: engineUrl,
      allowPrivateNetwork: true,
      timeoutMs: 2000,
      headers: [{ name: 'Authorization', value: HEADER_SECRET }],
      forwardHeaders: ['X-Request-Id'],
    });
    expect(local.__typename).toBe('CreateRuleEngineSuccess');
    expect(local.created.ruleEngine).toMatchObject({ headerNames: ['Authorization'], forwardHeaders: ['x-request-id'], allowPrivateNetwork: true, timeoutMs: 2000 });
    expect(local.created.signingSecret).toMatch(/^ghes_[A-Za-z0-9_-]{43}$/);
  });

  it('refuses bad headers, options and timeouts precisely', async () => {
    const base = { name: 'Bad', kind: 'WEBHOOK', url: 'https://93.184.216.34/' };
    expect(await createEngine({ ...base, forwardHeaders: ['Authorization'] })).toMatchObject({ __typename: 'ValidationError', field: 'input.forwardHeaders.0' });
    expect(await createEngine({ ...base, headers: [{ name: 'X-Gatehouse-Signature', value: 'x' }] })).toMatchObject({ __typename: 'ValidationError', field: 'input.headers.0.name' });
    expect(await createEngine({ ...base, headers: [{ name: 'X-Key', value: 'a\r\nInjected: 1' }] })).toMatchObject({ __typename: 'ValidationError', field: 'input.headers.0.value' });
    expect(await createEngine({ ...base, timeoutMs: 10 })).toMatchObject({ __typename: 'ValidationError', field: 'input.timeoutMs' });
    expect(await createEngine({ ...base, kind: 'BEDROCK', options: { region: 'us-east-1' } })).toMatchObject({
      __typename: 'ValidationError',
      field: 'input.options.guardrailIdentifier',
    });
    expect(await createEngine({ ...base, name: 'local dev ENGINE' })).toMatchObject({ __typename: 'ConflictError', field: 'input.name' });
  });

  it('needs integrations.manage to register and integrations.view to list', async () => {
    const auditor = await keyWithRole(cp, 'Read-only auditor');
    expect(await createEngine({ name: 'x', kind: 'WEBHOOK', url: 'https://93.184.216.34/' }, auditor)).toMatchObject({
      __typename: 'ForbiddenError',
      capability: 'integrations.manage',
    });
    const member = await keyWithRole(cp, 'Member');
    const listed = await cp.gql(`{ ruleEngines { id } }`, {}, member);
    expect(listed.errors?.[0]?.extensions).toMatchObject({ code: 'FORBIDDEN', capability: 'integrations.view' });
  });
});

describe('using a rule engine', () => {
  let engineId: string;
  let signingSecret: string;

  it('tests the connection with a signed envelope the engine can verify with the secret shown once', async () => {
    const engine = ok(await cp.gql(`{ ruleEngines { id name } }`)).ruleEngines.find((e: any) => e.name === 'Local dev engine');
    engineId = engine.id;
    // The secret was shown at creation; rotate to learn one this test can check signatures with.
    const rotated = await mutate('rotateRuleEngineSecret(id: $id)', '$id: ID!', { id: engineId }, '... on RotateRuleEngineSecretSuccess { created { signingSecret } }');
    signingSecret = rotated.created.signingSecret;
    answer = (body, headers) => {
      const check = verifyEngineSignature(headers[SIGNATURE_HEADER] as string, body, signingSecret);
      if (!check.ok) return { status: 401, body: { verdict: 'error', reason: check.reason } };
      return { status: 200, body: { verdict: 'block', reason: 'test envelope blocked on purpose' } };
    };
    received.length = 0;
    const res = await mutate('testRuleEngineConnection(id: $id)', '$id: ID!', { id: engineId }, '... on TestRuleEngineConnectionSuccess { result { ok verdict reason errorCode durationMs } }');
    expect(res.result).toMatchObject({ ok: true, verdict: 'BLOCK', reason: 'test envelope blocked on purpose', errorCode: null });
    expect(received).toHaveLength(1);
    expect(received[0]!.headers.authorization).toBe(HEADER_SECRET);
    expect(JSON.parse(received[0]!.body)).toMatchObject({ hook: 'request', workspace: { id: cp.workspaceId } });

    answer = () => ({ status: 200, body: 'not a verdict' });
    const broken = await mutate('testRuleEngineConnection(id: $id)', '$id: ID!', { id: engineId }, '... on TestRuleEngineConnectionSuccess { result { ok verdict errorCode } }');
    expect(broken.result).toEqual({ ok: false, verdict: 'ERROR', errorCode: 'INVALID_RESPONSE' });
    answer = () => ({ status: 200, body: { verdict: 'pass' } });
  });

  it('compiles a rule using it into the snapshot, secrets sealed for data planes, and a data plane accepts it', async () => {
    const rule = await mutate(
      'createRule(input: $input)',
      '$input: CreateRuleInput!',
      {
        input: {
          gatewayId,
          name: 'Ask the engine',
          hooks: ['REQUEST'],
          scope: { parts: ['TOOL_ARGUMENTS'] },
          detection: { engine: { engineId } },
          action: { kind: 'BLOCK' },
          failureMode: 'OPEN',
        },
      },
      '... on CreateRuleSuccess { rule { id detection { ... on EngineDetection { engineId engine { name } } } } }',
    );
    expect(rule.rule.detection).toEqual({ engineId, engine: { name: 'Local dev engine' } });
    const redact = await mutate(
      'createRule(input: $input)',
      '$input: CreateRuleInput!',
      { input: { gatewayId, name: 'Engine redact', hooks: ['REQUEST'], scope: { parts: ['TOOL_ARGUMENTS'] }, detection: { engine: { engineId } }, action: { kind: 'REDACT' } } },
      '',
    );
    expect(redact).toMatchObject({ __typename: 'ValidationError', field: 'input.action.kind' });

    const snapshot = await latestSnapshot((s) => s.ruleEngines.length === 1);
    expect(snapshot.rules).toEqual([expect.objectContaining({ name: 'Ask the engine', detection: { engineId: rawId(engineId), kind: 'engine' }, failureMode: 'open' })]);
    const [engine] = snapshot.ruleEngines;
    expect(engine).toMatchObject({ id: rawId(engineId), kind: 'webhook', url: engineUrl, forwardHeaders: ['x-request-id'], allowPrivateNetwork: true, timeoutMs: 2000 });
    // Only engines rules use are compiled: the public Lakera one is not.
    expect(snapshot.ruleEngines).toHaveLength(1);
    const key = await cp.app.services.snapshots.snapshotKey(cp.workspaceId);
    expect(openSnapshotSecret(key.key, engine!.headers[0]!.value)).toBe(HEADER_SECRET);
    expect(openSnapshotSecret(key.key, engine!.signingSecret)).toBe(signingSecret);
    const body = JSON.stringify(snapshot);
    expect(body).not.toContain(HEADER_SECRET);
    expect(body).not.toContain(signingSecret);

    const compiled = acceptSnapshot(undefined, snapshot, new Map([[key.id, key.key]]));
    expect(compiled.rulesByGatewayId.get(rawId(gatewayId))!.map((r) => r.name)).toEqual(['Ask the engine']);
    expect(compiled.ruleEnginesById.get(rawId(engineId))!.name).toBe('Local dev engine');
  });

  it('refuses to delete an engine rules use', async () => {
    const res = await mutate('deleteRuleEngine(id: $id)', '$id: ID!', { id: engineId }, '... on DeleteRuleEngineSuccess { deletedRuleEngineId }');
    expect(res).toMatchObject({ __typename: 'ConflictError' });
    expect(res.message).toContain('Ask the engine');
  });

  it('updates headers by name and re-checks the destination', async () => {
    const upd = await mutate(
      'updateRuleEngine(id: $id, input: $input)',
      '$id: ID!, $input: UpdateRuleEngineInput!',
      { id: engineId, input: { setHeaders: [{ name: 'X-Tenant', value: 'acme-secret-tenant' }], removeHeaders: ['authorization'] } },
      `... on UpdateRuleEngineSuccess { ruleEngine { ${ENGINE} } }`,
    );
    expect(upd.ruleEngine.headerNames).toEqual(['X-Tenant']);
    const priv = await mutate(
      'updateRuleEngine(id: $id, input: $input)',
      '$id: ID!, $input: UpdateRuleEngineInput!',
      { id: engineId, input: { allowPrivateNetwork: false } },
      '',
    );
    expect(priv).toMatchObject({ __typename: 'ValidationError', field: 'input.url' });
  });

  it('never returns or records a secret', async () => {
    const all = responses.join('\n');
    // Signing secrets appear only in the answers that minted them.
    const minted = responses.filter((r) => r.includes(signingSecret));
    expect(minted).toHaveLength(1);
    expect(all).not.toContain(HEADER_SECRET);
    expect(all).not.toContain('acme-secret-tenant');
    const rows = await tdb.database.db.selectFrom('rule_engines').selectAll().where('workspace_id', '=', cp.workspaceId).execute();
    const stored = JSON.stringify(rows);
    expect(stored).not.toContain(HEADER_SECRET);
    expect(stored).not.toContain('acme-secret-tenant');
    expect(stored).not.toContain(signingSecret);
    const events = await tdb.database.db.selectFrom('workspace_events').select('details').where('workspace_id', '=', cp.workspaceId).execute();
    const log = JSON.stringify(events);
    expect(log).not.toContain(signingSecret);
    expect(log).not.toContain('acme-secret-tenant');
    expect(log).not.toContain('/verdict');
  });
});
