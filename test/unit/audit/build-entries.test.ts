import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { buildCallEntries } from '../../../data-plane/audit/call-facts.js';
import type { AuditedCall } from '../../../data-plane/audit/call-auditor.js';
import { TokenEstimator } from '../../../data-plane/audit/token-estimator.js';
import { createScrubber } from '../../../schema/audit/scrub.js';
import type { AuditEntry } from '../../../schema/audit/types.js';
import { sampleAuditEntry } from '../../helpers/audit.js';
import { fakeCall, snapshots } from './fake-calls.js';

const tokens = new TokenEstimator();
const deps = { scrubber: createScrubber({ extraKeys: ['mcp-session-id'] }), tokens };
const leg = (entries: AuditEntry[], name: AuditEntry['leg']) => entries.find((entry) => entry.leg === name)!;

describe('building audit entries from a recorded call', () => {
  it('fills every field of the contract on every leg', async () => {
    await tokens.ready();
    const entries = buildCallEntries(fakeCall({ upstream: { result: { content: [{ type: 'text', text: 'Echo: hi' }] } } }), deps);
    expect(entries.map((entry) => entry.leg)).toEqual(['client_request', 'upstream_request', 'upstream_response', 'client_response']);
    const fields = Object.keys(sampleAuditEntry('x')).sort();
    for (const entry of entries) expect(Object.keys(entry).sort()).toEqual(fields);
    expect(leg(entries, 'client_request')).toMatchObject({ originIp: '10.0.0.7', userAgent: 'unit/1', jsonRpcId: '7', body: null, headers: { authorization: '[SCRUBBED]' } });
    expect(leg(entries, 'client_request')).toMatchObject({ inputTokens: expect.any(Number), bytesIn: expect.any(Number), outputTokens: null, bytesOut: null });
    expect(leg(entries, 'client_response')).toMatchObject({ status: 'ok', inputTokens: null, bytesIn: null, outputTokens: expect.any(Number), bytesOut: expect.any(Number), serverId: 'srv-http' });
  });

  it('marks a tool error result as an error with its text', () => {
    const entries = buildCallEntries(fakeCall({ upstream: { result: { isError: true, content: [{ type: 'text', text: 'disk full' }] } } }), deps);
    expect(leg(entries, 'upstream_response')).toMatchObject({ status: 'error', errorCode: null, errorMessage: 'disk full' });
    expect(leg(entries, 'client_response')).toMatchObject({ status: 'error', errorCode: null, errorMessage: 'disk full' });
  });

  it('records rule actions as policy_action legs, and a block as the call status', () => {
    const call = fakeCall({ upstream: { result: { content: [] } } });
    call.policy({ ruleId: 'rule-pii', ruleName: 'Mask emails', action: 'mask', findings: ['EMAIL'], alert: false });
    call.policy({ ruleId: 'rule-secrets', ruleName: 'Block keys', action: 'block', findings: ['AWS_KEY'], detail: 'x'.repeat(10_000), alert: true });
    const entries = buildCallEntries(call, deps);
    const actions = entries.filter((entry) => entry.leg === 'policy_action');
    expect(actions.map((entry) => [entry.status, entry.policyActions[0]!.ruleId])).toEqual([
      ['ok', 'rule-pii'],
      ['blocked', 'rule-secrets'],
    ]);
    expect(actions[1]!.policyActions[0]!.detail).toHaveLength(4096);
    expect(leg(entries, 'client_response')).toMatchObject({ status: 'blocked', policyActions: [{ ruleId: 'rule-pii' }, { ruleId: 'rule-secrets', alert: true }] });
  });

  it('records a call the client cancelled, and an upstream that never answered', () => {
    const call = fakeCall({ answer: null, upstream: 'unanswered' });
    call.aborted = true;
    const entries = buildCallEntries(call, deps);
    expect(leg(entries, 'client_response')).toMatchObject({ status: 'error', errorCode: -32800 });
    expect(leg(entries, 'upstream_response')).toMatchObject({ status: 'error', errorMessage: 'no answer from the upstream before the call ended' });
  });

  it('records a list fan-out: a leg pair per upstream page, and the time some leg was in flight as upstreamMs', () => {
    const call = fakeCall({ method: 'tools/list', answer: JSON.stringify({ jsonrpc: '2.0', id: 7, result: { tools: [] } }) });
    call.endedAt = 0; // still running: fakeCall finished it
    const entries = snapshots.current()!.gatewaysBySlug.get('eng')!.entries;
    const http = { method: 'tools/list', entry: entries.find((e) => e.assignment.id === 'asg-http')! };
    const dead = { method: 'tools/list', entry: entries.find((e) => e.assignment.id === 'asg-dead')! };
    const t0 = call.startedAt;
    // http answers two pages, 0–4 ms and 4–6 ms; dead fails at 1–9 ms, overlapping both: 9 ms in all, not 15.
    call.upstreamRequest(http, {});
    call.upstreamRequest(dead, {});
    call.upstreamResponse(http, t0, { result: { tools: [], nextCursor: 'p2' } });
    call.upstreamRequest(http, { cursor: 'p2' });
    call.upstreamResponse(http, t0 + 4, { result: { tools: [] } });
    call.upstreamResponse(dead, t0 + 1, { error: new Error('connect ECONNREFUSED') });
    const legs = call.upstream!;
    legs[0]!.endedAt = t0 + 4;
    legs[2]!.endedAt = t0 + 6;
    legs[1]!.endedAt = t0 + 9;
    call.endedAt = t0 + 12;
    call.upstreamResponse(http, t0 + 12, { result: { tools: [] } }); // after the end: left out
    expect(call.upstream).toHaveLength(3);
    const built = buildCallEntries(call, deps);
    expect(built.filter((e) => e.leg === 'upstream_request').map((e) => e.serverId)).toEqual(['srv-http', 'srv-dead', 'srv-http']);
    // Stamps are performance.now() fractions: durations are exact up to floating point.
    const ms = (value: number) => expect.closeTo(value, 6);
    expect(built.filter((e) => e.leg === 'upstream_response').map((e) => [e.serverId, e.status, e.durationMs])).toEqual([
      ['srv-http', 'ok', ms(4)],
      ['srv-dead', 'error', ms(8)],
      ['srv-http', 'ok', ms(2)],
    ]);
    expect(leg(built, 'client_response')).toMatchObject({ serverId: null, assignmentId: null, durationMs: ms(12), upstreamMs: ms(9), gatewayMs: ms(3) });
    expect(leg(built, 'client_request')).toMatchObject({ serverId: null, method: 'tools/list' });
  });

  it('names no upstream on the client legs of a list, even when it asked one only', () => {
    const call = fakeCall({ method: 'tools/list', answer: JSON.stringify({ jsonrpc: '2.0', id: 7, result: { tools: [] } }) });
    call.endedAt = 0;
    const http = { method: 'tools/list', entry: snapshots.current()!.gatewaysBySlug.get('eng')!.entries.find((e) => e.assignment.id === 'asg-http')! };
    for (const cursor of [undefined, 'p2']) {
      call.upstreamRequest(http, cursor ? { cursor } : {});
      call.upstreamResponse(http, performance.now(), { result: { tools: [] } });
    }
    call.endedAt = performance.now();
    const built = buildCallEntries(call, deps);
    expect(built.filter((e) => e.leg === 'upstream_response').map((e) => e.serverId)).toEqual(['srv-http', 'srv-http']);
    expect(leg(built, 'client_response')).toMatchObject({ serverId: null, assignmentId: null });
  });

  it('writes each entry as exactly its JSON, with the fields its legs share written once', async () => {
    await tokens.ready();
    const blocked = fakeCall({ upstream: { result: { content: [] } } });
    blocked.policy({ ruleId: 'rule-secrets', ruleName: 'Block "keys"', action: 'block', findings: ['AWS_KEY'], detail: 'line\nbreak \u2028', alert: true });
    const cancelled = fakeCall({ answer: null, upstream: 'unanswered' });
    cancelled.aborted = true;
    const relaying = fakeCall({ upstream: { result: { content: [] } } });
    relaying.endedAt = 0;
    relaying.relayedRequest({ method: 'elicitation/create', params: { message: 'who "are" you?' }, receivedAt: performance.now(), relayedId: 'gatehouse-1', bytesOut: 60, endedAt: performance.now(), outcome: { result: { action: 'accept', content: { name: 'é' } } } });
    relaying.relayedRequest({ method: 'sampling/createMessage', params: undefined, receivedAt: performance.now(), endedAt: performance.now(), outcome: { error: new McpError(-32600, 'not declared') } });
    relaying.endedAt = performance.now();
    const calls: AuditedCall[] = [
      relaying,
      fakeCall({ upstream: { result: { content: [{ type: 'text', text: 'Echo: "quoted" \\ \u0000 é 😀' }] } } }),
      fakeCall({ upstream: { result: { isError: true, content: [{ type: 'text', text: 'disk full' }] } } }),
      fakeCall({ upstream: { error: new Error('connect ECONNREFUSED') } }),
      fakeCall({ method: 'initialize', headers: { 'user-agent': 'agent "x"\t' } }),
      blocked,
      cancelled,
    ];
    for (const call of calls) {
      const texts: string[] = [];
      const entries = buildCallEntries(call, deps, texts);
      expect(texts).toHaveLength(entries.length);
      entries.forEach((entry, i) => expect(texts[i]).toBe(JSON.stringify(entry)));
      expect(new Set(entries.map((entry) => entry.correlationId)).size).toBe(1);
    }
  });

  it('records each server-to-client request as a pair under its own method and id: relayed, refused, unanswered', () => {
    const call = fakeCall({ upstream: { result: { content: [] } } });
    const ended = call.endedAt;
    call.endedAt = 0; // still running: fakeCall finished it
    const t0 = call.startedAt;
    call.relayedRequest({ method: 'elicitation/create', params: { message: 'who?' }, receivedAt: t0 + 1, relayedId: 'gatehouse-a', bytesOut: 80, endedAt: t0 + 31, outcome: { result: { action: 'accept', content: { name: 'ada', api_key: 'sk-1' } } } });
    call.relayedRequest({ method: 'sampling/createMessage', params: { messages: [] }, receivedAt: t0 + 2, endedAt: t0 + 2, outcome: { error: new McpError(-32600, 'the client did not declare the "sampling" capability') } });
    call.relayedRequest({ method: 'roots/list', params: undefined, receivedAt: t0 + 3, relayedId: 'gatehouse-c', bytesOut: 40 });
    call.endedAt = ended;
    call.relayedRequest({ method: 'roots/list', params: undefined, receivedAt: ended + 1 }); // after the end: left out
    expect(call.legCount()).toBe(10);
    const entries = buildCallEntries(call, deps);
    const relayed = entries.filter((e) => e.leg.startsWith('relayed_'));
    const ms = (value: number) => expect.closeTo(value, 6);
    expect(relayed.map((e) => [e.leg, e.method, e.jsonRpcId, e.status, e.errorCode, e.durationMs, e.bytesOut, e.bytesIn])).toEqual([
      ['relayed_request', 'elicitation/create', 'gatehouse-a', 'ok', null, null, 80, null],
      ['relayed_response', 'elicitation/create', 'gatehouse-a', 'ok', null, ms(30), null, Buffer.byteLength(JSON.stringify({ action: 'accept', content: { name: 'ada', api_key: 'sk-1' } }))],
      ['relayed_request', 'sampling/createMessage', null, 'error', -32600, null, null, null],
      ['relayed_response', 'sampling/createMessage', null, 'error', -32600, ms(0), null, null],
      ['relayed_request', 'roots/list', 'gatehouse-c', 'ok', null, null, 40, null],
      ['relayed_response', 'roots/list', 'gatehouse-c', 'error', null, ms(ended - t0 - 3), null, null],
    ]);
    expect(relayed[5]!.errorMessage).toBe('no answer from the client before the call ended');
    // The call's own legs keep its method and id; every leg names the call's tool and upstream.
    expect(leg(entries, 'client_request')).toMatchObject({ method: 'tools/call', jsonRpcId: '7' });
    for (const entry of entries) expect(entry).toMatchObject({ correlationId: call.correlationId, featureName: 'web__echo', serverId: 'srv-http' });
    // Metadata-only gateway: no bodies.
    expect(relayed.every((e) => e.body === null)).toBe(true);
  });

  it('measures a result relayed as is from the answer, and one a rule rewrote from its own JSON', async () => {
    await tokens.ready();
    const result = { content: [{ type: 'text' as const, text: 'Echo: é "quoted" ' + 'word '.repeat(50) }] };
    const relayed = buildCallEntries(fakeCall({ upstream: { result } }), deps);
    const rewritten = buildCallEntries(fakeCall({ upstream: { result }, answer: JSON.stringify({ jsonrpc: '2.0', id: 7, result: { content: [{ type: 'text', text: '[REDACTED]' }] } }) }), deps);
    const upstreamBytes = Buffer.byteLength(JSON.stringify(result));
    for (const entries of [relayed, rewritten]) {
      expect(leg(entries, 'upstream_response').bytesIn).toBe(upstreamBytes);
      expect(leg(entries, 'upstream_response').outputTokens).toBe(tokens.estimate(JSON.stringify(result)));
    }
    expect(leg(relayed, 'client_response').outputTokens).toBe(leg(relayed, 'upstream_response').outputTokens);
    expect(leg(rewritten, 'client_response').outputTokens).toBeLessThan(leg(rewritten, 'upstream_response').outputTokens!);
  });

  it('cuts strings to the ingest limits and reads the client address through trusted proxies', () => {
    const call = fakeCall({
      method: `tools/${'m'.repeat(400)}`,
      headers: { 'user-agent': 'u'.repeat(5000), 'x-forwarded-for': '203.0.113.9, 10.0.0.2', 'x-long': 'v'.repeat(10_000) },
      context: { instance: 'i', clientAddress: { trustedProxyHops: 1, forwardedHeader: 'x-forwarded-for' } },
    });
    const entries = buildCallEntries(call, deps);
    const request = leg(entries, 'client_request');
    expect(request.method).toHaveLength(256);
    expect(request.userAgent).toHaveLength(1024);
    expect(request.headers!['x-long']).toHaveLength(8192);
    expect(request.originIp).toBe('10.0.0.2');
    // Behind proxies that write RFC 7239 Forwarded, that header names the client (as for the rate limit).
    const forwarded = fakeCall({
      headers: { forwarded: 'for=203.0.113.9, for="[2001:db8::5]:443"', 'x-forwarded-for': '6.6.6.6' },
      context: { instance: 'i', clientAddress: { trustedProxyHops: 1, forwardedHeader: 'forwarded' } },
    });
    expect(leg(buildCallEntries(forwarded, deps), 'client_request').originIp).toBe('2001:db8::5');
  });
});
