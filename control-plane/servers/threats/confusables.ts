import { domainToUnicode } from 'node:url';

/**
 * Look-alike text: a compact confusables skeleton (in the spirit of Unicode TS #39, for
 * the homoglyphs that matter in server names and host names), Damerau-Levenshtein
 * distance, and the registrable part of a host name.
 *
 * The map covers Cyrillic and Greek letters that render like Latin ones, fullwidth and
 * mathematical forms (through NFKC), accents (stripped), the digits 0 and 1, `|`, capital
 * `I` (which reads as `l` in most sans-serif fonts), and the pairs `rn` → `m`, `vv` → `w`.
 * It is not the full UTS #39 table: it aims at names an admin reads in a list.
 */

/** Single characters → the Latin letter they pass for. Keys are matched before lowercasing. */
const HOMOGLYPHS: Readonly<Record<string, string>> = Object.freeze({
  // Cyrillic, lower and upper case.
  а: 'a', А: 'a', в: 'b', В: 'b', ь: 'b', Ь: 'b', с: 'c', С: 'c', ԁ: 'd', е: 'e', Е: 'e', ё: 'e', Ё: 'e',
  һ: 'h', Һ: 'h', н: 'h', Н: 'h', і: 'i', І: 'l', ї: 'i', Ї: 'l', ј: 'j', Ј: 'j', к: 'k', К: 'k', ӏ: 'l', Ӏ: 'l',
  м: 'm', М: 'm', о: 'o', О: 'o', р: 'p', Р: 'p', ԛ: 'q', Ԛ: 'q', г: 'r', ѕ: 's', Ѕ: 's', т: 't', Т: 't',
  у: 'y', У: 'y', ү: 'y', Ү: 'y', ԝ: 'w', Ԝ: 'w', х: 'x', Х: 'x', п: 'n', и: 'u', ц: 'u', з: '3', З: '3',
  // Greek, lower and upper case.
  α: 'a', Α: 'a', β: 'b', Β: 'b', ϲ: 'c', Ϲ: 'c', ε: 'e', Ε: 'e', η: 'n', Η: 'h', ι: 'i', Ι: 'l', κ: 'k', Κ: 'k',
  Μ: 'm', ν: 'v', Ν: 'n', ο: 'o', Ο: 'o', ρ: 'p', Ρ: 'p', τ: 't', Τ: 't', υ: 'u', Υ: 'y', χ: 'x', Χ: 'x',
  γ: 'y', ω: 'w', μ: 'u', ζ: 'z', Ζ: 'z', ϳ: 'j',
  // Latin look-alikes and digits.
  I: 'l', '|': 'l', '1': 'l', '0': 'o', ı: 'i', ɩ: 'i', ɡ: 'g', ſ: 'f', ꞵ: 'b',
});

const PAIRS: readonly [RegExp, string][] = [
  [/rn/g, 'm'],
  [/vv/g, 'w'],
];

const MARKS = /\p{M}+/gu;
/** Characters that separate words in a name: whitespace, punctuation, symbols. */
const SEPARATORS = /[\s\p{P}\p{S}]+/u;

/**
 * The confusables skeleton of `text`: NFKC, accents stripped, each homoglyph replaced by
 * the Latin letter it passes for, lower case, then `rn` → `m` and `vv` → `w`. Two strings
 * with the same skeleton look alike. Separators are kept (see {@link nameSkeleton}).
 */
export function skeleton(text: string): string {
  const decomposed = text.normalize('NFKC').normalize('NFD').replace(MARKS, '');
  let out = '';
  for (const char of decomposed) out += HOMOGLYPHS[char] ?? char.toLowerCase();
  for (const [pattern, replacement] of PAIRS) out = out.replace(pattern, replacement);
  return out;
}

/** The skeleton of a display name split into words; `GitHub-MCP` and `github mcp` give the same words. */
export function nameWords(name: string): string[] {
  // Map homoglyphs before splitting: `|` is a homoglyph of `l`, not a separator, in names.
  return skeleton(name)
    .split(SEPARATORS)
    .filter((w) => w.length > 0);
}

/** Non-ASCII characters of `text`, each as `і (U+0456)`, for messages. */
export function describeUnusualCharacters(text: string): string[] {
  const seen = new Set<string>();
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (code > 0x7e || code < 0x20) seen.add(`${JSON.stringify(char).slice(1, -1)} (U+${code.toString(16).toUpperCase().padStart(4, '0')})`);
  }
  return [...seen];
}

/**
 * Damerau-Levenshtein distance (optimal string alignment: insertions, deletions,
 * substitutions and transpositions of adjacent characters, each costing 1), by code unit.
 * Returns `limit + 1` as soon as the distance is known to exceed `limit`.
 */
export function damerauLevenshtein(a: string, b: string, limit = Number.POSITIVE_INFINITY): number {
  if (a === b) return 0;
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  const width = b.length + 1;
  let before = new Array<number>(width);
  let previous = new Array<number>(width);
  let current = new Array<number>(width);
  for (let j = 0; j < width; j++) previous[j] = j;
  for (let i = 1; i <= a.length; i++) {
    current[0] = i;
    let rowMin = i;
    for (let j = 1; j < width; j++) {
      const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1;
      let value = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && a.charCodeAt(i - 1) === b.charCodeAt(j - 2) && a.charCodeAt(i - 2) === b.charCodeAt(j - 1)) {
        value = Math.min(value, before[j - 2]! + 1);
      }
      current[j] = value;
      if (value < rowMin) rowMin = value;
    }
    if (rowMin > limit) return limit + 1;
    [before, previous, current] = [previous, current, before];
  }
  return previous[b.length]!;
}

/**
 * Public suffixes of more than one label that the registrable-domain split knows. A compact
 * subset of the Public Suffix List: common second-level country domains and the hosting
 * platforms where each subdomain belongs to a different owner.
 */
const MULTI_LABEL_SUFFIXES: ReadonlySet<string> = new Set([
  'co.uk', 'org.uk', 'ac.uk', 'gov.uk', 'me.uk', 'net.uk', 'com.au', 'net.au', 'org.au', 'edu.au', 'gov.au',
  'co.nz', 'org.nz', 'co.jp', 'ne.jp', 'or.jp', 'ac.jp', 'com.br', 'net.br', 'org.br', 'com.cn', 'net.cn', 'org.cn',
  'com.mx', 'co.in', 'net.in', 'org.in', 'co.za', 'com.tr', 'com.sg', 'com.hk', 'co.kr', 'or.kr', 'com.tw', 'co.il',
  'com.ar', 'com.co', 'com.pl', 'co.id', 'com.my', 'com.ph', 'com.vn', 'com.ua', 'co.th', 'com.pk', 'com.eg', 'com.sa',
  'github.io', 'gitlab.io', 'herokuapp.com', 'vercel.app', 'netlify.app', 'pages.dev', 'workers.dev', 'fly.dev',
  'onrender.com', 'azurewebsites.net', 'cloudfront.net', 'appspot.com', 'web.app', 'firebaseapp.com', 'ngrok.io',
  'ngrok-free.app', 'ngrok.app', 'trycloudflare.com', 'deno.dev', 'railway.app', 'replit.app', 'glitch.me',
]);

/** A DNS host name split at its registrable domain: `mcp.github.com` → label `github`, suffix `com`. */
export interface HostParts {
  /** Lower-case Unicode form (punycode decoded). */
  readonly host: string;
  /** Labels left of the registrable domain, e.g. `['mcp']`. */
  readonly subdomains: readonly string[];
  /** The label the owner registered, e.g. `github`. */
  readonly label: string;
  /** The public suffix, e.g. `com` or `co.uk`. */
  readonly suffix: string;
  /** `label.suffix`. */
  readonly registrable: string;
}

const IPV4 = /^\d{1,3}(?:\.\d{1,3}){3}$/;

/**
 * Splits a URL's host name; null for IP addresses, `localhost`, single-label hosts and
 * URLs that do not parse: there is nothing to impersonate there.
 */
export function hostParts(url: string): HostParts | null {
  let hostname: string;
  try {
    hostname = new URL(url).hostname;
  } catch {
    return null;
  }
  if (hostname.startsWith('[') || IPV4.test(hostname)) return null;
  const host = (domainToUnicode(hostname) || hostname).toLowerCase().replace(/\.$/, '');
  const labels = host.split('.');
  if (labels.length < 2 || host === 'localhost' || host.endsWith('.localhost')) return null;
  const lastTwo = labels.slice(-2).join('.');
  const suffixLength = labels.length >= 3 && MULTI_LABEL_SUFFIXES.has(lastTwo) ? 2 : 1;
  if (labels.length <= suffixLength) return null;
  const suffix = labels.slice(-suffixLength).join('.');
  const label = labels[labels.length - suffixLength - 1]!;
  return { host, subdomains: labels.slice(0, labels.length - suffixLength - 1), label, suffix, registrable: `${label}.${suffix}` };
}
