import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeGlobalId } from '../../../control-plane/graphql/global-id.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { keyWithRole, ok, roleIds, startTestControlPlane, type TestControlPlane } from '../../helpers/control-plane.js';

let tdb: TestDatabase;
let cp: TestControlPlane;
let memberKey: string;
let auditorKey: string;
let adminKey: string;
let roles: Record<string, string>;

beforeAll(async () => {
  tdb = await createTestDatabase();
  cp = await startTestControlPlane(tdb.database);
  [memberKey, auditorKey, adminKey] = [await keyWithRole(cp, 'Member'), await keyWithRole(cp, 'Read-only auditor'), await keyWithRole(cp, 'Admin')];
  roles = await roleIds(cp);
});
afterAll(async () => {
  await cp?.close();
  await tdb?.drop();
});

interface Probe {
  readonly capability: string;
  /** A mutation (returns a payload union) or a query (fails with a GraphQL error). */
  readonly kind: 'mutation' | 'query';
  readonly operation: string;
  readonly field: string;
  variables?(): Record<string, unknown>;
}

const mutationProbe = (capability: string, field: string, call: string, variables?: () => Record<string, unknown>): Probe => ({
  capability,
  kind: 'mutation',
  field,
  operation: `mutation Probe${variables ? '($a: ID!)' : ''} { ${field}${call} { __typename ... on ForbiddenError { code capability message } } }`,
  ...(variables && { variables }),
});
const queryProbe = (capability: string, field: string, selection: string): Probe => ({
  capability,
  kind: 'query',
  field,
  operation: `query Probe { ${field} ${selection} }`,
});

/** One or more operations per capability area that has GraphQL operations, each needing a capability the member role lacks. */
const AREA_PROBES: Record<string, Probe[]> = {
  PEOPLE: [
    queryProbe('people.view', 'users', '{ edges { node { id } } }'),
    mutationProbe('people.manage', 'inviteUser', '(input: { email: "x@probe.test", roleId: $a })', () => ({ a: roles.Member })),
    mutationProbe('people.manage_teams', 'createTeam', '(input: { name: "probe" })'),
    mutationProbe('people.manage_roles', 'createRole', '(input: { name: "probe", capabilities: [] })'),
  ],
  WORKSPACE_SETTINGS: [
    queryProbe('workspace.view_settings', 'apiKeys', '{ edges { node { id } } }'),
    mutationProbe('workspace.manage_settings', 'updateWorkspaceSettings', '(input: { name: "probe" })'),
    mutationProbe('workspace.manage_settings', 'updateAuditSettings', '(input: { retentionDays: 30 })'),
    mutationProbe('workspace.manage_api_keys', 'createApiKey', '(input: { name: "probe", roleId: $a })', () => ({ a: roles.Member })),
  ],
  LOGGING: [
    queryProbe('logging.view', 'workspaceEvents', '{ edges { node { type } } }'),
    queryProbe('logging.view', 'auditLogs', '{ edges { node { id } } }'),
    queryProbe('logging.export', 'auditExportUrl', '(format: CSV) { url }'),
  ],
  REPORTING: [queryProbe('reporting.view', 'auditReport', '{ from }')],
  SERVERS: [
    mutationProbe('servers.manage', 'createServer', '(input: { name: "probe", remote: { url: "https://mcp.example.com/mcp" } })'),
    mutationProbe('workspace.manage_settings', 'resealSecrets', ''),
  ],
  GATEWAYS: [
    queryProbe('gateways.view', 'gateways', '{ edges { node { id } } }'),
    mutationProbe('gateways.manage', 'createGateway', '(input: { name: "probe" })'),
    mutationProbe('gateways.manage_access', 'denyGatewayAccessRequest', '(id: $a)', () => ({ a: encodeGlobalId('GatewayAccessRequest', randomUUID()) })),
    mutationProbe('gateways.manage_rules', 'createRuleFromTemplate', '(gatewayId: $a, templateKey: "us-ssn")', () => ({ a: encodeGlobalId('Gateway', randomUUID()) })),
  ],
  INTEGRATIONS: [
    queryProbe('integrations.view', 'ruleEngines', '{ id }'),
    mutationProbe('integrations.manage', 'createRuleEngine', '(input: { name: "probe", kind: WEBHOOK, url: "https://93.184.216.34/" })'),
    queryProbe('integrations.view', 'logExporters', '{ edges { node { id } } }'),
    mutationProbe('integrations.manage', 'createLogExporter', '(input: { name: "probe", endpoint: "http://127.0.0.1:9/v1/logs" })'),
  ],
  IDENTITIES: [
    queryProbe('identities.view', 'identities', '{ edges { node { id } } }'),
    // The capability is checked before the identity is looked up, so any well-formed ID probes it.
    mutationProbe('identities.manage', 'setIdentityDisabled', '(id: $a, disabled: true)', () => ({ a: encodeGlobalId('Identity', randomUUID()) })),
  ],
  HOSTS: [
    queryProbe('hosts.view', 'hosts', '{ edges { node { id } } }'),
    mutationProbe('hosts.manage', 'createHost', '(input: { name: "probe" })'),
  ],
  ALERTING: [
    queryProbe('alerting.view', 'alerts', '{ edges { node { id } } }'),
    // The capability is checked before the alert is looked up, so any well-formed ID probes it.
    mutationProbe('alerting.manage', 'acknowledgeAlert', '(id: $a)', () => ({ a: encodeGlobalId('Alert', randomUUID()) })),
  ],
};

async function expectRefused(key: string, probe: Probe) {
  const res = await cp.gql(probe.operation, probe.variables?.() ?? {}, key);
  if (probe.kind === 'mutation') {
    expect(res.errors).toBeUndefined();
    expect(res.data[probe.field]).toMatchObject({ __typename: 'ForbiddenError', code: 'FORBIDDEN', capability: probe.capability });
    expect(res.data[probe.field].message).toContain(probe.capability);
  } else {
    expect(res.data).toBeNull();
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'FORBIDDEN', capability: probe.capability });
  }
}

describe('a member key is refused what its role lacks', () => {
  for (const [area, probes] of Object.entries(AREA_PROBES)) {
    it(`area ${area}`, async () => {
      for (const probe of probes) await expectRefused(memberKey, probe);
    });
  }

  it('and the refusals wrote nothing', async () => {
    const users = ok(await cp.gql(`{ users(filter: { search: "probe.test" }) { edges { node { id } } } teams { edges { node { name } } } }`));
    expect(users.users.edges).toEqual([]);
    expect(users.teams.edges.map((e: any) => e.node.name)).not.toContain('probe');
    expect(Object.keys(await roleIds(cp))).not.toContain('probe');
    expect(ok(await cp.gql(`{ workspace { name } }`)).workspace.name).not.toBe('probe');
  });

  it('while the same operations succeed for the owner', async () => {
    for (const probes of Object.values(AREA_PROBES)) {
      for (const probe of probes.filter((p) => p.kind === 'query')) {
        const res = await cp.gql(probe.operation);
        expect(res.errors).toBeUndefined();
      }
    }
  });

  it('a member still reads its own viewer and the capability catalog', async () => {
    const res = ok(await cp.gql(`{ viewer { capabilities workspace { name } } capabilities { name } }`, {}, memberKey));
    expect(res.viewer.capabilities).toEqual(['identities.manage_own', 'servers.view']);
    expect(res.capabilities.length).toBeGreaterThan(20);
  });
});

describe('the read-only auditor', () => {
  it('reads people, roles, teams, keys and the change log', async () => {
    const res = await cp.gql(
      `{ users { edges { node { email role { name } teams { edges { node { name } } } } } }
         roles { edges { node { name capabilities { name } } } }
         teams { edges { node { name } } }
         apiKeys { edges { node { name prefix } } }
         workspaceEvents(first: 5) { edges { node { type actor } } }
         workspace { name dateFormat } }`,
      {},
      auditorKey,
    );
    expect(res.errors).toBeUndefined();
    expect(res.data.roles.edges.length).toBeGreaterThanOrEqual(4);
    expect(res.data.workspaceEvents.edges[0].node.type).toBe('api_key.created');
  });

  it('changes nothing', async () => {
    const mutations = [
      mutationProbe('people.manage_roles', 'createRole', '(input: { name: "audit", capabilities: [] })'),
      mutationProbe('people.manage_teams', 'createTeam', '(input: { name: "audit" })'),
      mutationProbe('people.manage', 'inviteUser', '(input: { email: "a@audit.test", roleId: $a })', () => ({ a: roles.Member })),
      mutationProbe('workspace.manage_settings', 'updateWorkspaceSettings', '(input: { timeFormat: H12 })'),
      mutationProbe('workspace.manage_api_keys', 'createApiKey', '(input: { name: "audit", roleId: $a })', () => ({ a: roles.Member })),
    ];
    for (const probe of mutations) await expectRefused(auditorKey, probe);
  });

  it('cannot see bodies: logging.view_bodies is a separate capability it lacks', async () => {
    const res = ok(await cp.gql(`{ viewer { capabilities } }`, {}, auditorKey));
    expect(res.viewer.capabilities).toContain('logging.view');
    expect(res.viewer.capabilities).not.toContain('logging.view_bodies');
  });
});

describe('privilege escalation', () => {
  it('an admin cannot mint an owner key, grant a capability it lacks, or promote someone to owner', async () => {
    const key = ok(
      await cp.gql(`mutation($a: ID!) { createApiKey(input: { name: "esc", roleId: $a }) { __typename ... on ForbiddenError { capability } } }`, { a: roles.Owner }, adminKey),
    ).createApiKey;
    expect(key).toEqual({ __typename: 'ForbiddenError', capability: 'workspace.manage_settings' });

    const role = ok(
      await cp.gql(`mutation { createRole(input: { name: "esc", capabilities: ["workspace.manage_settings"] }) { __typename ... on ForbiddenError { capability } } }`, {}, adminKey),
    ).createRole;
    expect(role).toEqual({ __typename: 'ForbiddenError', capability: 'workspace.manage_settings' });

    const user = ok(
      await cp.gql(`mutation($a: ID!) { inviteUser(input: { email: "esc@example.com", roleId: $a }) { __typename ... on ForbiddenError { capability } } }`, { a: roles.Owner }, adminKey),
    ).inviteUser;
    expect(user).toEqual({ __typename: 'ForbiddenError', capability: 'workspace.manage_settings' });
  });

  it('an admin can do what its role allows', async () => {
    const res = ok(
      await cp.gql(`mutation($a: ID!) { inviteUser(input: { email: "fine@example.com", roleId: $a }) { __typename } }`, { a: roles.Member }, adminKey),
    );
    expect(res.inviteUser.__typename).toBe('InviteUserSuccess');
  });
});
