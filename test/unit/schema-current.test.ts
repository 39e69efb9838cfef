import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { printControlPlaneSchema } from '../../control-plane/graphql/print-schema.js';

const SCHEMA_FILE = fileURLToPath(new URL('../../schema/schema.graphql', import.meta.url));

describe('schema/schema.graphql', () => {
  it('is the SDL the Pothos schema prints', () => {
    const committed = readFileSync(SCHEMA_FILE, 'utf8');
    expect(committed, 'schema/schema.graphql is out of date: run `npm run codegen` and commit the result').toBe(
      printControlPlaneSchema(),
    );
  });
});
