/**
 * The audit scrubber on the data plane's hot path: CPU per body for `jsonText` (what
 * every body a `full` gateway audits goes through), against what it did before the
 * raw-text pre-check (JSON.parse, walk, serialize when something was scrubbed), on bodies
 * shaped like MCP traffic, with and without a secret-looking key.
 *
 *   npx tsx test/bench/audit-scrub.ts [iterations=20000] [rounds=5]
 *
 * Each row alternates the two paths `rounds` times and shows the medians (the machine is shared).
 */
import { DEFAULT_SECRET_KEYS, capText, createScrubber, secretKeyPrecheck } from '../../schema/audit/scrub.js';

const ITERATIONS = Number(process.argv[2] ?? 20_000);
const ROUNDS = Number(process.argv[3] ?? 5);
const MAX_BYTES = 64 * 1024;
// The data plane's scrubber: the default list plus the session id header.
const scrubber = createScrubber({ extraKeys: ['mcp-session-id'] });
const mayHold = secretKeyPrecheck([...DEFAULT_SECRET_KEYS, 'mcp-session-id'])!;

/** What `jsonText` did before the pre-check: parse, walk, serialize again only if something changed. */
function parseAndWalk(text: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return capText(text, MAX_BYTES).text;
  }
  const scrubbed = scrubber.value(parsed);
  return capText(scrubbed === parsed ? text : JSON.stringify(scrubbed), MAX_BYTES).text;
}

const lorem = 'The quick brown fox jumps over the lazy dog while the gateway audits every call. ';
const bodies: Record<string, string> = {
  'tools/call request': JSON.stringify({ jsonrpc: '2.0', id: 17, method: 'tools/call', params: { name: 'github__search_issues', arguments: { query: 'label:bug is:open', limit: 20 } } }),
  // `progressToken` ends in "token": the scrubber's key rule treats it as a secret.
  'tools/call request with _meta.progressToken': JSON.stringify({ jsonrpc: '2.0', id: 17, method: 'tools/call', params: { name: 'github__search_issues', arguments: { query: 'label:bug is:open', limit: 20 }, _meta: { progressToken: 3 } } }),
  'tools/call result, 2 KB text': JSON.stringify({ jsonrpc: '2.0', id: 17, result: { content: [{ type: 'text', text: lorem.repeat(25) }], isError: false } }),
  'tools/call result, 20 KB structured': JSON.stringify({
    jsonrpc: '2.0',
    id: 18,
    result: {
      content: [{ type: 'text', text: 'found 60 issues' }],
      structuredContent: {
        issues: Array.from({ length: 60 }, (_, i) => ({ number: 1000 + i, title: `Issue ${i}: ${lorem.slice(0, 60)}`, state: 'open', labels: [{ name: 'bug', color: 'd73a4a' }], user: { login: `user${i}`, id: 4200 + i, site_admin: false }, comments: i % 7, created_at: '2026-01-02T03:04:05Z' })),
      },
    },
  }),
  'tools/call request with an api_key argument': JSON.stringify({ jsonrpc: '2.0', id: 19, method: 'tools/call', params: { name: 'weather__forecast', arguments: { city: 'Paris', api_key: 'sk-live-0123456789abcdef' } } }),
};

for (const [name, text] of Object.entries(bodies)) {
  if (scrubber.jsonText(text, MAX_BYTES).text !== parseAndWalk(text)) throw new Error(`the two paths disagree on "${name}"`);
}

function cpuPerCall(run: (text: string) => unknown, text: string): number {
  for (let i = 0; i < 2000; i++) run(text);
  const before = process.cpuUsage();
  for (let i = 0; i < ITERATIONS; i++) run(text);
  const spent = process.cpuUsage(before);
  return (spent.user + spent.system) / ITERATIONS;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

console.log(`\naudit body scrubbing, ${ITERATIONS} calls × ${ROUNDS} rounds per row, median CPU µs per body (process.cpuUsage)\n`);
console.log('| body | bytes | may hold a secret key | parse + walk µs | pre-check first µs | speed-up |');
console.log('|---|---:|---|---:|---:|---:|');
for (const [name, text] of Object.entries(bodies)) {
  const befores: number[] = [];
  const afters: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    befores.push(cpuPerCall(parseAndWalk, text));
    afters.push(cpuPerCall((t) => scrubber.jsonText(t, MAX_BYTES), text));
  }
  const before = median(befores);
  const after = median(afters);
  console.log(`| ${name} | ${Buffer.byteLength(text)} | ${mayHold(text) ? 'yes' : 'no'} | ${before.toFixed(2)} | ${after.toFixed(2)} | ${(before / after).toFixed(1)}x |`);
}
