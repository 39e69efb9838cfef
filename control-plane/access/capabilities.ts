/**
 * The fixed catalog of capabilities. A role is a set of these; every GraphQL field and
 * mutation names the capability it needs. Machine names are stable API: never rename one,
 * add a new one instead.
 */
export const CAPABILITY_AREAS = [
  'IDENTITIES',
  'SERVERS',
  'GATEWAYS',
  'HOSTS',
  'PEOPLE',
  'WORKSPACE_SETTINGS',
  'LOGGING',
  'ALERTING',
  'REPORTING',
  'INTEGRATIONS',
] as const;
export type CapabilityArea = (typeof CAPABILITY_AREAS)[number];

export interface CapabilityDefinition {
  readonly name: string;
  readonly area: CapabilityArea;
  readonly description: string;
  /** True for capabilities that only read. The auditor role is built from these. */
  readonly readOnly: boolean;
}

const def = (name: string, area: CapabilityArea, readOnly: boolean, description: string): CapabilityDefinition =>
  Object.freeze({ name, area, readOnly, description });

export const CAPABILITY_CATALOG: readonly CapabilityDefinition[] = Object.freeze([
  def('identities.view', 'IDENTITIES', true, 'See shared and personal upstream identities (never their secrets).'),
  def('identities.manage', 'IDENTITIES', false, 'Create, rotate and delete shared service identities for upstream servers.'),
  def('identities.manage_own', 'IDENTITIES', false, 'Connect and remove your own personal identities for upstream servers.'),

  def('servers.view', 'SERVERS', true, 'See server definitions, containers and their discovered features.'),
  def('servers.manage', 'SERVERS', false, 'Add, edit, disable and delete servers and containers, and run discovery.'),

  def('gateways.view', 'GATEWAYS', true, 'See every gateway, its assignments and provisioning.'),
  def('gateways.manage', 'GATEWAYS', false, 'Create, rename, archive and restore gateways and assign servers with their identity scheme.'),
  def('gateways.manage_provisioning', 'GATEWAYS', false, 'Choose which tools, prompts and resources each assignment exposes, and approve pins.'),
  def('gateways.manage_rules', 'GATEWAYS', false, 'Create, order and test content rules on gateways.'),
  def('gateways.manage_access', 'GATEWAYS', false, 'Provision gateways to teams and decide gateway access requests.'),

  def('hosts.view', 'HOSTS', true, 'See apps and agents, their connections and token metadata.'),
  def('hosts.manage', 'HOSTS', false, 'Create hosts and connections and mint or revoke API access tokens.'),
  def('hosts.disable', 'HOSTS', false, 'Disable and re-enable hosts and connections (kill switch).'),

  def('people.view', 'PEOPLE', true, 'See users, roles, capabilities and teams.'),
  def('people.manage', 'PEOPLE', false, 'Invite, activate, deactivate and reactivate users and change their role.'),
  def('people.manage_teams', 'PEOPLE', false, 'Create, rename, disable and delete teams and change their members.'),
  def('people.manage_roles', 'PEOPLE', false, 'Create, duplicate, edit and delete custom roles.'),

  def('workspace.view_settings', 'WORKSPACE_SETTINGS', true, 'See workspace settings, admin API keys and data planes.'),
  def('workspace.manage_settings', 'WORKSPACE_SETTINGS', false, 'Change workspace settings and the workspace kill switch.'),
  def('workspace.manage_api_keys', 'WORKSPACE_SETTINGS', false, 'Create and revoke admin API keys (never for a role stronger than your own).'),
  def('workspace.manage_data_planes', 'WORKSPACE_SETTINGS', false, 'Register data planes and rotate their tokens.'),

  def('logging.view', 'LOGGING', true, 'See audit logs and the workspace change log (metadata, not bodies).'),
  def('logging.view_bodies', 'LOGGING', true, 'See request and response bodies and headers in audit logs.'),
  def('logging.export', 'LOGGING', true, 'Download log exports as CSV or JSON.'),

  def('alerting.view', 'ALERTING', true, 'See alerts and subscribe to them.'),
  def('alerting.manage', 'ALERTING', false, 'Acknowledge and resolve alerts.'),

  def('reporting.view', 'REPORTING', true, 'See usage and security reports.'),

  def('integrations.view', 'INTEGRATIONS', true, 'See log exporters, rule engines and SCIM settings.'),
  def('integrations.manage', 'INTEGRATIONS', false, 'Configure log exporters, custom rule engines, SSO and SCIM.'),
]);

export type Capability = string;

const BY_NAME: ReadonlyMap<string, CapabilityDefinition> = new Map(CAPABILITY_CATALOG.map((c) => [c.name, c]));

export function findCapability(name: string): CapabilityDefinition | undefined {
  return BY_NAME.get(name);
}

export const ALL_CAPABILITIES: readonly string[] = Object.freeze(CAPABILITY_CATALOG.map((c) => c.name));

export type BuiltinRole = 'owner' | 'admin' | 'member' | 'auditor';

export interface BuiltinRoleDefinition {
  readonly key: BuiltinRole;
  readonly name: string;
  readonly description: string;
  readonly capabilities: readonly string[];
}

/**
 * The roles every workspace starts with. They cannot be edited or deleted; duplicate one
 * to make a custom variant.
 */
export const BUILTIN_ROLES: readonly BuiltinRoleDefinition[] = Object.freeze([
  {
    key: 'owner',
    name: 'Owner',
    description: 'Every capability, including workspace settings.',
    capabilities: ALL_CAPABILITIES,
  },
  {
    key: 'admin',
    name: 'Admin',
    description: 'Runs servers, gateways, hosts, people and rules; cannot change workspace settings or the workspace kill switch.',
    capabilities: ALL_CAPABILITIES.filter((c) => c !== 'workspace.manage_settings'),
  },
  {
    key: 'member',
    name: 'Member',
    description: 'Uses the gateways provisioned to their teams and manages their own identities.',
    capabilities: ['servers.view', 'identities.manage_own'],
  },
  {
    key: 'auditor',
    name: 'Read-only auditor',
    description: 'Reads logs, reports and alerts, and sees configuration; changes nothing.',
    capabilities: CAPABILITY_CATALOG.filter((c) => c.readOnly && c.name !== 'logging.view_bodies').map((c) => c.name),
  },
]);
