import type { IncomingMessage } from 'node:http';
import type { Result } from '@modelcontextprotocol/sdk/types.js';
import { AuditedCall, type AuditorContext } from '../../../data-plane/audit/call-auditor.js';
import { DIRECT_CLIENTS } from '../../../data-plane/policy/client-address.js';
import type { UpstreamTarget } from '../../../data-plane/mcp/router.js';
import { admitRequest } from '../../../data-plane/policy/admit.js';
import { InMemorySnapshotSource } from '../../../data-plane/snapshot/snapshot-source.js';
import { TOKENS, fixtureSnapshot } from '../data-plane/fixtures.js';

export const snapshots = new InMemorySnapshotSource();
snapshots.offer(fixtureSnapshot());

export const CONTEXT: AuditorContext = { instance: 'unit-host/1/abcdef', clientAddress: DIRECT_CLIENTS };

export function fakeRequest(headers: Record<string, string> = {}, remoteAddress = '::ffff:10.0.0.7'): IncomingMessage {
  return { headers: { 'user-agent': 'unit/1', authorization: `Bearer ${TOKENS.eng}`, ...headers }, socket: { remoteAddress } } as unknown as IncomingMessage;
}

export function echoTarget(): UpstreamTarget {
  const exposed = snapshots.current()!.gatewaysBySlug.get('eng')!.features.tools.get('web__echo')!;
  return { method: 'tools/call', entry: exposed.entry };
}

export interface FakeCallOptions {
  readonly context?: AuditorContext;
  readonly headers?: Record<string, string>;
  readonly message?: string;
  /** The upstream's result, an error it threw, or `unanswered` (sent, no answer before the call ended); omitted: no upstream leg. */
  readonly upstream?: { readonly result: Result } | { readonly error: unknown } | 'unanswered';
  /** The JSON-RPC answer written to the client; omitted: derived from `upstream`. */
  readonly answer?: string | null;
  readonly method?: string;
}

/** A finished `tools/call web__echo` as the endpoint and router would have recorded it. */
export function fakeCall(options: FakeCallOptions = {}): AuditedCall {
  const call = new AuditedCall(options.context ?? CONTEXT, fakeRequest(options.headers), 'eng', snapshots);
  const admitted = admitRequest({ compiled: snapshots.current(), gatewaySlug: 'eng', authorization: `Bearer ${TOKENS.eng}`, now: Date.now() });
  if (!admitted.ok) throw new Error(admitted.message);
  call.admitted(admitted.value);
  const params = { name: 'web__echo', arguments: { message: options.message ?? 'hi' } };
  const request = { jsonrpc: '2.0', id: 7, method: options.method ?? 'tools/call', params };
  call.received({ kind: 'request', id: 7, method: request.method, params }, JSON.stringify(request));
  if (options.upstream) {
    const target = echoTarget();
    call.upstreamRequest(target, { ...params, name: 'echo' });
    if (options.upstream !== 'unanswered') call.upstreamResponse(target, performance.now(), options.upstream);
  }
  const answered = options.upstream === 'unanswered' ? undefined : options.upstream;
  const answer =
    options.answer === undefined
      ? answered && 'result' in answered
        ? JSON.stringify({ jsonrpc: '2.0', id: 7, result: answered.result })
        : JSON.stringify({ jsonrpc: '2.0', id: 7, error: { code: -32060, message: 'upstream failed', data: { code: 'UPSTREAM_UNREACHABLE' } } })
      : options.answer;
  // As the endpoint does when it answers with the upstream's result object itself.
  if (options.answer === undefined && answered && 'result' in answered) call.answered(answered.result);
  if (answer !== null) call.responded(answer);
  call.endedAt = performance.now();
  call.statusCode = 200;
  return call;
}
