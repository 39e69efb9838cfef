import { Buffer } from 'node:buffer';
import type { FeatureKind } from '../feature-hash.js';

/**
 * Tool poisoning: instructions aimed at the model hidden in what a server says about its
 * features (descriptions, titles, schema descriptions, prompt arguments, annotations).
 * Clients put these texts into the model's context verbatim, so a server can steer the
 * model without ever being called.
 *
 * Heuristic and explainable, like the data plane's prompt-injection detector: each rule
 * that fires is a {@link ThreatReason} with a weight; a feature's score is the sum of the
 * weights of the distinct rules that fired in any of its texts, capped at 1, and a score at
 * or above {@link POISONING_THRESHOLD} flags the feature. The rules are tuned for
 * descriptions, which legitimately address the model ("Use this tool to…"): they look for
 * what an honest description has no reason to contain: tags and markers that pose as the
 * system, requests to hide things from the user, invisible characters, data sent to URLs,
 * secret files, encoded payloads, and tools of other servers.
 *
 * Every pattern has bounded repetition only, so matching stays linear; everything is
 * compiled once in {@link createPoisoningDetector}.
 */

export type ThreatReasonCode =
  | 'HIDDEN_INSTRUCTIONS'
  | 'INVISIBLE_CHARACTERS'
  | 'EXFILTRATION'
  | 'SECRET_ACCESS'
  | 'ENCODED_PAYLOAD'
  | 'CROSS_SERVER_SHADOWING';

/** One rule that fired, as stored with the feature and shown to admins. */
export interface ThreatReason {
  readonly code: ThreatReasonCode;
  /** Stable rule id, e.g. `instruction-tag`; a rule counts once per feature. */
  readonly rule: string;
  /** Where it fired: `description`, `inputSchema.properties.note.description`, `arguments.0.description`. */
  readonly field: string;
  readonly message: string;
  /** The text around the match, invisible characters shown as `\u{200B}`; at most ~160 characters. */
  readonly excerpt: string;
  readonly weight: number;
  /** For cross-server shadowing: the server whose tool is named. */
  readonly relatedServerId?: string;
  readonly relatedServerName?: string;
  readonly relatedTool?: string;
}

export interface PoisoningVerdict {
  /** 0..1. */
  readonly score: number;
  readonly flagged: boolean;
  /** Every rule that fired, strongest first. */
  readonly reasons: readonly ThreatReason[];
}

/** A tool of another server of the same workspace, for cross-server shadowing. */
export interface OtherServerTool {
  readonly serverId: string;
  readonly serverName: string;
  readonly name: string;
}

export interface PoisoningContext {
  /** Tools of the workspace's other servers. Names the scanned server itself exposes are ignored. */
  readonly otherTools: readonly OtherServerTool[];
  /** Tool names of the scanned server (its own tools may be named freely). */
  readonly ownToolNames: ReadonlySet<string>;
}

export interface ScannedFeature {
  readonly kind: FeatureKind;
  readonly name: string;
  readonly definition: Readonly<Record<string, unknown>>;
}

export interface PoisoningDetector {
  scan(feature: ScannedFeature, context: PreparedContext): PoisoningVerdict;
  /** Indexes a context once for many scans. */
  prepare(context: PoisoningContext): PreparedContext;
}

/** A {@link PoisoningContext} indexed for scanning. */
export interface PreparedContext {
  readonly toolsByName: ReadonlyMap<string, readonly OtherServerTool[]>;
}

/** Score at or above which a feature is flagged. */
export const POISONING_THRESHOLD = 0.5;

/** Longest text scanned per field; a description longer than this is itself unusual. */
const MAX_FIELD_CHARS = 64 * 1024;
const MAX_SCHEMA_DEPTH = 16;

interface Rule {
  readonly code: ThreatReasonCode;
  readonly rule: string;
  readonly weight: number;
  readonly pattern: RegExp;
  readonly message: string;
}

/** Phrase rules: (code, id, weight, pattern source, message). Flags `i` unless given. */
const PHRASES: readonly [ThreatReasonCode, string, number, string, string, string?][] = [
  ['HIDDEN_INSTRUCTIONS', 'instruction-tag', 0.5, '<\\s*/?\\s*(?:important|system|system_prompt|sys|instructions?|secret|hidden|admin|critical|override|assistant|priority)\\b[^<>]{0,40}>', 'a tag posing as instructions to the model (<IMPORTANT>, <system>, …)'],
  ['HIDDEN_INSTRUCTIONS', 'role-marker', 0.5, '<\\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id)\\|>|\\[/?INST\\]|<</?SYS>>', 'a chat-template role marker'],
  ['HIDDEN_INSTRUCTIONS', 'override-instructions', 0.7, '\\b(?:ignore|disregard|forget|override|bypass)\\s+(?:(?:all|any|the|your|of|these|those)\\s+){0,3}(?:previous|prior|above|earlier|preceding|other|system|original|initial|existing|safety)\\s+(?:instructions?|prompts?|rules|directions|guidelines|directives|messages?)\\b', 'tells the model to ignore its instructions'],
  ['HIDDEN_INSTRUCTIONS', 'conceal-from-user', 0.6, "\\b(?:do\\s+not|don't|never|without)\\s+(?:tell(?:ing)?|inform(?:ing)?|mention(?:ing)?|reveal(?:ing)?|notify(?:ing)?|show(?:ing)?|alert(?:ing)?|let(?:ting)?|disclos(?:e|ing)|explain(?:ing)?)\\b[^.\\n]{0,120}?\\b(?:the\\s+)?(?:user|human|operator)s?\\b|\\b(?:the\\s+)?user\\s+(?:must|should)\\s+(?:not|never)\\s+(?:know|see|notice|find\\s+out|be\\s+told)\\b", 'asks the model to keep something from the user'],
  ['HIDDEN_INSTRUCTIONS', 'conceal', 0.3, "\\b(?:do\\s+not|don't|never)\\s+(?:mention|reveal|disclose)\\b|\\b(?:silently|secretly|quietly|covertly)\\s+(?:call|run|send|read|include|append|add|use|invoke)\\b", 'asks the model to act without saying so'],
  ['HIDDEN_INSTRUCTIONS', 'standing-order', 0.4, '\\bwhen(?:ever)?\\s+this\\s+tool\\s+is\\s+(?:available|present|loaded|installed|connected)\\b|\\bregardless\\s+of\\s+(?:what\\s+)?(?:the\\s+)?user(?:\'s)?\\b|\\b(?:for|in)\\s+(?:all|every|any)\\s+(?:other\\s+)?(?:tool\\s+calls?|future\\s+(?:calls?|requests?|messages?))\\b', 'gives the model standing orders beyond this tool'],
  ['HIDDEN_INSTRUCTIONS', 'precondition', 0.2, '\\bbefore\\s+(?:using|calling|invoking|running)\\s+(?:this|the|any)\\s+tool\\b[^.\\n]{0,40}?\\b(?:read|open|cat|fetch|call|send|include|pass|provide|upload)\\b', 'makes the model do something first'],
  ['HIDDEN_INSTRUCTIONS', 'coercion', 0.25, '\\botherwise\\s+(?:the|this)\\s+(?:tool|system|application|server)\\s+(?:will|would|may)\\s+(?:not\\s+work|fail|crash|break|stop\\s+working)\\b|\\bvery\\s+(?:very\\s+)?important\\b|\\bthis\\s+is\\s+(?:critical|crucial|mandatory)\\b', 'pressures the model with urgency or threats'],
  ['HIDDEN_INSTRUCTIONS', 'persona', 0.4, '\\byou\\s+are\\s+now\\b|\\bjail\\s*break|\\b(?:developer|god|sudo|dan)\\s+mode\\b|\\bnew\\s+(?:system\\s+)?instructions?\\s*:', 'tries to change who the model is'],
  ['HIDDEN_INSTRUCTIONS', 'system-header', 0.5, '(?:^|\\n)[ \\t]*(?:#{1,4}[ \\t]*)?system[ \\t]*:', 'a line posing as a system message'],
  ['EXFILTRATION', 'exfiltration-host', 0.6, '\\b(?:webhook\\.site|requestbin\\.(?:com|net)|pipedream\\.net|hookbin\\.com|beeceptor\\.com|requestcatcher\\.com|postb\\.in|burpcollaborator\\.net|oastify\\.com|interact\\.sh|canarytokens\\.com|pastebin\\.com|transfer\\.sh|hastebin\\.com|ngrok(?:-free)?\\.(?:app|io|dev)|[a-z0-9-]{1,63}\\.oast\\.(?:fun|live|me|online|pro|site))\\b', 'names a request-capture or paste service, a common exfiltration sink'],
  ['EXFILTRATION', 'send-to-address', 0.5, '\\b(?:send|post|upload|forward|transmit|exfiltrate|leak|email|mail|deliver|beacon)\\b[^\\n]{0,80}?\\b(?:to|into|at)\\s+<?(?:https?://|[\\w.+-]{1,64}@[\\w-]{1,63}\\.[a-z]{2,})', 'tells the model to send data to a URL or mail address'],
  ['EXFILTRATION', 'url-sensitive-query', 0.5, 'https?://[^\\s"\'<>)]{1,200}?[?&](?:data|secret|token|key|apikey|api_key|password|passwd|pwd|creds?|credentials|history|conversation|chat|context|env|ssh|cookie|session|prompt|q)=', 'a URL that carries data in its query string'],
  ['EXFILTRATION', 'markdown-image-beacon', 0.4, '!\\[[^\\]\\n]{0,100}\\]\\(https?://[^)\\s]{1,300}?\\?[^)\\s]{0,300}?=', 'a Markdown image whose URL carries data (rendered images leak it)'],
  ['EXFILTRATION', 'sensitive-outbound', 0.3, '\\b(?:conversation|chat)\\s+history\\b|\\b(?:full|entire|whole)\\s+(?:conversation|chat|context|transcript)\\b|\\b(?:previous|prior|all)\\s+(?:messages|tool\\s+results|outputs)\\b', 'asks for the conversation or earlier tool output'],
  ['SECRET_ACCESS', 'secret-path', 0.35, '~/\\.ssh\\b|\\bid_(?:rsa|dsa|ecdsa|ed25519)\\b|~/\\.aws\\b|\\.aws/credentials|/etc/(?:passwd|shadow)\\b|(?:^|[\\s\'"`(/])\\.env(?:\\.[a-z]{1,12})?\\b|\\.npmrc\\b|\\.netrc\\b|\\.pgpass\\b|\\.git-credentials\\b|\\.docker/config\\.json|\\.kube/config\\b|\\bmcp\\.json\\b|claude_desktop_config\\.json|~/\\.cursor\\b|\\bwallet\\.dat\\b|\\bseed\\s+phrase\\b|\\bkeychain\\b', 'names a file that holds secrets'],
  ['SECRET_ACCESS', 'read-secrets', 0.3, '\\b(?:read|reads|cat|open|load|include|attach|send|pass|provide|put|give|share|insert|supply|copy|upload|paste|extract|collect|dump|print|contents\\s+of)\\b(?:[^.\\n]|\\.(?=\\S)){0,60}?(?:\\bsecrets?\\b|\\bcredentials?\\b|\\bapi[\\s_-]?keys?\\b|\\bpasswords?\\b|\\baccess\\s+tokens?\\b|\\bssh\\s+keys?\\b|\\bprivate\\s+keys?\\b|\\benvironment\\s+variables\\b|\\.env\\b|~/\\.ssh|\\bid_rsa\\b|\\bcookies?\\b|\\bmcp\\.json\\b)', 'asks the model to read or hand over secrets'],
];

const INVISIBLE_ZERO_WIDTH = new Set([0x200b, 0x200c, 0x200d, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0xfeff, 0x180e, 0x00ad, 0x3164, 0xffa0, 0x115f, 0x1160, 0x200e, 0x200f]);
const isBidiControl = (c: number) => (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
const isRtlLetter = (c: number) => (c >= 0x0590 && c <= 0x08ff) || (c >= 0xfb1d && c <= 0xfdff) || (c >= 0xfe70 && c <= 0xfeff);

const URL_PATTERN = /\bhttps?:\/\/[^\s"'<>)\]]{1,2048}/gi;
const MIN_ENCODED = 40;
const ENCODED_KEYWORDS = /\b(?:ignore|instructions?|system|prompt|assistant|password|secret|send|exfiltrate|you\s+(?:are|must)|must|https?:|ssh|token|api[_ ]?key|user)\b/i;
/** Words around a generic tool name that make a mention a redirection. */
const REDIRECT_CONTEXT = /\b(?:instead|rather\s+than|do\s+not|don't|never|avoid|deprecated|replaces?|replacing|prefer|preferred|must|shadow|overrides?|whenever|before|after|stop\s+using|no\s+longer)\b/i;
const TOKEN = /[A-Za-z0-9][A-Za-z0-9_.:-]{1,127}/g;

export function createPoisoningDetector(): PoisoningDetector {
  const rules: Rule[] = PHRASES.map(([code, rule, weight, source, message, flags]) => ({ code, rule, weight, message, pattern: new RegExp(source, flags ?? 'i') }));

  function prepare(context: PoisoningContext): PreparedContext {
    const toolsByName = new Map<string, OtherServerTool[]>();
    for (const tool of context.otherTools) {
      if (context.ownToolNames.has(tool.name) || tool.name.length < 3) continue;
      const key = tool.name.toLowerCase();
      const list = toolsByName.get(key);
      if (list) list.push(tool);
      else toolsByName.set(key, [tool]);
    }
    return { toolsByName };
  }

  function scan(feature: ScannedFeature, context: PreparedContext): PoisoningVerdict {
    const found = new Map<string, ThreatReason>();
    const add = (reason: ThreatReason) => {
      if (!found.has(reason.rule)) found.set(reason.rule, reason);
    };
    for (const { field, text } of featureTexts(feature)) {
      const slice = text.length > MAX_FIELD_CHARS ? text.slice(0, MAX_FIELD_CHARS) : text;
      scanText(slice, field, rules, add, true);
      scanInvisible(slice, field, (decoded) => scanText(decoded, field, rules, add, false), add);
      scanEncoded(slice, field, rules, add);
      scanShadowing(slice, field, context, add);
    }
    const reasons = [...found.values()].sort((a, b) => b.weight - a.weight || a.rule.localeCompare(b.rule));
    let total = 0;
    for (const r of reasons) total += r.weight;
    const score = Math.min(1, Math.round(total * 1000) / 1000);
    return { score, flagged: score >= POISONING_THRESHOLD, reasons };
  }

  return Object.freeze({ scan, prepare });
}

/**
 * The texts of a definition a client shows to the model: name, title and description;
 * for tools every `title` and `description` in the input and output schemas and string
 * annotations; for prompts the arguments' names, titles and descriptions. Schema defaults,
 * enums and examples are data, not prose, and are left out.
 */
export function featureTexts(feature: ScannedFeature): { field: string; text: string }[] {
  const out: { field: string; text: string }[] = [];
  const def = feature.definition;
  const push = (field: string, value: unknown) => {
    if (typeof value === 'string' && value.length > 0) out.push({ field, text: value });
  };
  push('name', def.name);
  push('title', def.title);
  push('description', def.description);
  if (feature.kind === 'tool') {
    walkSchema('inputSchema', def.inputSchema, 0, push);
    walkSchema('outputSchema', def.outputSchema, 0, push);
    const annotations = def.annotations;
    if (annotations && typeof annotations === 'object' && !Array.isArray(annotations)) {
      for (const [key, value] of Object.entries(annotations)) push(`annotations.${key}`, value);
    }
  }
  if (feature.kind === 'prompt' && Array.isArray(def.arguments)) {
    def.arguments.forEach((arg: unknown, i: number) => {
      if (!arg || typeof arg !== 'object') return;
      const a = arg as Record<string, unknown>;
      push(`arguments.${i}.name`, a.name);
      push(`arguments.${i}.title`, a.title);
      push(`arguments.${i}.description`, a.description);
    });
  }
  return out;
}

function walkSchema(path: string, schema: unknown, depth: number, push: (field: string, value: unknown) => void): void {
  if (depth > MAX_SCHEMA_DEPTH || !schema || typeof schema !== 'object') return;
  if (Array.isArray(schema)) {
    schema.forEach((item, i) => walkSchema(`${path}.${i}`, item, depth + 1, push));
    return;
  }
  for (const [key, value] of Object.entries(schema)) {
    if ((key === 'description' || key === 'title') && typeof value === 'string') push(`${path}.${key}`, value);
    else if (key !== 'default' && key !== 'enum' && key !== 'const' && key !== 'examples' && typeof value === 'object') walkSchema(`${path}.${key}`, value, depth + 1, push);
  }
}

function scanText(text: string, field: string, rules: readonly Rule[], add: (r: ThreatReason) => void, original: boolean): void {
  for (const rule of rules) {
    const match = rule.pattern.exec(text);
    if (!match) continue;
    add({
      code: rule.code,
      rule: rule.rule,
      field,
      message: original ? rule.message : `${rule.message}, in hidden text`,
      excerpt: excerpt(text, match.index, match.index + match[0].length),
      weight: rule.weight,
    });
  }
}

/**
 * Unicode tag characters (invisible ASCII look-alikes, "ASCII smuggling"), zero-width and
 * other invisible characters, and bidi controls. Hidden text is decoded (tags) or the
 * visible text re-joined (zero-width stripped) and scanned again. Spared: a leading BOM,
 * ZWJ/ZWNJ inside emoji or scripts that need them, tag sequences of subdivision flags,
 * and LRM/RLM or bidi controls next to right-to-left text.
 */
function scanInvisible(text: string, field: string, rescan: (decoded: string) => void, add: (r: ThreatReason) => void): void {
  let tags = '';
  let tagStart = -1;
  let inFlag = false;
  let zeroWidth = 0;
  let zwStart = -1;
  let bidi = 0;
  let bidiStart = -1;
  let rtl = false;
  let stripped = '';
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x00ad) continue;
    if (isRtlLetter(c)) rtl = true;
    if (c === 0xdb40) {
      const low = text.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdc7f) {
        // U+1F3F4 followed by tags is a subdivision flag (🏴 England); it ends with U+E007F.
        if (inFlag || (tags.length === 0 && tagStart < 0 && i >= 2 && text.charCodeAt(i - 2) === 0xd83c && text.charCodeAt(i - 1) === 0xdff4)) {
          inFlag = low !== 0xdc7f;
          i++;
          continue;
        }
        if (tagStart < 0) tagStart = i;
        const ascii = low - 0xdc00;
        if (ascii >= 0x20 && ascii < 0x7f && tags.length < 4096) tags += String.fromCharCode(ascii);
        stripped += text.slice(from, i);
        from = i + 2;
        i++;
        continue;
      }
    }
    if (INVISIBLE_ZERO_WIDTH.has(c)) {
      if (c === 0xfeff && i === 0) continue;
      const prev = i > 0 ? text.charCodeAt(i - 1) : 0;
      const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      if ((c === 0x200d || c === 0x200c) && (prev >= 0x0900 || next >= 0xd800 || prev === 0xfe0f)) continue;
      if ((c === 0x200e || c === 0x200f) && rtl) continue;
      if (zwStart < 0) zwStart = i;
      zeroWidth++;
      stripped += text.slice(from, i);
      from = i + 1;
      continue;
    }
    if (isBidiControl(c)) {
      if (bidiStart < 0) bidiStart = i;
      bidi++;
    }
  }
  if (tagStart >= 0) {
    add({
      code: 'INVISIBLE_CHARACTERS',
      rule: 'unicode-tags',
      field,
      message: `carries ${tags.length} invisible Unicode tag characters that spell hidden text${tags ? `: "${tags.slice(0, 80)}${tags.length > 80 ? '…' : ''}"` : ''}`,
      excerpt: excerpt(text, tagStart, tagStart + 2),
      weight: 0.6,
    });
    if (tags) rescan(tags);
  }
  if (zeroWidth > 0) {
    add({
      code: 'INVISIBLE_CHARACTERS',
      rule: 'zero-width',
      field,
      message: `carries ${zeroWidth} zero-width or invisible character${zeroWidth === 1 ? '' : 's'}`,
      excerpt: excerpt(text, zwStart, zwStart + 1),
      weight: 0.5,
    });
  }
  if (bidi > 0) {
    add({
      code: 'INVISIBLE_CHARACTERS',
      rule: 'bidi-control',
      field,
      message: `carries ${bidi} bidirectional control character${bidi === 1 ? '' : 's'} that reorder what a reader sees`,
      excerpt: excerpt(text, bidiStart, bidiStart + 1),
      weight: rtl ? 0.2 : 0.5,
    });
  }
  if (zeroWidth > 0 || tagStart >= 0) rescan(stripped + text.slice(from));
}

function isBase64Code(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 43 || c === 47 || c === 45 || c === 95;
}

/**
 * Runs of 40 or more base64/base64url characters outside URLs. A run that decodes to text
 * is scanned like the description itself; a decoded text with instruction words counts as
 * hidden instructions, any other blob counts a little (descriptions rarely carry one).
 */
function scanEncoded(text: string, field: string, rules: readonly Rule[], add: (r: ThreatReason) => void): void {
  const withoutUrls = text.replace(URL_PATTERN, (url) => ' '.repeat(url.length));
  let blocks = 0;
  for (let i = 0; i < withoutUrls.length && blocks < 16; ) {
    if (!isBase64Code(withoutUrls.charCodeAt(i))) {
      i++;
      continue;
    }
    const start = i;
    let upper = false;
    let lower = false;
    let digitOrSymbol = false;
    while (i < withoutUrls.length && isBase64Code(withoutUrls.charCodeAt(i))) {
      const c = withoutUrls.charCodeAt(i);
      if (c >= 65 && c <= 90) upper = true;
      else if (c >= 97 && c <= 122) lower = true;
      else digitOrSymbol = true;
      i++;
    }
    if (i - start < MIN_ENCODED || !(upper && lower && digitOrSymbol)) continue;
    blocks++;
    const block = withoutUrls.slice(start, i);
    const decoded = Buffer.from(block.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8');
    if (mostlyPrintable(decoded)) {
      let hit = false;
      scanText(decoded, field, rules, (r) => {
        hit = true;
        add({ ...r, message: `${r.message}, in base64-encoded text`, excerpt: excerpt(decoded, 0, Math.min(decoded.length, 100)) });
      }, false);
      if (hit || ENCODED_KEYWORDS.test(decoded)) {
        add({ code: 'ENCODED_PAYLOAD', rule: 'encoded-instructions', field, message: 'hides readable instructions in base64', excerpt: excerpt(text, start, i), weight: 0.5 });
        continue;
      }
    }
    add({ code: 'ENCODED_PAYLOAD', rule: 'encoded-blob', field, message: 'carries a long encoded blob', excerpt: excerpt(text, start, i), weight: 0.15 });
  }
}

function mostlyPrintable(s: string): boolean {
  if (s.length < 16) return false;
  let printable = 0;
  let letters = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c >= 32 && c < 127) || c === 10 || c === 13 || c === 9) printable++;
    if ((c | 0x20) >= 97 && (c | 0x20) <= 122) letters++;
  }
  return printable / s.length >= 0.95 && letters / s.length >= 0.5;
}

/** A name a reader would not use by accident: has `_`, `-`, `.`, a digit or an inner capital, and 4+ characters. */
function isDistinctive(name: string): boolean {
  return name.length >= 4 && (/[_.\-\d]/.test(name) || /[a-z][A-Z]/.test(name));
}

/**
 * Cross-server shadowing: the text names a tool that only another server of the workspace
 * has. A distinctive name (`send_email`, `get-sum`) counts on its own; a plain word
 * (`echo`, `search`) counts when written as a tool (`the echo tool`, `` `echo` ``) next to
 * words that redirect the model (instead, never, before, deprecated, …).
 */
function scanShadowing(text: string, field: string, context: PreparedContext, add: (r: ThreatReason) => void): void {
  if (context.toolsByName.size === 0) return;
  TOKEN.lastIndex = 0;
  for (let m = TOKEN.exec(text); m !== null; m = TOKEN.exec(text)) {
    let token = m[0].replace(/[.:-]+$/, '');
    let tools = context.toolsByName.get(token.toLowerCase());
    if (!tools && token.includes('__')) {
      token = token.slice(token.lastIndexOf('__') + 2);
      tools = context.toolsByName.get(token.toLowerCase());
    }
    if (!tools) continue;
    const tool = tools[0]!;
    const start = m.index;
    const end = m.index + m[0].length;
    const window = text.slice(Math.max(0, start - 80), Math.min(text.length, end + 80));
    const redirect = REDIRECT_CONTEXT.test(window);
    const asTool =
      text.charAt(start - 1) === '`' ||
      /^\s{0,3}(?:tool|function|command)\b/i.test(text.slice(end, end + 16)) ||
      /\b(?:tool|function|command)\s{0,3}[`'"]?$/i.test(text.slice(Math.max(0, start - 16), start));
    const where = `tool ${tool.name} of server "${tool.serverName}"`;
    if (redirect && (asTool || isDistinctive(tool.name))) {
      add({
        code: 'CROSS_SERVER_SHADOWING',
        rule: 'redirects-other-server-tool',
        field,
        message: `tells the model how to use ${where} (shadowing another server's tool)`,
        excerpt: excerpt(text, start, end),
        weight: 0.6,
        relatedServerId: tool.serverId,
        relatedServerName: tool.serverName,
        relatedTool: tool.name,
      });
    } else if (isDistinctive(tool.name)) {
      add({
        code: 'CROSS_SERVER_SHADOWING',
        rule: 'names-other-server-tool',
        field,
        message: `names ${where}; a server's descriptions have no reason to mention another server's tools`,
        excerpt: excerpt(text, start, end),
        weight: 0.5,
        relatedServerId: tool.serverId,
        relatedServerName: tool.serverName,
        relatedTool: tool.name,
      });
    }
  }
}

/** `text[start, end)` with up to 40 characters before and 80 after, one line, invisibles escaped. */
export function excerpt(text: string, start: number, end: number): string {
  const from = Math.max(0, start - 40);
  const to = Math.min(text.length, Math.max(end, start) + 80);
  let out = '';
  for (const char of text.slice(from, to)) {
    const c = char.codePointAt(0)!;
    if (INVISIBLE_ZERO_WIDTH.has(c) || isBidiControl(c) || (c >= 0xe0000 && c <= 0xe007f)) out += `\\u{${c.toString(16).toUpperCase()}}`;
    else if (c < 0x20 || c === 0x7f) out += ' ';
    else out += char;
    if (out.length > 240) break;
  }
  return `${from > 0 ? '…' : ''}${out.replace(/\s+/g, ' ').trim()}${to < text.length ? '…' : ''}`;
}
