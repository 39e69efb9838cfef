import { damerauLevenshtein, describeUnusualCharacters, hostParts, nameWords, skeleton, type HostParts } from './confusables.js';

/**
 * Anti-mimicry: does a server's name or URL pass for another server's of the same
 * workspace? A pure function over the candidate and the others; the service decides what
 * a finding does (the server waits for review).
 */

export type MimicryCode =
  /** The names differ only in look-alike characters or separators (`gіthub` with a Cyrillic і, `git-hub`). */
  | 'CONFUSABLE_NAME'
  /** The names are within a small edit distance (`githuh`, `gihtub`). */
  | 'SIMILAR_NAME'
  /** The host names differ only in look-alike characters, in the host or its registrable label. */
  | 'HOMOGLYPH_HOST'
  /** Same registered label under another public suffix (`example.co` for `example.com`). */
  | 'SWAPPED_TLD'
  /** The registrable labels are within a small edit distance, or one extends the other with hyphens (`github-login.com`). */
  | 'LOOKALIKE_HOST'
  /** The host carries the other's registrable domain in its subdomains (`github-com.evil.io`, `github.com.evil.io`). */
  | 'EMBEDDED_DOMAIN';

export interface MimicryFinding {
  readonly code: MimicryCode;
  /** The existing server the candidate resembles. */
  readonly serverId: string;
  readonly serverName: string;
  /** What an admin reads: which field, which server, and why. */
  readonly message: string;
}

export interface MimicryCandidate {
  readonly name: string;
  /** Remote or managed-HTTP URL; null for stdio and workstation servers. */
  readonly url: string | null;
}

export interface ExistingServer extends MimicryCandidate {
  readonly id: string;
}

/**
 * Compares `candidate` with every server in `others` (the candidate itself must not be
 * among them) and returns what makes it look like one of them, at most one finding per
 * field and server, names first.
 */
export function detectMimicry(candidate: MimicryCandidate, others: readonly ExistingServer[]): MimicryFinding[] {
  const findings: MimicryFinding[] = [];
  const words = nameWords(candidate.name);
  const host = candidate.url ? hostParts(candidate.url) : null;
  for (const other of others) {
    const name = compareNames(candidate.name, words, other.name);
    if (name) findings.push({ ...name, serverId: other.id, serverName: other.name });
  }
  if (host) {
    for (const other of others) {
      const otherHost = other.url ? hostParts(other.url) : null;
      const finding = otherHost && compareHosts(host, otherHost, other.name);
      if (finding) findings.push({ ...finding, serverId: other.id, serverName: other.name });
    }
  }
  return findings;
}

type Verdict = { code: MimicryCode; message: string } | null;

/**
 * Largest edit distance still read as "the same name", by length of the shorter name: 2
 * from 8 characters, 1 from 4, none below (short names differ by design). Two edits on a
 * six-letter name already make other products (`GitLab` and `GitHub` are 2 apart).
 */
function distanceLimit(length: number): number {
  if (length >= 8) return 2;
  if (length >= 4) return 1;
  return 0;
}

/** Numbers, and words of up to three letters (`eu`, `dev`, `v2`) tell legitimate siblings apart. */
function isVariantWord(word: string): boolean {
  return /^\d+$/.test(word) || word.length <= 3;
}

/**
 * True when the two word lists differ only in variant words between a common beginning and
 * end: `Server 1` / `Server 2`, `Jira EU` / `Jira US`, `GitHub` / `GitHub 2`.
 */
function differOnlyInVariants(a: readonly string[], b: readonly string[]): boolean {
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const restA = a.slice(start, endA);
  const restB = b.slice(start, endB);
  // Nothing in common at all: the edit distance decides.
  if (start === 0 && endA === a.length && endB === b.length) return false;
  return restA.every(isVariantWord) && restB.every(isVariantWord);
}

function compareNames(name: string, words: readonly string[], otherName: string): Verdict {
  if (name === otherName) return null;
  const otherWords = nameWords(otherName);
  const joined = words.join('');
  const otherJoined = otherWords.join('');
  if (joined.length === 0 || otherJoined.length === 0) return null;
  if (joined === otherJoined) {
    const unusual = describeUnusualCharacters(name);
    const how = unusual.length > 0 ? `look-alike characters ${unusual.join(', ')}` : 'case, spacing or punctuation';
    return { code: 'CONFUSABLE_NAME', message: `name "${name}" is confusable with server "${otherName}": they differ only in ${how}` };
  }
  if (differOnlyInVariants(words, otherWords)) return null;
  const limit = distanceLimit(Math.min(joined.length, otherJoined.length));
  if (limit === 0) return null;
  const distance = damerauLevenshtein(joined, otherJoined, limit);
  if (distance > limit) return null;
  return {
    code: 'SIMILAR_NAME',
    message: `name "${name}" is ${distance} edit${distance === 1 ? '' : 's'} away from server "${otherName}"`,
  };
}

function compareHosts(host: HostParts, other: HostParts, otherName: string): Verdict {
  if (host.host === other.host || host.registrable === other.registrable) return null;
  const what = `host ${host.host} looks like ${other.host} of server "${otherName}"`;
  if (skeleton(host.host) === skeleton(other.host) || (skeleton(host.label) === skeleton(other.label) && host.label !== other.label)) {
    const unusual = describeUnusualCharacters(host.host);
    return { code: 'HOMOGLYPH_HOST', message: `${what}: it differs only in look-alike characters${unusual.length > 0 ? ` ${unusual.join(', ')}` : ''}` };
  }
  if (host.label === other.label) {
    return { code: 'SWAPPED_TLD', message: `${what}: same name ${host.label} under .${host.suffix} instead of .${other.suffix}` };
  }
  const embedded = [`${other.label}.${other.suffix}`, `${other.label}-${other.suffix.replace(/\./g, '-')}`];
  const subdomains = host.subdomains.join('.');
  if (other.label.length >= 3 && embedded.some((e) => subdomains === e || subdomains.endsWith(`.${e}`) || subdomains.startsWith(`${e}.`) || subdomains.includes(`.${e}.`) || host.label === e.replace(/\./g, '-'))) {
    return { code: 'EMBEDDED_DOMAIN', message: `${what}: it carries ${other.registrable} inside another domain (${host.registrable})` };
  }
  const limit = distanceLimit(Math.min(host.label.length, other.label.length));
  if (limit > 0) {
    const distance = damerauLevenshtein(skeleton(host.label), skeleton(other.label), limit);
    if (distance <= limit) {
      return { code: 'LOOKALIKE_HOST', message: `${what}: ${host.registrable} is ${distance} edit${distance === 1 ? '' : 's'} away from ${other.registrable}` };
    }
  }
  if (other.label.length >= 4 && host.label.split('-').includes(other.label)) {
    return { code: 'LOOKALIKE_HOST', message: `${what}: ${host.registrable} extends ${other.registrable} with hyphens` };
  }
  return null;
}
