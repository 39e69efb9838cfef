import { Agent, request } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDataPlane, type DataPlane } from '../../../data-plane/app.js';
import { InMemorySnapshotSource } from '../../../data-plane/snapshot/snapshot-source.js';
import { hashFeatureDefinition } from '../../../schema/snapshot/index.js';
import { startEverythingHttp, type RunningServer } from '../../fixtures/mcp/spawn.js';
import { TOKENS, fixtureSnapshot } from '../../unit/data-plane/fixtures.js';

const SECRET = 'fuzz-test-session-secret-0123456789abcdef';
const SEED = Number(process.env.FUZZ_SEED ?? 20261122);
const MESSAGES = 3_000;
const TIME_BUDGET_MS = 60_000;
const CONCURRENCY = 8;
const MAX_BODY = 64 * 1024;

let everything: RunningServer;
let plane: DataPlane;
let port: number;
const snapshots = new InMemorySnapshotSource();
const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
const processFaults: unknown[] = [];
const onFault = (error: unknown) => processFaults.push(error);

beforeAll(async () => {
  process.on('unhandledRejection', onFault);
  process.on('uncaughtException', onFault);
  everything = await startEverythingHttp();
  const probe = new Client({ name: 'probe', version: '1' });
  await probe.connect(new StreamableHTTPClientTransport(new URL(everything.url)));
  const echo = (await probe.listTools()).tools.find((tool) => tool.name === 'echo')!;
  await probe.close();
  snapshots.offer(
    fixtureSnapshot({
      httpUpstream: { kind: 'remote', url: everything.url, transport: 'streamable-http', allowInsecure: false },
      liveHashes: { 'tools:echo': hashFeatureDefinition('tools', echo as Record<string, unknown>) },
    }),
  );
  plane = buildDataPlane(
    {
      port: 0,
      sessionSecret: SECRET,
      maxBodyBytes: MAX_BODY,
      listTimeoutMs: 2_000,
      callTimeoutMs: 5_000,
      rateLimit: { perIp: { capacity: 0 }, perToken: { capacity: 0 } },
    },
    { snapshots },
  );
  port = (await plane.listen()).port;
}, 60_000);

afterAll(async () => {
  process.off('unhandledRejection', onFault);
  process.off('uncaughtException', onFault);
  agent.destroy();
  await plane?.close();
  await everything?.close();
});

/** mulberry32: a small seeded PRNG, so a failure can be replayed with FUZZ_SEED. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Probe {
  readonly kind: string;
  readonly method: string;
  readonly headers: Record<string, string>;
  readonly body?: string | Buffer;
}

interface Answer {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

function send(probe: Probe): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: probe.method, path: '/mcp/eng', headers: probe.headers, agent }, (res) => {
      const contentType = String(res.headers['content-type'] ?? '');
      // A GET stream stays open by design: its headers are the answer.
      if (probe.method === 'GET' && contentType.startsWith('text/event-stream')) {
        res.destroy();
        resolve({ status: res.statusCode ?? 0, contentType, body: '' });
        return;
      }
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(20_000, () => req.destroy(new Error(`no answer within 20 s to ${probe.kind}`)));
    req.on('error', reject);
    req.end(probe.body);
  });
}

/** Checks one answer is a well-formed HTTP response carrying a JSON-RPC error or success (or nothing where the spec says so). */
function check(probe: Probe, answer: Answer): string | undefined {
  const where = `${probe.kind} ${probe.method} → ${answer.status} ${answer.contentType} ${answer.body.slice(0, 200)}`;
  if (![200, 202, 400, 401, 403, 404, 405, 406, 409, 413, 415].includes(answer.status)) return `unexpected status: ${where}`;
  if (answer.status === 202 || (probe.method === 'DELETE' && answer.status === 200) || (probe.method === 'GET' && answer.status === 200)) {
    return answer.body === '' ? undefined : `expected no body: ${where}`;
  }
  let messages: unknown[];
  try {
    if (answer.contentType.startsWith('text/event-stream')) {
      messages = answer.body
        .split('\n')
        .filter((line) => line.startsWith('data: '))
        .map((line) => JSON.parse(line.slice(6)) as unknown);
      if (messages.length === 0) return `empty event stream: ${where}`;
      messages = messages.slice(-1); // the answer comes last
    } else if (answer.contentType.startsWith('application/json')) {
      messages = [JSON.parse(answer.body) as unknown];
    } else {
      return `unexpected content type: ${where}`;
    }
  } catch {
    return `body is not JSON: ${where}`;
  }
  for (const message of messages) {
    const m = message as { jsonrpc?: unknown; id?: unknown; result?: unknown; error?: { code?: unknown; message?: unknown } };
    if (typeof m !== 'object' || m === null || m.jsonrpc !== '2.0') return `not JSON-RPC 2.0: ${where}`;
    if (('result' in m) === ('error' in m)) return `needs exactly one of result and error: ${where}`;
    if ('error' in m && (!Number.isInteger(m.error?.code) || typeof m.error?.message !== 'string')) return `malformed error: ${where}`;
    if (answer.status >= 400 && !('error' in m)) return `an HTTP error without a JSON-RPC error: ${where}`;
  }
  return undefined;
}

describe('fuzzing the MCP endpoint', () => {
  it(`answers ${MESSAGES} random and mutated messages well-formed, with no crash, no unhandled rejection and no leaked upstream session`, async () => {
    const random = prng(SEED);
    const int = (n: number) => Math.floor(random() * n);
    const pick = <T,>(items: readonly T[]): T => items[int(items.length)]!;
    const randomText = (max: number) => Array.from({ length: int(max) }, () => String.fromCharCode(int(0x2fff) + 1)).join('');

    // Real sessions to aim the mutations at.
    const session = await sessionOf(TOKENS.eng);
    const otherSession = await sessionOf(TOKENS.machine);

    const methods = [
      'initialize', 'ping', 'tools/list', 'tools/call', 'prompts/list', 'prompts/get', 'resources/list', 'resources/templates/list',
      'resources/read', 'resources/subscribe', 'resources/unsubscribe', 'completion/complete', 'logging/setLevel',
      'notifications/initialized', 'notifications/cancelled', 'notifications/progress', 'sampling/createMessage', 'made/up', '', 'rpc.discover',
    ];
    const ids: unknown[] = [1, 0, -1, 2 ** 53 + 2, 1e308, 1.5, 'x', 'y'.repeat(5_000), null, {}, [], true];
    const values: unknown[] = [null, true, 0, -7, 1e400, 'text', '', [], {}, [1, 'a'], { nested: { deep: [null] } }, 'ü'.repeat(300)];
    const validParams = (method: string): Record<string, unknown> => {
      switch (method) {
        case 'tools/call':
          return { name: pick(['web__echo', 'local__echo', 'dead__echo', 'web__get-sum', 'web__get-env', 'nope', '']), arguments: { message: randomText(20) } };
        case 'prompts/get':
          return { name: pick(['local__simple-prompt', 'x', '']) };
        case 'resources/read':
        case 'resources/subscribe':
          return { uri: pick(['web+demo://resource/static/document/architecture.md', 'web+demo://resource/dynamic/text/3', 'file:///etc/passwd', randomText(30)]) };
        case 'notifications/cancelled':
          return { requestId: pick(ids), reason: 'fuzz' };
        case 'initialize':
          return { protocolVersion: pick(['2025-11-25', '2025-06-18', '2025-03-26', '1999-01-01', 7]), capabilities: pick(values), clientInfo: pick(values) };
        default:
          return {};
      }
    };
    const message = (): Record<string, unknown> => {
      const method = pick(methods);
      const m: Record<string, unknown> = { jsonrpc: '2.0', method, params: validParams(method) };
      if (!method.startsWith('notifications/') || random() < 0.1) m.id = pick(ids);
      return m;
    };
    const mutate = (m: Record<string, unknown>): Record<string, unknown> => {
      const copy = { ...m };
      switch (int(7)) {
        case 0: copy.jsonrpc = pick(values); break;
        case 1: copy.method = pick(values); break;
        case 2: copy.params = pick(values); break;
        case 3: delete copy.params; break;
        case 4: copy.id = pick(values); break;
        case 5: copy[randomText(5)] = pick(values); break;
        default: copy.result = pick(values); delete copy.method; break;
      }
      return copy;
    };
    const goodHeaders = (): Record<string, string> => ({
      'content-type': 'application/json',
      accept: pick(['application/json, text/event-stream', 'application/json']),
      authorization: `Bearer ${TOKENS.eng}`,
      'mcp-session-id': session,
      'mcp-protocol-version': '2025-06-18',
    });
    const flip = (text: string) => {
      const i = int(text.length);
      return text.slice(0, i) + String.fromCharCode((text.charCodeAt(i) % 94) + 33) + text.slice(i + 1);
    };

    const generators: (() => Probe)[] = [
      () => ({ kind: 'valid', method: 'POST', headers: goodHeaders(), body: JSON.stringify(message()) }),
      () => ({ kind: 'mutated', method: 'POST', headers: goodHeaders(), body: JSON.stringify(mutate(message())) }),
      () => {
        const text = JSON.stringify(message());
        const cut = pick([text.slice(0, int(text.length)), flip(text), text + '}', `\u0000${text}`, randomText(200), '', 'null', '[]', '"x"', '1e999']);
        return { kind: 'malformed JSON', method: 'POST', headers: goodHeaders(), body: cut };
      },
      () => ({ kind: 'batch', method: 'POST', headers: goodHeaders(), body: JSON.stringify(Array.from({ length: int(5) }, () => (random() < 0.5 ? message() : mutate(message())))) }),
      () => {
        const headers = goodHeaders();
        const which = int(8);
        if (which === 0) headers['content-type'] = pick(['text/plain', 'application/jsonx', '', 'application/json; charset=utf-16']);
        if (which === 1) headers.accept = pick(['text/html', '', 'text/event-stream', '*/*']);
        if (which === 2) headers['mcp-protocol-version'] = pick(['2099-01-01', 'x', '']);
        if (which === 3) delete headers.authorization;
        if (which === 4) headers.authorization = pick(['Bearer gh_at_unknown', 'Basic abc', 'Bearer', `Bearer ${TOKENS.off}`, `Bearer ${TOKENS.bob}`, `Bearer ${TOKENS.ops}`]);
        if (which === 5) headers.origin = pick(['http://evil.example', 'null', 'http://localhost:1234']);
        if (which === 6) headers.host = pick(['evil.example', 'localhost', `127.0.0.1:${port}`]);
        if (which === 7) headers.authorization = `Bearer ${TOKENS.machine}`;
        return { kind: `wrong header ${which}`, method: 'POST', headers, body: JSON.stringify(message()) };
      },
      () => {
        const headers = goodHeaders();
        headers['mcp-session-id'] = pick([flip(session), otherSession, randomText(40).replace(/[^\x21-\x7e]/g, 'a'), `v1.${'A'.repeat(int(500))}.x`, 'a']);
        return { kind: 'random session', method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: pick(['tools/list', 'ping', 'tools/call']), params: {} }) };
      },
      () => ({ kind: 'oversized', method: 'POST', headers: goodHeaders(), body: Buffer.alloc(MAX_BODY + 1 + int(MAX_BODY), 0x61) }),
      () => {
        const headers = goodHeaders();
        if (random() < 0.5) headers['mcp-session-id'] = flip(session);
        if (random() < 0.5) headers.accept = pick(['text/event-stream', 'application/json']);
        // Resumption with any Last-Event-ID: call-stream ids (`p.<stream>.<seq>`) real-looking or not, GET-stream ids, junk.
        if (random() < 0.5) headers['last-event-id'] = pick(['p.', 'p.x', 'p.x.', `p.${randomText(12).replace(/[^\w]/g, 'a')}.${int(10)}`, 'p.a.-1', 'p.a.1e3', `p.${'b'.repeat(int(5_000))}.1`, 'abc-3', randomText(30).replace(/[^\x21-\x7e]/g, 'z')]);
        return { kind: 'other verb', method: pick(['GET', 'PUT', 'PATCH', 'OPTIONS']), headers };
      },
    ];

    const started = Date.now();
    const failures: string[] = [];
    const statuses = new Map<number, number>();
    let sent = 0;
    const probes = Array.from({ length: MESSAGES }, () => pick(generators)());
    async function worker(): Promise<void> {
      while (sent < probes.length && Date.now() - started < TIME_BUDGET_MS) {
        const probe = probes[sent++]!;
        try {
          const answer = await send(probe);
          statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
          const problem = check(probe, answer);
          if (problem) failures.push(problem);
        } catch (error) {
          failures.push(`${probe.kind} ${probe.method}: ${(error as Error).message}`);
        }
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));

    if (process.env.FUZZ_VERBOSE) console.info({ sent, ms: Date.now() - started, statuses: Object.fromEntries(statuses) });
    expect(failures.slice(0, 10)).toEqual([]);
    expect(sent).toBeGreaterThanOrEqual(Math.min(MESSAGES, 1_000));
    expect(statuses.get(200)).toBeGreaterThan(0);
    expect(statuses.get(413)).toBeGreaterThan(0);
    expect(processFaults).toEqual([]);

    // The process still serves a real client, and the pool holds no more than the snapshot's assignments.
    const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp/eng`), {
      requestInit: { headers: { Authorization: `Bearer ${TOKENS.eng}` } },
    });
    const client = new Client({ name: 'after-fuzz', version: '1' });
    await client.connect(transport);
    expect(await client.callTool({ name: 'web__echo', arguments: { message: 'still here' } })).toMatchObject({ content: [{ text: 'Echo: still here' }] });
    await transport.terminateSession();
    await client.close();
    const entries = [...snapshots.current()!.gatewaysBySlug.values()].flatMap((gateway) => gateway.entries);
    expect(plane.pool.size).toBeLessThanOrEqual(new Set(entries.map((entry) => entry.upstreamKey)).size);
    const live = entries.find((entry) => entry.assignment.id === 'asg-http')!;
    expect(plane.pool.peek(live.upstreamKey)?.initializations).toBe(1);
  }, 120_000);
});

async function sessionOf(token: string): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/mcp/eng`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'fuzz', version: '1' } } }),
  });
  expect(response.status).toBe(200);
  return response.headers.get('mcp-session-id')!;
}
