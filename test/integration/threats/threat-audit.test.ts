import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { everythingStdioCommand, fixtureCommand } from '../../fixtures/mcp/spawn.js';
import { POISONED_PROMPTS, POISONED_TOOLS } from '../../fixtures/mcp/poisoned-server.js';
import { ERR, POISONED_FIXTURE, ThreatGatehouse, dbId, featureOf } from './harness.js';

/**
 * Detector hits in the audit trail, end to end: a real control plane on a real database
 * (the detectors write `policy_action` entries in the transaction of the hit), and a real
 * data plane whose refusals of withheld features reach the same store through audit ingest.
 */

const g = new ThreatGatehouse();
let stateDir: string;

beforeAll(async () => {
  await g.start();
  stateDir = mkdtempSync(path.join(tmpdir(), 'gatehouse-threat-audit-'));
}, 60_000);

afterAll(async () => {
  await g.close();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

const ENTRY = `correlationId leg status method featureName gatewayId assignmentId serverId userId hostId connectionId accessTokenId sessionRef clientName
  errorMessage body dataPlaneInstance policyActions { ruleId ruleName action findings detail alert }`;

/** Policy-action entries of a server's audit trail whose (only) action has this rule id, oldest first. */
async function serverEntries(serverId: string, ruleId: string): Promise<any[]> {
  const data = await g.gql(`query($id: ID!) { server(id: $id) { auditLogs(first: 100, filter: { leg: [POLICY_ACTION] }) { edges { node { ${ENTRY} } } } } }`, { id: serverId });
  return data.server.auditLogs.edges.map((e: any) => e.node).filter((n: any) => n.policyActions[0]?.ruleId === ruleId).reverse();
}

/** Policy-action entries of a gateway's feature, waiting for the data plane's shipper to deliver `count`. */
async function gatewayEntries(gatewayId: string, feature: string, ruleId: string, count = 1): Promise<any[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const data = await g.gql(`query($id: ID!, $feature: String!) { gateway(id: $id) { auditLogs(first: 100, filter: { leg: [POLICY_ACTION], feature: $feature }) { edges { node { ${ENTRY} } } } } }`, {
      id: gatewayId,
      feature,
    });
    const found = data.gateway.auditLogs.edges.map((e: any) => e.node).filter((n: any) => n.policyActions[0]?.ruleId === ruleId);
    if (found.length >= count || Date.now() > deadline) return found;
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function rpcError(promise: Promise<unknown>): Promise<McpError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof McpError) return error;
    throw error;
  }
  throw new Error('expected a JSON-RPC error');
}

/** What a detector entry never carries: nothing of a call (no caller, session, method, body). */
const NO_CALL = { method: null, userId: null, hostId: null, connectionId: null, accessTokenId: null, sessionRef: null, clientName: null, body: null, dataPlaneInstance: 'control-plane', leg: 'POLICY_ACTION', status: 'BLOCKED' };

/** An approval lifts a hit: the same shape, status OK, and the admin who approved in the detail. */
const APPROVAL = { ...NO_CALL, status: 'OK', correlationId: expect.stringMatching(/^[0-9a-f-]{36}$/) };
const APPROVED_BY = /approved by api_key:[0-9a-f-]{36}\b/;

/** Policy-action entries of a server whose (only) action has this rule id and action, oldest first. */
async function serverActions(serverId: string, ruleId: string, action: string): Promise<any[]> {
  return (await serverEntries(serverId, ruleId)).filter((e) => e.policyActions[0].action === action);
}

const approveFeature = (serverId: string, name: string, hash?: string) =>
  g.gql(`mutation($input: ApproveFlaggedFeatureInput!) { approveFlaggedFeature(input: $input) { __typename ${ERR} } }`, {
    input: { serverId, kind: 'TOOL', name, ...(hash ? { hash } : {}) },
  });

describe('tool poisoning', () => {
  let poisoned: { id: string };
  let runId: string;

  it('writes one policy-action entry per flagged feature: detector, server, feature, action, reason codes; none of the offending text', async () => {
    poisoned = await g.createServer({ name: 'Poisoned', managed: { launch: 'STDIO', ...POISONED_FIXTURE } });
    runId = dbId((await g.discover(poisoned.id)).id);
    const entries = await serverEntries(poisoned.id, 'detector:tool_poisoning');
    // quick_sum only shadows tools of a server that is not there yet.
    const flagged = ['add', 'get_forecast', 'review_code', 'summarize', 'translate'];
    expect(entries.map((e) => e.featureName).sort()).toEqual(flagged);
    for (const entry of entries) {
      expect(entry).toMatchObject({ ...NO_CALL, correlationId: runId, serverId: poisoned.id, gatewayId: null, assignmentId: null, errorMessage: null });
      expect(entry.policyActions).toEqual([
        { ruleId: 'detector:tool_poisoning', ruleName: 'Tool poisoning', action: 'withhold', findings: expect.any(Array), detail: expect.stringContaining(`"${entry.featureName}" of server "Poisoned"`), alert: true },
      ]);
      expect(entry.policyActions[0].detail).toContain('withheld on every gateway until an admin approves it');
    }
    const add = entries.find((e) => e.featureName === 'add')!.policyActions[0];
    expect(add.findings).toEqual(expect.arrayContaining(['HIDDEN_INSTRUCTIONS', 'SECRET_ACCESS']));
    expect(add.detail).toMatch(/score \d\.\d\d: .*instruction-tag in description/);

    // The offending text stays in the feature's review record, never in the audit trail.
    const features = await g.gql(`query($id: ID!) { server(id: $id) { features(first: 50) { edges { node { name threatReasons { excerpt } } } } } }`, { id: poisoned.id });
    const excerpts: string[] = features.server.features.edges.flatMap((e: any) => e.node.threatReasons.map((r: any) => r.excerpt)).filter((x: string) => x.length >= 12);
    expect(excerpts.length).toBeGreaterThan(5);
    const stored = JSON.stringify(entries);
    for (const excerpt of excerpts) expect(stored).not.toContain(JSON.stringify(excerpt).slice(1, -1));
    for (const marker of ['<IMPORTANT>', 'mcp.json', 'id_rsa', '\u200B']) expect(stored).not.toContain(marker);
  }, 60_000);

  it("records a feature flagged by another server's discovery (shadowing) under that discovery's run", async () => {
    const everything = await g.createServer({ name: 'Everything', managed: { launch: 'STDIO', ...everythingStdioCommand() } });
    const run = dbId((await g.discover(everything.id)).id);
    const entries = await serverEntries(poisoned.id, 'detector:tool_poisoning');
    expect(entries.map((e) => e.featureName).sort()).toEqual([...POISONED_TOOLS, ...POISONED_PROMPTS].sort());
    const quickSum = entries.find((e) => e.featureName === 'quick_sum')!;
    expect(quickSum).toMatchObject({ correlationId: run, serverId: poisoned.id, policyActions: [{ findings: ['CROSS_SERVER_SHADOWING'] }] });
    expect(await serverEntries(everything.id, 'detector:tool_poisoning')).toEqual([]);
  }, 60_000);

  it('a call to a flagged feature is refused, and its audit entry names the reason (FLAGGED) without a pin alert', async () => {
    const { token, gatewayId } = await g.gatewayWith('poison', poisoned.id, 'p');
    const client = await g.connect('poison', token);
    const refused = await rpcError(client.callTool({ name: 'p__add', arguments: { a: 1, b: 2 } }));
    expect(refused.data).toMatchObject({ code: 'WITHHELD', reason: 'FLAGGED' });
    const [entry] = await gatewayEntries(gatewayId, 'p__add', 'stage:provisioning');
    expect(entry).toMatchObject({ method: 'tools/call', status: 'BLOCKED', policyActions: [{ action: 'refuse', findings: ['WITHHELD', 'FLAGGED'], alert: false }] });
    expect(entry.policyActions[0].detail).toContain('discovery flagged its definition as suspicious');
  }, 60_000);

  it('approving a flagged feature writes an approve entry: who, which feature, the codes approved over; a refused or repeated approval writes none', async () => {
    const [flagged] = await serverActions(poisoned.id, 'detector:tool_poisoning', 'withhold').then((all) => all.filter((e) => e.featureName === 'add'));
    expect((await approveFeature(poisoned.id, 'add', 'f'.repeat(64))).approveFlaggedFeature.__typename).toBe('ConflictError');
    expect(await serverActions(poisoned.id, 'detector:tool_poisoning', 'approve')).toEqual([]);

    expect((await approveFeature(poisoned.id, 'add')).approveFlaggedFeature.__typename).toBe('ApproveFlaggedFeatureSuccess');
    await approveFeature(poisoned.id, 'add');
    const approvals = await serverActions(poisoned.id, 'detector:tool_poisoning', 'approve');
    expect(approvals).toHaveLength(1);
    expect(approvals[0]).toMatchObject({ ...APPROVAL, serverId: poisoned.id, featureName: 'add', gatewayId: null, assignmentId: null });
    expect(approvals[0].policyActions).toEqual([
      { ruleId: 'detector:tool_poisoning', ruleName: 'Tool poisoning', action: 'approve', findings: flagged.policyActions[0].findings, detail: expect.stringMatching(APPROVED_BY), alert: false },
    ]);
    expect(approvals[0].policyActions[0].detail).toMatch(/^tool "add" of server "Poisoned" approved by api_key:\S+ at hash [0-9a-f]{12}…; no longer withheld as flagged$/);
    expect(approvals[0].correlationId).not.toBe(flagged.correlationId);
  }, 60_000);
});

describe('rug pulls', () => {
  it('writes one entry per broken pin, on its gateway and under its exposed name; a refused call names PIN_MISMATCH and asks for an alert', async () => {
    const stateFile = path.join(stateDir, 'records.txt');
    writeFileSync(stateFile, 'Looks up a record by id');
    const server = await g.createServer({ name: 'Records', managed: { launch: 'STDIO', ...fixtureCommand('mutable-server'), env: [{ name: 'FIXTURE_STATE_FILE', value: stateFile }] } });
    await g.discover(server.id);
    const { token, gatewayId, assignmentId } = await g.gatewayWith('records', server.id, 'r');
    await g.gql(`mutation($a: ID!, $input: PinFeatureInput!) { pinFeature(assignmentId: $a, input: $input) { __typename } }`, { a: assignmentId, input: { featureType: 'TOOLS', name: 'lookup' } });
    // A change of an unpinned field set would be no rug pull; a new description is.
    writeFileSync(stateFile, 'Looks up a record by id, and its history');
    const run = dbId((await g.discover(server.id)).id);

    const entries = await serverEntries(server.id, 'detector:rug_pull');
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      ...NO_CALL,
      correlationId: run,
      serverId: server.id,
      gatewayId,
      assignmentId,
      featureName: 'r__lookup',
      policyActions: [{ ruleId: 'detector:rug_pull', ruleName: 'Rug pull (pinned definition changed)', action: 'withhold', findings: ['PIN_MISMATCH'], alert: true }],
    });
    expect(entries[0].policyActions[0].detail).toMatch(/^pinned tool "lookup" of server "Records" changed \(pinned hash [0-9a-f]{12}…, now [0-9a-f]{12}…\); withheld on gateway "records"/);
    expect(JSON.stringify(entries)).not.toContain('its history');
    // An honest description is not poisoning: the rug pull is the only detector that spoke.
    expect(await serverEntries(server.id, 'detector:tool_poisoning')).toEqual([]);

    await g.dataPlaneSnapshot((s) => featureOf(s, 'records', 'tools', 'r__lookup')?.withheld === 'PIN_MISMATCH');
    const client = await g.connect('records', token);
    expect((await rpcError(client.callTool({ name: 'r__lookup', arguments: { id: '1' } }))).data).toMatchObject({ reason: 'PIN_MISMATCH' });
    const [refusal] = await gatewayEntries(gatewayId, 'r__lookup', 'stage:provisioning');
    expect(refusal).toMatchObject({ policyActions: [{ action: 'refuse', findings: ['WITHHELD', 'PIN_MISMATCH'], alert: true }] });

    // Discovering the same definition again is no new rug pull.
    await g.discover(server.id);
    expect(await serverEntries(server.id, 'detector:rug_pull')).toHaveLength(1);

    // Pinning the new definition approves it: an approve entry beside the withhold; pinning it once more is no approval.
    const pin = `mutation($a: ID!, $input: PinFeatureInput!) { pinFeature(assignmentId: $a, input: $input) { __typename } }`;
    await g.gql(pin, { a: assignmentId, input: { featureType: 'TOOLS', name: 'lookup' } });
    await g.gql(pin, { a: assignmentId, input: { featureType: 'TOOLS', name: 'lookup' } });
    const approvals = await serverActions(server.id, 'detector:rug_pull', 'approve');
    expect(approvals).toHaveLength(1);
    expect(approvals[0]).toMatchObject({
      ...APPROVAL,
      serverId: server.id,
      gatewayId,
      assignmentId,
      featureName: 'r__lookup',
      policyActions: [{ ruleId: 'detector:rug_pull', action: 'approve', findings: ['PIN_MISMATCH'], alert: false }],
    });
    expect(approvals[0].policyActions[0].detail).toMatch(/^changed tool "lookup" pinned again by api_key:\S+ \(pinned hash [0-9a-f]{12}…, now [0-9a-f]{12}…\); no longer withheld on this gateway$/);
  }, 90_000);
});

describe('anti-mimicry', () => {
  it('writes a hold entry for a server that passes for another one, naming both servers and the codes', async () => {
    await g.createServer({ name: 'GitHub', remote: { url: 'https://github-mcp.example.com/mcp' } });
    const lookalike = await g.createServer({ name: 'gіthub', remote: { url: 'https://mcp.mirrorhub.net/mcp' } });
    expect(lookalike.reviewState).toBe('PENDING_REVIEW');
    const entries = await serverEntries(lookalike.id, 'detector:mimicry');
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      ...NO_CALL,
      serverId: lookalike.id,
      gatewayId: null,
      assignmentId: null,
      featureName: null,
      correlationId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      policyActions: [{ ruleId: 'detector:mimicry', ruleName: 'Anti-mimicry', action: 'hold', findings: ['CONFUSABLE_NAME'], alert: true }],
    });
    expect(entries[0].policyActions[0].detail).toBe('server "gіthub" resembles server "GitHub" (CONFUSABLE_NAME); held out of every gateway until an admin approves it');
    expect(await serverEntries(lookalike.id, 'detector:tool_poisoning')).toEqual([]);

    // Renamed so that it resembles nothing, it leaves review by itself: a release entry names who changed it.
    await g.gql(`mutation($id: ID!) { updateServer(id: $id, input: { name: "Mirror Hub" }) { __typename } }`, { id: lookalike.id });
    const released = await serverActions(lookalike.id, 'detector:mimicry', 'release');
    expect(released).toHaveLength(1);
    expect(released[0]).toMatchObject({ ...APPROVAL, serverId: lookalike.id, featureName: null, policyActions: [{ ruleId: 'detector:mimicry', action: 'release', findings: ['CONFUSABLE_NAME'], alert: false }] });
    expect(released[0].policyActions[0].detail).toMatch(/^server "Mirror Hub" no longer resembles another server after a change by api_key:\S+; no longer held out of gateways$/);
  });

  it('withholds an assigned server renamed to mimic another as SERVER_HELD, refusing calls with why, until it is approved', async () => {
    const echo = await g.createServer({ name: 'Echoes', managed: { launch: 'STDIO', ...fixtureCommand('echo-server') } });
    await g.discover(echo.id);
    const { token, gatewayId } = await g.gatewayWith('echoes', echo.id, 'e');
    await g.dataPlaneSnapshot((s) => featureOf(s, 'echoes', 'tools', 'e__echo') !== undefined && featureOf(s, 'echoes', 'tools', 'e__echo')!.withheld === undefined);
    const client = await g.connect('echoes', token);
    expect(await client.callTool({ name: 'e__echo', arguments: { text: 'before' } })).toMatchObject({ content: [{ text: 'before' }] });

    const renamed = await g.gql(`mutation($id: ID!) { updateServer(id: $id, input: { name: "GitHib" }) { ... on UpdateServerSuccess { server { reviewState } } ${ERR} } }`, { id: echo.id });
    expect(renamed.updateServer.server.reviewState).toBe('PENDING_REVIEW');
    expect(await serverEntries(echo.id, 'detector:mimicry')).toHaveLength(1);
    await g.dataPlaneSnapshot((s) => featureOf(s, 'echoes', 'tools', 'e__echo')?.withheld === 'SERVER_HELD');
    const refused = await rpcError(client.callTool({ name: 'e__echo', arguments: { text: 'during' } }));
    expect(refused.code).toBe(-32602);
    expect(refused.data).toMatchObject({ code: 'WITHHELD', reason: 'SERVER_HELD' });
    expect(refused.message).toContain('tool "e__echo" is withheld on gateway "echoes": its server "GitHib" is held pending admin approval as a possible impersonation of another server');
    expect(refused.message).not.toContain('flagged');
    const [refusal] = await gatewayEntries(gatewayId, 'e__echo', 'stage:provisioning');
    expect(refusal).toMatchObject({ policyActions: [{ action: 'refuse', findings: ['WITHHELD', 'SERVER_HELD'], alert: false }] });

    await g.gql(`mutation($id: ID!) { approveServer(id: $id) { __typename } }`, { id: echo.id });
    await g.gql(`mutation($id: ID!) { approveServer(id: $id) { __typename } }`, { id: echo.id });
    const approvals = await serverActions(echo.id, 'detector:mimicry', 'approve');
    expect(approvals).toHaveLength(1);
    expect(approvals[0]).toMatchObject({ ...APPROVAL, serverId: echo.id, featureName: null, policyActions: [{ ruleId: 'detector:mimicry', ruleName: 'Anti-mimicry', action: 'approve', alert: false }] });
    expect(approvals[0].policyActions[0].findings.length).toBeGreaterThan(0);
    expect(approvals[0].policyActions[0].detail).toMatch(/^server "GitHib" approved by api_key:\S+; no longer held out of gateways$/);
    await g.dataPlaneSnapshot((s) => featureOf(s, 'echoes', 'tools', 'e__echo')?.withheld === undefined);
    expect(await client.callTool({ name: 'e__echo', arguments: { text: 'after' } })).toMatchObject({ content: [{ text: 'after' }] });
  }, 60_000);
});
