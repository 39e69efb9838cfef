/**
 * Writes the labelled corpora under test/corpus/ deterministically (seeded PRNG):
 *
 *   npx tsx test/corpus/generate.ts
 *
 * pii/tuned.jsonl and injection/tuned.jsonl were used while tuning the recognizers and the
 * detector. pii/held-out.jsonl and injection/held-out.jsonl come from separate templates,
 * vocabularies and seeds, and were only evaluated, never tuned against.
 *
 * Labelling decisions (also the recognizers' contract):
 * - Git SHAs, sha256/sha512 digests, UUIDs and base64 blobs are NOT secrets on their own;
 *   next to a credential word (key, token, secret, password, bearer, auth…) they are
 *   HIGH_ENTROPY_SECRET, because that is how real keys and session tokens look.
 * - Numbers shaped like phones but glued to letters or identifiers (ORD-5551234567),
 *   dates, times, ISBNs, versions, unix timestamps and prices are not PII.
 * - Known test card numbers that pass Luhn (4111 1111 1111 1111) are cards; card-shaped
 *   numbers that fail Luhn are not.
 * - Unformatted 9-digit and 10-digit numbers count as an SSN or phone only after a context
 *   word ("ssn", "phone", …); formatted ones count without.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildInjectionCorpus } from './injection/templates.js';
import { buildPiiCorpus } from './pii/templates.js';

const ROOT = fileURLToPath(new URL('./', import.meta.url));

function writeJsonl(path: string, rows: readonly unknown[]): void {
  writeFileSync(path, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

mkdirSync(`${ROOT}pii`, { recursive: true });
mkdirSync(`${ROOT}injection`, { recursive: true });
const pii = buildPiiCorpus();
writeJsonl(`${ROOT}pii/tuned.jsonl`, pii.tuned);
writeJsonl(`${ROOT}pii/held-out.jsonl`, pii.heldOut);
const injection = buildInjectionCorpus();
writeJsonl(`${ROOT}injection/tuned.jsonl`, injection.tuned);
writeJsonl(`${ROOT}injection/held-out.jsonl`, injection.heldOut);
console.log(
  `pii: ${pii.tuned.length} tuned + ${pii.heldOut.length} held-out; injection: ${injection.tuned.length} tuned + ${injection.heldOut.length} held-out`,
);
