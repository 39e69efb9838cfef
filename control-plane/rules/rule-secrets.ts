/**
 * Vault contexts of the rules domain's secrets. A context is bound into the ciphertext
 * at rest and becomes the `aad` once re-sealed for data planes, so a value sealed for one
 * place never opens in another.
 */

/** The workspace's salt of the `hash` rule action. */
export function ruleHashSaltContext(workspaceId: string): string {
  return `workspace:${workspaceId}:rule-hash-salt`;
}

/** One header value of a rule engine; header names are case-insensitive, so lowercased. */
export function ruleEngineHeaderContext(engineId: string, headerName: string): string {
  return `rule-engine:${engineId}:header:${headerName.toLowerCase()}`;
}

/** The HMAC key a rule engine's envelopes are signed with. */
export function ruleEngineSigningContext(engineId: string): string {
  return `rule-engine:${engineId}:signing-secret`;
}
