import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Kind, parse, validate, type DefinitionNode, type DocumentNode } from 'graphql';
import { describe, expect, it } from 'vitest';
import { loadControlPlaneConfig } from '../../control-plane/config.js';
import { operationLimitsRule } from '../../control-plane/graphql/operation-limits.js';
import { getSchema } from '../../control-plane/graphql/schema.js';

const OPERATIONS = fileURLToPath(new URL('../../sdk/operations/', import.meta.url));

describe('SDK operations', () => {
  it('each pass the server’s default depth and cost limits, so tooling never hits them with stock operations', () => {
    const config = loadControlPlaneConfig({});
    const definitions: DefinitionNode[] = readdirSync(OPERATIONS)
      .filter((f) => f.endsWith('.graphql'))
      .flatMap((f) => parse(readFileSync(OPERATIONS + f, 'utf8')).definitions);
    const fragments = definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION);
    const operations = definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
    expect(operations.length).toBeGreaterThan(50);
    const rule = operationLimitsRule({ maxDepth: config.maxQueryDepth, maxCost: config.maxQueryCost });
    for (const operation of operations) {
      const document: DocumentNode = { kind: Kind.DOCUMENT, definitions: [operation, ...fragments] };
      const errors = validate(getSchema(), document, [rule]);
      expect(errors.map((e) => `${operation.name?.value}: ${e.message}`)).toEqual([]);
    }
  });
});
