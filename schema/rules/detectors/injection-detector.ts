import { Buffer } from 'node:buffer';

/**
 * Prompt-injection detector for tool arguments and results (including second-order
 * injection hidden in results). Heuristic and explainable: each rule that fires is a
 * `Signal` with a weight; the score is the sum of the weights of distinct signals, capped
 * at 1, and `detect` compares it with the threshold.
 *
 * Every pattern is written for a backtracking engine to stay linear: literal words joined
 * by `\s+`, optional filler words with a small fixed bound (`{0,3}`), and no quantified
 * group whose body can match the same text two ways. Hidden Unicode and encoded blocks are
 * found by hand-written loops. Everything is compiled once, in `createInjectionDetector`.
 */

export type SignalKind =
  | 'instruction-override'
  | 'role-marker'
  | 'hidden-unicode'
  | 'encoded-payload'
  | 'important-tag'
  | 'exfiltration';

/** Where the signal's text was found: in the text itself or in something decoded from it. */
export type SignalSource = 'text' | 'unicode-tags' | 'zero-width-stripped' | 'base64' | 'hex';

export interface Signal {
  readonly kind: SignalKind;
  /** Stable rule id, e.g. `ignore-previous-instructions`; a rule counts once per text. */
  readonly id: string;
  readonly weight: number;
  /** Span in the scanned text; for decoded sources, the span of the encoded or hidden run. */
  readonly start: number;
  readonly end: number;
  readonly source: SignalSource;
}

export interface InjectionVerdict {
  /** 0..1: sum of the weights of distinct signals, capped at 1. */
  readonly score: number;
  readonly signals: readonly Signal[];
}

export interface InjectionDetector {
  score(text: string): InjectionVerdict;
  /** `score(text).score >= threshold`. */
  detect(text: string): boolean;
}

export interface InjectionDetectorOptions {
  /** Score at or above which `detect` answers true. Default 0.5. */
  readonly threshold?: number;
}

export const DEFAULT_INJECTION_THRESHOLD = 0.5;

interface PhraseRule {
  readonly id: string;
  readonly kind: SignalKind;
  readonly weight: number;
  readonly pattern: RegExp;
}

const QUALIFIER = '(?:previous|prior|above|earlier|preceding|foregoing|all|any|every|system|original|initial|developer|existing|current|safety|old)';
const FILLER = '(?:(?:the|your|my|of|these|those|that|this|all|any|and|other|previous|prior|above|earlier|preceding|system|original|initial)\\s+)';
const NOUN = '(?:instructions?|prompts?|directions?|rules|guidelines|guardrails|directives|constraints|restrictions|context|commands?|policies|programming|messages?)';

const PHRASES: ReadonlyArray<Omit<PhraseRule, 'pattern'> & { readonly source: string; /** RegExp flags; default `i`. */ readonly flags?: string }> = [
  {
    id: 'ignore-previous-instructions', kind: 'instruction-override', weight: 0.7,
    source: `\\b(?:ignore|disregard|forget|override|bypass|neglect|skip|drop)\\s+${FILLER}{0,3}${QUALIFIER}\\s+${FILLER}{0,2}${NOUN}\\b`,
  },
  {
    id: 'ignore-your-instructions', kind: 'instruction-override', weight: 0.5,
    source: `\\b(?:ignore|disregard|forget|override|bypass)\\s+(?:your|the|these|those|my)\\s+${NOUN}\\b`,
  },
  { id: 'disregard-the-above', kind: 'instruction-override', weight: 0.6, source: '\\b(?:disregard|ignore|forget)\\s+(?:all\\s+)?(?:of\\s+)?(?:the\\s+|that\\s+|everything\\s+)?(?:above|previous|prior|foregoing|before)\\b' },
  { id: 'forget-everything', kind: 'instruction-override', weight: 0.5, source: '\\bforget\\s+(?:about\\s+)?(?:everything|all\\s+(?:that|of\\s+that))\\b' },
  { id: 'you-are-now', kind: 'instruction-override', weight: 0.4, source: '\\byou\\s+are\\s+now\\s+(?:an?\\s+|the\\s+|my\\s+|in\\s+|no\\s+longer\\b|free\\b|unrestricted\\b|jailbroken\\b|dan\\b|going\\s+to\\b|operating\\b|acting\\b)' },
  { id: 'new-instructions', kind: 'instruction-override', weight: 0.5, source: '\\b(?:new|updated|revised|real|actual|true|additional|secret|hidden|override)\\s+(?:system\\s+)?(?:instructions?|directives?|orders|task)\\s*(?::|-|are\\b|follow\\b)' },
  { id: 'system-prompt', kind: 'instruction-override', weight: 0.3, source: '\\bsystem\\s+(?:prompt|message|instructions?)\\b' },
  {
    id: 'reveal-system-prompt', kind: 'instruction-override', weight: 0.5,
    source: '\\b(?:reveal|print|show|output|repeat|leak|display|dump|disclose|tell\\s+me)\\s+(?:(?:me|us|your|the|its|all|full|entire|exact|hidden|original|initial|secret)\\s+){0,3}(?:system\\s+prompt|initial\\s+instructions|hidden\\s+instructions|instructions\\s+above|prompt\\s+above)',
  },
  { id: 'act-as', kind: 'instruction-override', weight: 0.15, source: '\\bact\\s+as\\s+(?:an?\\s+|if\\s+|though\\s+)' },
  { id: 'act-as-unrestricted', kind: 'instruction-override', weight: 0.4, source: '\\b(?:act|behave|respond)\\s+as\\s+(?:an?\\s+)?(?:unrestricted|unfiltered|uncensored|jailbroken|evil|dan|different\\s+ai|ai\\s+without|admin|root|developer\\s+mode)' },
  { id: 'pretend-to-be', kind: 'instruction-override', weight: 0.35, source: '\\b(?:pretend|imagine)\\s+(?:to\\s+be|you\\s+are|that\\s+you\\s+are)\\b' },
  { id: 'jailbreak', kind: 'instruction-override', weight: 0.4, source: '\\bjail\\s*break(?:ing|s|ed)?\\b' },
  { id: 'do-anything-now', kind: 'instruction-override', weight: 0.6, source: '\\bdo\\s+anything\\s+now\\b|\\bDAN\\s+mode\\b' },
  { id: 'developer-mode', kind: 'instruction-override', weight: 0.45, source: '\\b(?:developer|god|debug|admin|sudo)\\s+mode\\s+(?:enabled|activated|on)\\b|\\benable\\s+(?:developer|god|sudo)\\s+mode\\b' },
  { id: 'no-restrictions', kind: 'instruction-override', weight: 0.3, source: '\\b(?:without|no|free\\s+of|ignore)\\s+(?:any\\s+)?(?:restrictions|filters|limitations|censorship|content\\s+policy|safety\\s+guidelines)\\b' },
  { id: 'from-now-on', kind: 'instruction-override', weight: 0.2, source: '\\bfrom\\s+now\\s+on\\b' },
  {
    id: 'hide-from-user', kind: 'instruction-override', weight: 0.5,
    source: "\\b(?:do\\s+not|don't|never|without)\\s+(?:tell(?:ing)?|inform(?:ing)?|mention(?:ing)?|reveal(?:ing)?|alert(?:ing)?|notify(?:ing)?|show(?:ing)?|let(?:ting)?)\\s+(?:this\\s+to\\s+|it\\s+to\\s+|anything\\s+to\\s+)?(?:the\\s+)?(?:user|human|operator)\\b",
  },
  { id: 'address-the-model', kind: 'instruction-override', weight: 0.35, source: '\\b(?:ai|assistant|agent|llm|model|claude|chatgpt|gpt|copilot)\\s*[,:]\\s*(?:you\\s+must|please\\s+now|ignore|stop|immediately|now\\s+(?:call|run|send|execute))' },
  { id: 'ignore-user-request', kind: 'instruction-override', weight: 0.4, source: "\\b(?:ignore|disregard)\\s+(?:the\\s+)?(?:user'?s?|human'?s?)\\s+(?:request|question|instructions?|message|prompt)" },
  { id: 'when-you-read-this', kind: 'instruction-override', weight: 0.3, source: '\\b(?:when|once|after|if)\\s+you\\s+(?:read|see|process|encounter|parse)\\s+this\\b|\\bif\\s+you\\s+are\\s+an?\\s+(?:ai|llm|language\\s+model|assistant|agent)\\b' },
  { id: 'must-call-tool', kind: 'instruction-override', weight: 0.25, source: '\\b(?:you\\s+must|you\\s+should|immediately|first)\\s+(?:call|invoke|use|run|execute)\\s+(?:the\\s+)?`?[a-z_][a-z0-9_.-]{0,60}`?\\s+tool\\b' },
  { id: 'im-start', kind: 'role-marker', weight: 0.5, source: '<\\|im_start\\|>|<\\|im_end\\|>' },
  { id: 'chat-template-token', kind: 'role-marker', weight: 0.5, source: '<\\|(?:system|user|assistant|endoftext|eot_id|start_header_id)\\|>' },
  { id: 'inst-marker', kind: 'role-marker', weight: 0.5, source: '\\[/?INST\\]|<<SYS>>|<</SYS>>', flags: '' },
  { id: 'markdown-system-header', kind: 'role-marker', weight: 0.45, source: '(?:^|<!--)[ \\t]*#{1,4}[ \\t]*(?:system|instructions?|assistant)[ \\t]*:?[ \\t]*$|(?:^|<!--)[ \\t]*#{1,4}[ \\t]*system[ \\t]*:', flags: 'im' },
  { id: 'system-tag', kind: 'role-marker', weight: 0.5, source: '</?(?:system|system_prompt|sys)>' },
  { id: 'line-role-prefix', kind: 'role-marker', weight: 0.2, source: '^[ \\t]*(?:system|assistant)[ \\t]*:[ \\t]*(?:you|ignore|from|new|the\\s+user)', flags: 'im' },
  { id: 'important-tag', kind: 'important-tag', weight: 0.45, source: '<(?:important|critical|urgent|secret|hidden|instructions?|admin|override|priority)>' },
  {
    id: 'send-data-to-url', kind: 'exfiltration', weight: 0.4,
    source: '\\b(?:send|post|upload|forward|transmit|exfiltrate|leak|submit|append|include|email|mail)\\b[^\\n]{0,80}?\\b(?:to|into)\\s+(?:<?https?://|the\\s+(?:url|endpoint|webhook|server)\\b|[\\w.+-]{1,64}@[\\w-]{1,63}\\.)',
  },
  {
    id: 'url-sensitive-query', kind: 'exfiltration', weight: 0.35,
    source: 'https?://[^\\s"\'<>)]{1,200}?[?&](?:data|secret|token|key|apikey|api_key|password|passwd|creds?|credentials|history|conversation|chat|env|ssh|cookie|session|prompt)=',
  },
  { id: 'markdown-image-query', kind: 'exfiltration', weight: 0.3, source: '!\\[[^\\]\\n]{0,100}\\]\\(https?://[^)\\s]{1,300}?\\?[^)\\s]{0,300}?=' },
  {
    id: 'read-secret-files', kind: 'exfiltration', weight: 0.3,
    source: '\\b(?:read|cat|open|get|include|attach|send)\\s+(?:the\\s+)?(?:contents\\s+of\\s+)?(?:~/\\.ssh/id_\\w+|~/\\.aws/credentials|\\.env\\b|/etc/passwd|mcp\\.json|id_rsa)',
  },
];

const ENCODED_KEYWORDS = /\b(?:ignore|instructions?|system|prompt|assistant|password|secret|send|exfiltrate|you\s+are|must)\b/i;
const MIN_ENCODED = 40;
const MAX_ENCODED = 64 * 1024;
const MAX_DECODED_BLOCKS = 32;

const JSON_ESCAPE = /\\[nrt"\\/]/g;
const escapeToSpaces = (escape: string): string => (escape === '\\n' || escape === '\\r' ? ' \n' : '  ');

function compile(): PhraseRule[] {
  return PHRASES.map((p) => ({
    id: p.id,
    kind: p.kind,
    weight: p.weight,
    pattern: new RegExp(p.source, p.flags ?? 'i'),
  }));
}

export function createInjectionDetector(options: InjectionDetectorOptions = {}): InjectionDetector {
  const threshold = options.threshold ?? DEFAULT_INJECTION_THRESHOLD;
  if (!(threshold >= 0 && threshold <= 1)) {
    throw new RangeError(`createInjectionDetector: option "threshold" must be between 0 and 1, got ${threshold}`);
  }
  const rules = compile();

  function matchPhrases(text: string, source: SignalSource, span: readonly [number, number] | undefined, seen: Set<string>, out: Signal[]): void {
    for (const rule of rules) {
      if (seen.has(rule.id)) continue;
      const m = rule.pattern.exec(text);
      if (m === null) continue;
      seen.add(rule.id);
      const start = span ? span[0] : m.index;
      const end = span ? span[1] : m.index + m[0].length;
      out.push({ kind: rule.kind, id: rule.id, weight: rule.weight, start, end, source });
    }
  }

  function score(text: string): InjectionVerdict {
    const signals: Signal[] = [];
    const seen = new Set<string>();
    // Tool results often arrive as JSON text: `\nIgnore` must read as a line break, not `nIgnore`.
    // Each escape becomes as many spaces, so positions stay those of the original.
    const readable = text.includes('\\') ? text.replace(JSON_ESCAPE, escapeToSpaces) : text;
    matchPhrases(readable, 'text', undefined, seen, signals);
    scanHiddenUnicode(text, signals, (decoded, source, span) => matchPhrases(decoded, source, span, seen, signals));
    scanEncodedBlocks(text, signals, seen, (decoded, source, span) => matchPhrases(decoded, source, span, seen, signals));
    let total = 0;
    for (const s of signals) total += s.weight;
    return { score: Math.min(1, Math.round(total * 1000) / 1000), signals };
  }

  return Object.freeze({
    score,
    detect: (text: string) => score(text).score >= threshold,
  });
}

type Rescan = (decoded: string, source: SignalSource, span: readonly [number, number]) => void;

function isZeroWidth(c: number): boolean {
  return (c >= 0x200b && c <= 0x200f) || c === 0x2060 || c === 0xfeff;
}

function isBidiControl(c: number): boolean {
  return (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

/**
 * Unicode tag characters (U+E0000–U+E007F, invisible ASCII look-alikes used for "ASCII
 * smuggling"), zero-width characters and bidi overrides. Tags are decoded and the decoded
 * text is scanned for phrases too; zero-width characters are stripped and the text scanned
 * again, which catches `ig\u200bnore previous instructions`. Legitimate uses are spared:
 * tag sequences after U+1F3F4 (subdivision flags), ZWJ/ZWNJ inside emoji or scripts that
 * need them, a leading byte-order mark.
 */
function scanHiddenUnicode(text: string, out: Signal[], rescan: Rescan): void {
  let tagCount = 0;
  let tagStart = -1;
  let tagEnd = -1;
  let tagText = '';
  let zeroWidth = 0;
  let zwStart = -1;
  let zwEnd = -1;
  let bidi = 0;
  let bidiStart = -1;
  let bidiEnd = -1;
  let rtlScript = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x0590) continue;
    if (c === 0xdb40) {
      const low = text.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdc7f) {
        const flagSequence = tagCount === 0 && i >= 2 && text.charCodeAt(i - 2) === 0xd83c && text.charCodeAt(i - 1) === 0xdff4;
        const continuingFlag = tagStart === -2;
        if (flagSequence || continuingFlag) {
          tagStart = low === 0xdc7f ? -1 : -2;
          i++;
          continue;
        }
        if (tagStart < 0) tagStart = i;
        tagEnd = i + 2;
        tagCount++;
        const ascii = low - 0xdc00;
        if (ascii >= 0x20 && ascii < 0x7f && tagText.length < 4096) tagText += String.fromCharCode(ascii);
        i++;
        continue;
      }
    }
    if (c >= 0x0590 && c <= 0x08ff) rtlScript = true;
    if (isZeroWidth(c)) {
      if (c === 0xfeff && i === 0) continue;
      const prev = i > 0 ? text.charCodeAt(i - 1) : 0;
      const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      // ZWJ in emoji sequences (between surrogates or after VS16) and ZWJ/ZWNJ in Indic/Arabic scripts.
      if ((c === 0x200d || c === 0x200c) && (prev >= 0x0590 || next >= 0xd800)) continue;
      if (c === 0x200e || c === 0x200f) {
        if (rtlScript) continue;
      }
      if (zwStart < 0) zwStart = i;
      zwEnd = i + 1;
      zeroWidth++;
      continue;
    }
    if (isBidiControl(c)) {
      if (bidiStart < 0) bidiStart = i;
      bidiEnd = i + 1;
      bidi++;
    }
  }
  if (tagCount > 0) {
    out.push({ kind: 'hidden-unicode', id: 'unicode-tags', weight: 0.6, start: tagStart, end: tagEnd, source: 'text' });
    if (tagText.length > 0) rescan(tagText, 'unicode-tags', [tagStart, tagEnd]);
  }
  if (zeroWidth > 0) {
    out.push({ kind: 'hidden-unicode', id: 'zero-width', weight: zeroWidth >= 3 ? 0.45 : 0.3, start: zwStart, end: zwEnd, source: 'text' });
    let stripped = '';
    let from = 0;
    for (let i = zwStart; i < zwEnd; i++) {
      if (isZeroWidth(text.charCodeAt(i))) {
        stripped += text.slice(from, i);
        from = i + 1;
      }
    }
    stripped += text.slice(from);
    rescan(stripped, 'zero-width-stripped', [zwStart, zwEnd]);
  }
  if (bidi > 0) {
    out.push({ kind: 'hidden-unicode', id: 'bidi-override', weight: rtlScript ? 0.15 : 0.4, start: bidiStart, end: bidiEnd, source: 'text' });
  }
}

function isBase64Code(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 43 || c === 47 || c === 45 || c === 95;
}

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || ((c | 0x20) >= 97 && (c | 0x20) <= 102);
}

/**
 * Runs of at least 40 base64/base64url characters (hex is a subset): decoded, and when the
 * result is mostly printable text, scanned for phrases. A decoded block that reads like
 * instructions but matches no phrase still counts a little.
 */
function scanEncodedBlocks(text: string, out: Signal[], seen: Set<string>, rescan: Rescan): void {
  let decodedBlocks = 0;
  let i = 0;
  while (i < text.length && decodedBlocks < MAX_DECODED_BLOCKS) {
    if (!isBase64Code(text.charCodeAt(i))) {
      i++;
      continue;
    }
    const start = i;
    let hex = true;
    while (i < text.length && isBase64Code(text.charCodeAt(i))) {
      if (hex && !isHex(text.charCodeAt(i))) hex = false;
      i++;
    }
    const end = i;
    while (i < text.length && text.charCodeAt(i) === 61) i++;
    const length = end - start;
    if (length < MIN_ENCODED || length > MAX_ENCODED) continue;
    decodedBlocks++;
    const block = text.slice(start, end);
    const decoded = hex && length % 2 === 0 ? Buffer.from(block, 'hex').toString('latin1') : Buffer.from(block, 'base64').toString('latin1');
    if (!mostlyPrintable(decoded)) continue;
    const before = out.length;
    rescan(decoded, hex ? 'hex' : 'base64', [start, i]);
    const foundPhrases = out.length > before;
    if (foundPhrases || ENCODED_KEYWORDS.test(decoded)) {
      const id = 'encoded-instructions';
      if (!seen.has(id)) {
        seen.add(id);
        out.push({ kind: 'encoded-payload', id, weight: foundPhrases ? 0.3 : 0.15, start, end: i, source: hex ? 'hex' : 'base64' });
      }
    }
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
