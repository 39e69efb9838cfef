#!/usr/bin/env node
// `gatehouse` as an installed command (package.json "bin"): runs the prebuilt bundle that
// `npm run build` writes (`npm start` and `npm run gatehouse` build it first). Production
// processes run plain JavaScript: loading the TypeScript sources through tsx costs a data
// plane ~30 MiB of RSS and start-up time (data-plane/README.md, "Memory").
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const bundle = fileURLToPath(new URL('../../node_modules/.cache/gatehouse/dist/main.mjs', import.meta.url));
if (!existsSync(bundle)) {
  process.stderr.write(`gatehouse: ${bundle} is missing; run \`npm run build\` in the Gatehouse checkout first\n`);
  process.exit(1);
}
await import(pathToFileURL(bundle).href);
