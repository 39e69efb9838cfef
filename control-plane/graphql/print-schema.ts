import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { lexicographicSortSchema, printSchema } from 'graphql';
import { getSchema } from './schema.js';

/** The SDL committed at `schema/schema.graphql`; a test fails when it drifts from the code. */
export function printControlPlaneSchema(): string {
  return `# Generated from the Pothos schema by \`npm run codegen\`. Do not edit.\n\n${printSchema(lexicographicSortSchema(getSchema()))}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const target = fileURLToPath(new URL('../../schema/schema.graphql', import.meta.url));
  writeFileSync(target, printControlPlaneSchema());
  console.log(`wrote ${target}`);
}
