import { decodeGlobalId } from '../../../control-plane/graphql/global-id.js';
import { ok, roleIds, type TestControlPlane } from '../../helpers/control-plane.js';

/** The things audit entries point at, created through the API: global IDs and database ids. */
export interface AuditWorld {
  readonly gateway: { gid: string; id: string };
  readonly otherGateway: { gid: string; id: string };
  readonly server: { gid: string; id: string };
  readonly otherServer: { gid: string; id: string };
  readonly host: { gid: string; id: string };
  readonly connection: { gid: string; id: string };
  readonly team: { gid: string; id: string };
  /** Alice and Bob are in the team; Carol is not. */
  readonly alice: { gid: string; id: string };
  readonly bob: { gid: string; id: string };
  readonly carol: { gid: string; id: string };
}

const raw = (gid: string) => ({ gid, id: decodeGlobalId(gid).id });

async function mutate(cp: TestControlPlane, field: string, query: string, variables: Record<string, unknown>, key?: string): Promise<any> {
  const res = ok(await cp.gql(query, variables, key));
  const payload = res[field];
  if (!String(payload.__typename).endsWith('Success')) throw new Error(`${field}: ${JSON.stringify(payload)}`);
  return payload;
}

/** Creates two gateways, two servers, a host with a connection, a team and three users in the key's workspace. */
export async function createAuditWorld(cp: TestControlPlane, key = cp.ownerKey, tag = 'w'): Promise<AuditWorld> {
  const server = async (name: string) =>
    raw(
      (
        await mutate(
          cp,
          'createServer',
          `mutation($input: CreateServerInput!) { createServer(input: $input) { __typename ... on CreateServerSuccess { server { id } } ... on Error { message } } }`,
          { input: { name, remote: { url: `https://${name}.example.com/mcp` } } },
          key,
        )
      ).server.id,
    );
  const gateway = async (name: string) =>
    raw(
      (
        await mutate(
          cp,
          'createGateway',
          `mutation($input: CreateGatewayInput!) { createGateway(input: $input) { __typename ... on CreateGatewaySuccess { gateway { id } } ... on Error { message } } }`,
          { input: { name } },
          key,
        )
      ).gateway.id,
    );
  const gw = await gateway(`${tag}-gw-main`);
  const otherGw = await gateway(`${tag}-gw-other`);
  const srv = await server(`${tag}-srv-main`);
  const otherSrv = await server(`${tag}-srv-other`);
  const host = raw(
    (
      await mutate(
        cp,
        'createHost',
        `mutation($input: CreateHostInput!) { createHost(input: $input) { __typename ... on CreateHostSuccess { host { id } } ... on Error { message } } }`,
        { input: { name: `${tag}-agent` } },
        key,
      )
    ).host.id,
  );
  const connection = raw(
    (
      await mutate(
        cp,
        'createConnection',
        `mutation($input: CreateConnectionInput!) { createConnection(input: $input) { __typename ... on CreateConnectionSuccess { connection { id } } ... on Error { message } } }`,
        { input: { hostId: host.gid, gatewayId: gw.gid, name: `${tag}-conn` } },
        key,
      )
    ).connection.id,
  );
  const team = raw(
    (
      await mutate(
        cp,
        'createTeam',
        `mutation($input: CreateTeamInput!) { createTeam(input: $input) { __typename ... on CreateTeamSuccess { team { id } } ... on Error { message } } }`,
        { input: { name: `${tag}-team` } },
        key,
      )
    ).team.id,
  );
  const roles = await roleIds(cp, key);
  const user = async (name: string, teamIds: string[]) =>
    raw(
      (
        await mutate(
          cp,
          'inviteUser',
          `mutation($input: InviteUserInput!) { inviteUser(input: $input) { __typename ... on InviteUserSuccess { user { id } } ... on Error { message } } }`,
          { input: { email: `${name}-${tag}@example.com`, roleId: roles.Member, teamIds } },
          key,
        )
      ).user.id,
    );
  return {
    gateway: gw,
    otherGateway: otherGw,
    server: srv,
    otherServer: otherSrv,
    host,
    connection,
    team,
    alice: await user('alice', [team.gid]),
    bob: await user('bob', [team.gid]),
    carol: await user('carol', []),
  };
}
