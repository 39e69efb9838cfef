import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { generate } from '@graphql-codegen/cli';
import { Kind, buildSchema, parse, visit, type GraphQLObjectType } from 'graphql';
import { describe, expect, it } from 'vitest';
import config from '../../codegen.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const GENERATED = 'sdk/generated/graphql.ts';
const OPERATIONS_DIR = `${ROOT}sdk/operations`;

describe('sdk/generated/graphql.ts', () => {
  it('is what codegen.ts generates from the committed schema and sdk/operations', async () => {
    const outputs: { filename: string; content: string }[] = await generate({ ...config, cwd: ROOT, silent: true }, false);
    const output = outputs.find((o) => o.filename.endsWith(GENERATED));
    expect(output, `codegen.ts no longer generates ${GENERATED}`).toBeDefined();
    expect(readFileSync(`${ROOT}${GENERATED}`, 'utf8'), `${GENERATED} is out of date: run \`npm run codegen\` and commit the result`).toBe(
      output!.content,
    );
  }, 60_000);
});

describe('sdk/operations', () => {
  it('select every root field of the schema', () => {
    const schema = buildSchema(readFileSync(`${ROOT}schema/schema.graphql`, 'utf8'));
    const documents = readdirSync(OPERATIONS_DIR)
      .filter((f) => f.endsWith('.graphql'))
      .map((f) => parse(readFileSync(`${OPERATIONS_DIR}/${f}`, 'utf8')));
    const roots: Record<'query' | 'mutation' | 'subscription', GraphQLObjectType | null | undefined> = {
      query: schema.getQueryType(),
      mutation: schema.getMutationType(),
      subscription: schema.getSubscriptionType(),
    };
    const selected = new Set<string>();
    for (const document of documents) {
      for (const definition of document.definitions) {
        if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
        for (const selection of definition.selectionSet.selections) {
          if (selection.kind === Kind.FIELD) selected.add(`${definition.operation}.${selection.name.value}`);
        }
      }
    }
    const missing = Object.entries(roots).flatMap(([operation, type]) =>
      Object.keys(type?.getFields() ?? {})
        .map((field) => `${operation}.${field}`)
        .filter((key) => !selected.has(key)),
    );
    expect(missing, 'add an operation for each of these to sdk/operations/*.graphql, then run `npm run codegen`').toEqual([]);
    // Guard against the check passing vacuously.
    expect(selected.size).toBeGreaterThan(30);
  });

  it('has a named operation per definition and spreads only fragments that exist', () => {
    const documents = readdirSync(OPERATIONS_DIR).map((f) => parse(readFileSync(`${OPERATIONS_DIR}/${f}`, 'utf8')));
    const fragments = new Set<string>();
    const spreads = new Set<string>();
    for (const document of documents) {
      visit(document, {
        FragmentDefinition: (node) => void fragments.add(node.name.value),
        FragmentSpread: (node) => void spreads.add(node.name.value),
        OperationDefinition: (node) => void expect(node.name?.value, 'every operation needs a name').toBeTruthy(),
      });
    }
    for (const name of ['RoleFields', 'TeamFields', 'UserFields', 'ApiKeyFields', 'WorkspaceFields']) expect(fragments).toContain(name);
    expect([...spreads].filter((s) => !fragments.has(s))).toEqual([]);
  });
});
