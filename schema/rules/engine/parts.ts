import type { FeatureType, RuleHook, RulePart } from '../../snapshot/index.js';
import { decodeUri, reencodeUri } from './uri-text.js';

/**
 * Where content rules look in an MCP message, JSON-aware: only string *values* of the
 * scanned part are read and rewritten; keys, numbers, structure and everything outside
 * the part (ids, names, `_meta`, binary `blob`/`data`) are never touched, so a rewritten
 * message has exactly the shape of the original.
 *
 * Every string found is a {@link Slot}; `extract` lists them in a fixed order and
 * `rebuild` puts new values back in that same order, copying only the containers on the
 * path to a changed string (the original objects are never mutated: the audit stage may
 * still hold them). Both walk with an explicit stack, so nesting depth cannot overflow
 * the call stack.
 */

/** One string value of the scanned part. */
export interface Slot {
  /** The nearest property name above the value (array elements inherit it), `''` when none; read as context, never scanned. */
  readonly key: string;
  readonly value: string;
}

/** What a leg of one method scans: the part, how to list its strings and how to put them back. */
export interface PartAccess {
  readonly part: RulePart;
  /** The value a custom rule engine receives as the payload (the arguments object, or the whole result). */
  payload(message: Record<string, unknown>): unknown;
  /** Replaces the payload with an engine's validated `modify` payload. */
  replacePayload(message: Record<string, unknown>, payload: unknown): Record<string, unknown>;
  /** Why an engine's `modify` payload cannot stand in for this part, or undefined when it can. */
  checkPayload(payload: unknown): string | undefined;
  /** The strings to scan, in a fixed order. */
  extract(message: Record<string, unknown>, limits: WalkLimits): Slot[];
  /** The message with the strings replaced by `values` (same order as `extract`). */
  rebuild(message: Record<string, unknown>, values: readonly string[], limits: WalkLimits): Record<string, unknown>;
}

export interface WalkLimits {
  /** Containers nested deeper than this make the part unreadable ({@link PartTooComplexError}). */
  readonly maxDepth: number;
  /** More string characters than this in one part make it unreadable. */
  readonly maxChars: number;
}

export const DEFAULT_WALK_LIMITS: WalkLimits = Object.freeze({ maxDepth: 128, maxChars: 32 * 1024 * 1024 });

/** The part is nested deeper or holds more text than the rules are allowed to read; rules apply their failure mode. */
export class PartTooComplexError extends Error {
  override readonly name = 'PartTooComplexError';
}

type Json = unknown;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Collects every string value under `root` (depth-first, array order, object key order).
 * `chars` carries the running character count across several roots of one part.
 *
 * Iterative, with one frame per open container (none per value): a container's children
 * are read in order, strings listed on the spot, and a child container is entered after
 * its parent's frame records where to resume.
 */
function collectStrings(root: Json, key: string, out: Slot[], limits: WalkLimits, chars: { n: number }): void {
  if (typeof root === 'string') {
    addString(root, key, out, limits, chars);
    return;
  }
  if (typeof root !== 'object' || root === null) return;
  if (limits.maxDepth <= 0) throw new PartTooComplexError(`the scanned part is nested deeper than ${limits.maxDepth} levels`);
  /** `keys` is null for an array, whose elements inherit `key`. */
  interface Frame {
    readonly container: object;
    readonly keys: readonly string[] | null;
    readonly key: string;
    next: number;
  }
  const stack: Frame[] = [{ container: root, keys: Array.isArray(root) ? null : Object.keys(root), key, next: 0 }];
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    const { container, keys } = frame;
    const size = keys === null ? (container as unknown[]).length : keys.length;
    let i = frame.next;
    for (; i < size; i++) {
      const childKey = keys === null ? frame.key : keys[i]!;
      const child = keys === null ? (container as unknown[])[i] : (container as Record<string, unknown>)[childKey];
      if (typeof child === 'string') {
        addString(child, childKey, out, limits, chars);
      } else if (typeof child === 'object' && child !== null) {
        // The child's depth is the number of containers open above it.
        if (stack.length >= limits.maxDepth) throw new PartTooComplexError(`the scanned part is nested deeper than ${limits.maxDepth} levels`);
        frame.next = i + 1;
        stack.push({ container: child, keys: Array.isArray(child) ? null : Object.keys(child), key: childKey, next: 0 });
        break;
      }
    }
    if (i >= size) stack.pop();
  }
}

function addString(value: string, key: string, out: Slot[], limits: WalkLimits, chars: { n: number }): void {
  chars.n += value.length;
  if (chars.n > limits.maxChars) throw new PartTooComplexError(`the scanned part holds more than ${limits.maxChars} characters of text`);
  out.push({ key, value });
}


/**
 * `root` with its strings replaced, in `collectStrings` order, by `values[cursor.i…]`.
 * Containers are copied only when something under them changed. Iterative: each
 * container is entered (its children pushed) and later finished (rebuilt from its
 * children's results) through an explicit stack.
 */
function replaceStrings(root: Json, values: readonly string[], cursor: { i: number }): Json {
  if (typeof root === 'string') {
    const next = values[cursor.i++]!;
    return next;
  }
  if (typeof root !== 'object' || root === null) return root;
  interface Frame {
    readonly container: Record<string, unknown> | unknown[];
    readonly keys: readonly string[] | null;
    index: number;
    copy: Record<string, unknown> | unknown[] | null;
  }
  const open = (container: object): Frame =>
    Array.isArray(container) ? { container, keys: null, index: 0, copy: null } : { container: container as Record<string, unknown>, keys: Object.keys(container), index: 0, copy: null };
  const stack: Frame[] = [open(root)];
  let finished: Json = undefined;
  let hasFinished = false;
  for (;;) {
    const frame = stack[stack.length - 1]!;
    const length = frame.keys === null ? (frame.container as unknown[]).length : frame.keys.length;
    if (hasFinished) {
      // The child at frame.index - 1 was a container; store its (maybe new) value.
      const k = frame.index - 1;
      const original = frame.keys === null ? (frame.container as unknown[])[k] : (frame.container as Record<string, unknown>)[frame.keys[k]!];
      if (finished !== original) setChild(frame, k, finished);
      hasFinished = false;
    }
    if (frame.index >= length) {
      stack.pop();
      finished = frame.copy ?? frame.container;
      if (stack.length === 0) return finished;
      hasFinished = true;
      continue;
    }
    const k = frame.index++;
    const child = frame.keys === null ? (frame.container as unknown[])[k] : (frame.container as Record<string, unknown>)[frame.keys[k]!];
    if (typeof child === 'string') {
      const next = values[cursor.i++]!;
      if (next !== child) setChild(frame, k, next);
    } else if (typeof child === 'object' && child !== null) {
      stack.push(open(child));
    }
  }

  function setChild(frame: Frame, k: number, value: Json): void {
    if (frame.copy === null) frame.copy = Array.isArray(frame.container) ? [...frame.container] : { ...frame.container };
    if (frame.keys === null) (frame.copy as unknown[])[k] = value;
    else (frame.copy as Record<string, unknown>)[frame.keys[k]!] = value;
  }
}

/** A whole-message payload replaced by an engine's `modify`: the message's own `_meta` is kept. */
const keepMeta = (message: Record<string, unknown>, payload: unknown) => ({ ...(payload as Record<string, unknown>), ...(message._meta === undefined ? {} : { _meta: message._meta }) });

/** The part's arguments object (`tools/call`, `prompts/get` requests). */
function argumentsAccess(part: RulePart, stringValuesOnly: boolean): PartAccess {
  return {
    part,
    payload: (params) => params.arguments ?? {},
    replacePayload: (params, payload) => ({ ...params, arguments: payload }),
    checkPayload(payload) {
      if (!isRecord(payload)) return 'arguments must be a JSON object';
      if (stringValuesOnly && Object.values(payload).some((v) => typeof v !== 'string')) return 'prompt arguments must all be strings';
      return undefined;
    },
    extract(params, limits) {
      const out: Slot[] = [];
      if (params.arguments !== undefined) collectStrings(params.arguments, '', out, limits, { n: 0 });
      return out;
    },
    rebuild(params, values) {
      if (params.arguments === undefined) return params;
      const next = replaceStrings(params.arguments, values, { i: 0 });
      return next === params.arguments ? params : { ...params, arguments: next };
    },
  };
}

/**
 * Text inside a content block: `text` of a text block, `resource.text` of an embedded
 * text resource. Images, audio and blobs are binary and are not scanned.
 */
function contentText(block: unknown): { holder: Record<string, unknown>; inResource: boolean } | undefined {
  if (!isRecord(block)) return undefined;
  if (block.type === 'text' && typeof block.text === 'string') return { holder: block, inResource: false };
  if (block.type === 'resource' && isRecord(block.resource) && typeof block.resource.text === 'string') return { holder: block.resource, inResource: true };
  return undefined;
}

function withContentText(block: unknown, text: string): unknown {
  const found = contentText(block)!;
  if (found.holder.text === text) return block;
  const b = block as Record<string, unknown>;
  return found.inResource ? { ...b, resource: { ...found.holder, text } } : { ...b, text };
}

const toolResults: PartAccess = {
  part: 'toolResults',
  payload: (result) => result,
  replacePayload: keepMeta,
  checkPayload(payload) {
    if (!isRecord(payload)) return 'a tool result must be a JSON object';
    if (!Array.isArray(payload.content)) return 'a tool result must have a "content" array';
    for (const block of payload.content) {
      if (!isRecord(block) || typeof block.type !== 'string') return 'every content block must be an object with a string "type"';
      if (block.type === 'text' && typeof block.text !== 'string') return 'a text content block must have a string "text"';
    }
    if (payload.structuredContent !== undefined && !isRecord(payload.structuredContent)) return '"structuredContent" must be a JSON object';
    if (payload.isError !== undefined && typeof payload.isError !== 'boolean') return '"isError" must be a boolean';
    return undefined;
  },
  extract(result, limits) {
    const out: Slot[] = [];
    const chars = { n: 0 };
    if (Array.isArray(result.content)) {
      for (const block of result.content) {
        const found = contentText(block);
        if (found) collectStrings(found.holder.text, '', out, limits, chars);
      }
    }
    if (result.structuredContent !== undefined) collectStrings(result.structuredContent, '', out, limits, chars);
    return out;
  },
  rebuild(result, values) {
    let i = 0;
    let next = result;
    if (Array.isArray(result.content)) {
      let changed = false;
      const content = result.content.map((block: unknown) => {
        if (!contentText(block)) return block;
        const replaced = withContentText(block, values[i++]!);
        if (replaced !== block) changed = true;
        return replaced;
      });
      if (changed) next = { ...next, content };
    }
    if (result.structuredContent !== undefined) {
      const structured = replaceStrings(result.structuredContent, values, { i });
      if (structured !== result.structuredContent) next = { ...next, structuredContent: structured };
    }
    return next;
  },
};

const resourceContents: PartAccess = {
  part: 'resourceContents',
  payload: (result) => result,
  replacePayload: keepMeta,
  checkPayload(payload) {
    if (!isRecord(payload) || !Array.isArray(payload.contents)) return 'a resource result must be an object with a "contents" array';
    for (const item of payload.contents) {
      if (!isRecord(item) || typeof item.uri !== 'string') return 'every resource content must be an object with a string "uri"';
      if (typeof item.text !== 'string' && typeof item.blob !== 'string') return 'every resource content must have a string "text" or "blob"';
    }
    return undefined;
  },
  extract(result, limits) {
    const out: Slot[] = [];
    const chars = { n: 0 };
    if (Array.isArray(result.contents)) {
      for (const item of result.contents) if (isRecord(item) && typeof item.text === 'string') collectStrings(item.text, '', out, limits, chars);
    }
    return out;
  },
  rebuild(result, values) {
    if (!Array.isArray(result.contents)) return result;
    let i = 0;
    let changed = false;
    const contents = result.contents.map((item: unknown) => {
      if (!isRecord(item) || typeof item.text !== 'string') return item;
      const text = values[i++]!;
      if (text === item.text) return item;
      changed = true;
      return { ...item, text };
    });
    return changed ? { ...result, contents } : result;
  },
};

const promptMessages: PartAccess = {
  part: 'promptMessages',
  payload: (result) => result,
  replacePayload: keepMeta,
  checkPayload(payload) {
    if (!isRecord(payload) || !Array.isArray(payload.messages)) return 'a prompt result must be an object with a "messages" array';
    for (const message of payload.messages) {
      if (!isRecord(message) || (message.role !== 'user' && message.role !== 'assistant')) return 'every prompt message must have role "user" or "assistant"';
      if (!isRecord(message.content) || typeof message.content.type !== 'string') return 'every prompt message must have a content object with a string "type"';
      if (message.content.type === 'text' && typeof message.content.text !== 'string') return 'a text message content must have a string "text"';
    }
    return undefined;
  },
  extract(result, limits) {
    const out: Slot[] = [];
    const chars = { n: 0 };
    if (Array.isArray(result.messages)) {
      for (const message of result.messages) {
        const found = isRecord(message) ? contentText(message.content) : undefined;
        if (found) collectStrings(found.holder.text, '', out, limits, chars);
      }
    }
    return out;
  },
  rebuild(result, values) {
    if (!Array.isArray(result.messages)) return result;
    let i = 0;
    let changed = false;
    const messages = result.messages.map((message: unknown) => {
      if (!isRecord(message) || !contentText(message.content)) return message;
      const content = withContentText(message.content, values[i++]!);
      if (content === message.content) return message;
      changed = true;
      return { ...message, content };
    });
    return changed ? { ...result, messages } : result;
  },
};

const toolArguments = argumentsAccess('toolArguments', false);
const promptArguments = argumentsAccess('promptArguments', true);

/**
 * The resource URI a request names (`params.uri` of `resources/read`, `resources/subscribe`
 * and `resources/unsubscribe`), request leg: the client chose it, often filling in a
 * template's variables. One value, scanned percent-decoded and re-encoded after a rewrite
 * (`uri-text.ts`). Engines get `{ uri }` as sent; a `modify` must keep a non-empty `uri`.
 */
const resourceUri: PartAccess = {
  part: 'resourceUris',
  payload: (params) => ({ uri: params.uri }),
  replacePayload: (params, payload) => ({ ...params, uri: (payload as { uri: string }).uri }),
  checkPayload(payload) {
    if (!isRecord(payload) || typeof payload.uri !== 'string' || payload.uri === '') return 'a resource request must be an object with a non-empty string "uri"';
    return undefined;
  },
  extract(params, limits) {
    if (typeof params.uri !== 'string') return [];
    if (params.uri.length > limits.maxChars) throw new PartTooComplexError(`the scanned part holds more than ${limits.maxChars} characters of text`);
    return [{ key: 'uri', value: decodeUri(params.uri).text }];
  },
  rebuild(params, values) {
    if (typeof params.uri !== 'string') return params;
    const before = decodeUri(params.uri);
    const after = values[0]!;
    return after === before.text ? params : { ...params, uri: reencodeUri(params.uri, before, after) };
  },
};

/**
 * `completion/complete`, request leg: the value being completed (`params.argument.value`)
 * and the arguments already given (`params.context.arguments`) are what the user is
 * typing: prompt arguments (`promptArguments`), or the variables of a resource template,
 * which become part of the URI the client will read (`resourceUris`). Engines get them as
 * one arguments object, as for `prompts/get` (`{ ...context.arguments, [argument.name]:
 * argument.value }`); a `modify` writes the argument's key back to `argument.value`
 * (absent: the empty string) and the other keys the context had back to the context.
 */
const completionArgument = (part: RulePart, what: string): PartAccess => ({
  part,
  payload(params) {
    const argument = isRecord(params.argument) ? params.argument : {};
    const context = isRecord(params.context) && isRecord(params.context.arguments) ? params.context.arguments : {};
    return typeof argument.name === 'string' ? { ...context, [argument.name]: argument.value } : { ...context };
  },
  replacePayload(params, payload) {
    const given = payload as Record<string, unknown>;
    let next = params;
    const argument = params.argument;
    if (isRecord(argument) && typeof argument.name === 'string') {
      const value = typeof given[argument.name] === 'string' ? given[argument.name] : '';
      next = { ...next, argument: { ...argument, value } };
    }
    const context = params.context;
    if (isRecord(context) && isRecord(context.arguments)) {
      const skip = isRecord(argument) ? argument.name : undefined;
      const args: Record<string, unknown> = {};
      for (const key of Object.keys(context.arguments)) if (key !== skip && typeof given[key] === 'string') args[key] = given[key];
      next = { ...next, context: { ...context, arguments: args } };
    }
    return next;
  },
  checkPayload(payload) {
    if (!isRecord(payload)) return 'arguments must be a JSON object';
    if (Object.values(payload).some((v) => typeof v !== 'string')) return `${what} must all be strings`;
    return undefined;
  },
  extract(params, limits) {
    const out: Slot[] = [];
    const chars = { n: 0 };
    const { argument, context } = params;
    if (isRecord(argument) && argument.value !== undefined) collectStrings(argument.value, typeof argument.name === 'string' ? argument.name : '', out, limits, chars);
    if (isRecord(context) && context.arguments !== undefined) collectStrings(context.arguments, '', out, limits, chars);
    return out;
  },
  rebuild(params, values) {
    const cursor = { i: 0 };
    let next = params;
    const { argument, context } = params;
    if (isRecord(argument) && argument.value !== undefined) {
      const value = replaceStrings(argument.value, values, cursor);
      if (value !== argument.value) next = { ...next, argument: { ...argument, value } };
    }
    if (isRecord(context) && context.arguments !== undefined) {
      const args = replaceStrings(context.arguments, values, cursor);
      if (args !== context.arguments) next = { ...next, context: { ...context, arguments: args } };
    }
    return next;
  },
});
const promptCompletionArgument = completionArgument('promptArguments', 'prompt arguments');
const resourceCompletionArgument = completionArgument('resourceUris', 'resource template variables');

/**
 * `completion/complete` results, response leg: the suggested values
 * (`result.completion.values`). They come from the server of the prompt or resource the
 * completion is for, so they are scanned as that server's answer: `promptMessages` for a
 * prompt argument, `resourceContents` for a resource (template) argument. Engines get the
 * whole result.
 */
function completionValues(part: RulePart): PartAccess {
  return {
    part,
    payload: (result) => result,
    replacePayload: keepMeta,
    checkPayload(payload) {
      if (!isRecord(payload) || !isRecord(payload.completion)) return 'a completion result must be an object with a "completion" object';
      const { values } = payload.completion;
      if (!Array.isArray(values) || values.some((v) => typeof v !== 'string')) return 'completion "values" must be an array of strings';
      if (values.length > MAX_COMPLETION_VALUES) return `completion "values" must hold at most ${MAX_COMPLETION_VALUES} items`;
      return undefined;
    },
    extract(result, limits) {
      const out: Slot[] = [];
      if (isRecord(result.completion) && result.completion.values !== undefined) collectStrings(result.completion.values, '', out, limits, { n: 0 });
      return out;
    },
    rebuild(result, values) {
      const completion = result.completion;
      if (!isRecord(completion) || completion.values === undefined) return result;
      const next = replaceStrings(completion.values, values, { i: 0 });
      return next === completion.values ? result : { ...result, completion: { ...completion, values: next } };
    },
  };
}

/** The MCP spec's cap on `completion.values`. */
const MAX_COMPLETION_VALUES = 100;
const promptCompletionValues = completionValues('promptMessages');
const resourceCompletionValues = completionValues('resourceContents');

/**
 * The part a leg of a method scans, or undefined when rules have nothing to read there.
 * `featureType` is the type of the feature the call routed to (for `completion/complete`:
 * `prompts` for a prompt argument, a resource or template type otherwise).
 */
// ---------------------------------------------------------------- relayed requests

/**
 * Text blocks of a sampling message's or result's `content`: one block, or (sampling with
 * tools, 2025-11-25) an array of blocks. Images, audio, tool uses and results are not text.
 */
function samplingBlocks(content: unknown): unknown[] {
  return Array.isArray(content) ? content : [content];
}

function samplingContentSlots(content: unknown, out: Slot[], limits: WalkLimits, chars: { n: number }): void {
  for (const block of samplingBlocks(content)) {
    const found = contentText(block);
    if (found) collectStrings(found.holder.text, '', out, limits, chars);
  }
}

/** `content` with its text blocks replaced by `values[cursor.i…]`, the same object when nothing changed. */
function samplingContentRebuilt(content: unknown, values: readonly string[], cursor: { i: number }): unknown {
  if (!Array.isArray(content)) return contentText(content) ? withContentText(content, values[cursor.i++]!) : content;
  let changed = false;
  const blocks = content.map((block: unknown) => {
    if (!contentText(block)) return block;
    const next = withContentText(block, values[cursor.i++]!);
    if (next !== block) changed = true;
    return next;
  });
  return changed ? blocks : content;
}

function checkSamplingContent(content: unknown, what: string): string | undefined {
  for (const block of samplingBlocks(content)) {
    if (!isRecord(block) || typeof block.type !== 'string') return `every ${what} content block must be an object with a string "type"`;
    if (block.type === 'text' && typeof block.text !== 'string') return `a text ${what} content block must have a string "text"`;
  }
  return undefined;
}

/** `sampling/createMessage` as the upstream asks it: each message's text, then the system prompt. */
const samplingRequest: PartAccess = {
  part: 'relayedRequests',
  payload: (params) => params,
  replacePayload: keepMeta,
  checkPayload(payload) {
    if (!isRecord(payload) || !Array.isArray(payload.messages)) return 'a sampling request must be an object with a "messages" array';
    for (const message of payload.messages) {
      if (!isRecord(message) || (message.role !== 'user' && message.role !== 'assistant')) return 'every sampling message must have role "user" or "assistant"';
      const wrong = checkSamplingContent(message.content, 'sampling message');
      if (wrong) return wrong;
    }
    if (payload.systemPrompt !== undefined && typeof payload.systemPrompt !== 'string') return '"systemPrompt" must be a string';
    return undefined;
  },
  extract(params, limits) {
    const out: Slot[] = [];
    const chars = { n: 0 };
    if (Array.isArray(params.messages)) for (const message of params.messages) if (isRecord(message)) samplingContentSlots(message.content, out, limits, chars);
    if (typeof params.systemPrompt === 'string') collectStrings(params.systemPrompt, 'systemPrompt', out, limits, chars);
    return out;
  },
  rebuild(params, values) {
    const cursor = { i: 0 };
    let next = params;
    if (Array.isArray(params.messages)) {
      let changed = false;
      const messages = params.messages.map((message: unknown) => {
        if (!isRecord(message)) return message;
        const content = samplingContentRebuilt(message.content, values, cursor);
        if (content === message.content) return message;
        changed = true;
        return { ...message, content };
      });
      if (changed) next = { ...next, messages };
    }
    if (typeof params.systemPrompt === 'string') {
      const systemPrompt = values[cursor.i++]!;
      if (systemPrompt !== params.systemPrompt) next = { ...next, systemPrompt };
    }
    return next;
  },
};

/** What the client's model answered a sampling request: its text content. */
const samplingAnswer: PartAccess = {
  part: 'relayedAnswers',
  payload: (result) => result,
  replacePayload: keepMeta,
  checkPayload(payload) {
    if (!isRecord(payload) || (payload.role !== 'user' && payload.role !== 'assistant')) return 'a sampling result must be an object with role "user" or "assistant"';
    if (typeof payload.model !== 'string') return 'a sampling result must name its "model"';
    return checkSamplingContent(payload.content, 'sampling result');
  },
  extract(result, limits) {
    const out: Slot[] = [];
    samplingContentSlots(result.content, out, limits, { n: 0 });
    return out;
  },
  rebuild(result, values) {
    const content = samplingContentRebuilt(result.content, values, { i: 0 });
    return content === result.content ? result : { ...result, content };
  },
};

/**
 * `elicitation/create` as the upstream asks it: the message shown to the person, then, in
 * URL mode, the URL the person is asked to open (keyed `url`), where a server would send
 * someone to a phishing page or carry data out in a query string.
 */
const elicitationRequest: PartAccess = {
  part: 'relayedRequests',
  payload: (params) => params,
  replacePayload: keepMeta,
  checkPayload(payload) {
    if (!isRecord(payload) || typeof payload.message !== 'string') return 'an elicitation request must be an object with a string "message"';
    if (payload.mode === 'url' && typeof payload.url !== 'string') return 'a URL-mode elicitation request must have a string "url"';
    return undefined;
  },
  extract(params, limits) {
    const out: Slot[] = [];
    const chars = { n: 0 };
    if (typeof params.message === 'string') collectStrings(params.message, '', out, limits, chars);
    if (params.mode === 'url' && typeof params.url === 'string') collectStrings(params.url, 'url', out, limits, chars);
    return out;
  },
  rebuild(params, values) {
    let next = params;
    let i = 0;
    if (typeof params.message === 'string' && values[i++] !== params.message) next = { ...next, message: values[0]! };
    if (params.mode === 'url' && typeof params.url === 'string' && values[i] !== params.url) next = { ...next, url: values[i]! };
    return next;
  },
};

/** What a person entered for an elicitation: the string values of `content`, each keyed by its field name. */
const elicitationAnswer: PartAccess = {
  part: 'relayedAnswers',
  payload: (result) => result,
  replacePayload: keepMeta,
  checkPayload(payload) {
    if (!isRecord(payload) || (payload.action !== 'accept' && payload.action !== 'decline' && payload.action !== 'cancel')) {
      return 'an elicitation result must be an object with action "accept", "decline" or "cancel"';
    }
    if (payload.content !== undefined && !isRecord(payload.content)) return 'elicitation "content" must be a JSON object';
    return undefined;
  },
  extract(result, limits) {
    const out: Slot[] = [];
    if (isRecord(result.content)) collectStrings(result.content, '', out, limits, { n: 0 });
    return out;
  },
  rebuild(result, values) {
    if (!isRecord(result.content)) return result;
    const content = replaceStrings(result.content, values, { i: 0 });
    return content === result.content ? result : { ...result, content };
  },
};

/**
 * An upstream's JSON-RPC error in place of a result, read as the part the result would have
 * been (`toolResults`, `promptMessages`, `resourceContents`, …): its message, then the
 * strings of its `data`. Clients hand such errors to the model as readily as results, so a
 * server must not get past a rule by failing instead of answering. The message is `{ code,
 * message, data? }`; engines get it whole, and a `modify` keeps the code.
 */
const errorParts = new Map<RulePart, PartAccess>();
function errorAccess(part: RulePart): PartAccess {
  let access = errorParts.get(part);
  if (access === undefined) {
    access = {
      part,
      payload: (error) => error,
      replacePayload: (error, payload) => {
        const { message, data } = payload as { message: string; data?: unknown };
        return { code: error.code, message, ...(data === undefined ? {} : { data }) };
      },
      checkPayload(payload) {
        if (!isRecord(payload) || typeof payload.message !== 'string') return 'an error must be an object with a string "message"';
        return undefined;
      },
      extract(error, limits) {
        const out: Slot[] = [];
        const chars = { n: 0 };
        if (typeof error.message === 'string') collectStrings(error.message, 'message', out, limits, chars);
        if (error.data !== undefined) collectStrings(error.data, '', out, limits, chars);
        return out;
      },
      rebuild(error, values) {
        const cursor = { i: 0 };
        let next = error;
        if (typeof error.message === 'string') {
          const message = values[cursor.i++]!;
          if (message !== error.message) next = { ...next, message };
        }
        if (error.data !== undefined) {
          const data = replaceStrings(error.data, values, cursor);
          if (data !== error.data) next = { ...next, data };
        }
        return next;
      },
    };
    errorParts.set(part, access);
  }
  return access;
}

/** How an upstream's error answering `method` is read: as the part of its result, or not at all. */
export function errorPartOf(method: string, featureType?: FeatureType): PartAccess | undefined {
  const answer = partOf(method, 'response', featureType);
  return answer === undefined ? undefined : errorAccess(answer.part);
}

export function partOf(method: string, leg: RuleHook, featureType?: FeatureType): PartAccess | undefined {
  switch (method) {
    // Relayed during a call, in the other direction: the upstream asks on the response leg,
    // the client's answer goes back on the request leg. `roots/list` carries no content.
    case 'sampling/createMessage':
      return leg === 'response' ? samplingRequest : samplingAnswer;
    case 'elicitation/create':
      return leg === 'response' ? elicitationRequest : elicitationAnswer;
    case 'tools/call':
      return leg === 'request' ? toolArguments : toolResults;
    case 'prompts/get':
      return leg === 'request' ? promptArguments : promptMessages;
    case 'resources/read':
      return leg === 'request' ? resourceUri : resourceContents;
    case 'resources/subscribe':
    case 'resources/unsubscribe':
      // Unsubscribe too: after a rewritten subscribe it must name the same (rewritten) URI, and never the original.
      return leg === 'request' ? resourceUri : undefined;
    case 'completion/complete':
      if (featureType === 'prompts') return leg === 'request' ? promptCompletionArgument : promptCompletionValues;
      return leg === 'request' ? resourceCompletionArgument : resourceCompletionValues;
    default:
      return undefined;
  }
}

