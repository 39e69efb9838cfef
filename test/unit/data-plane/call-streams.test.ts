import { describe, expect, it } from 'vitest';
import { CallStreams, DEFAULT_CALL_STREAMS } from '../../../data-plane/mcp/call-streams.js';

describe('CallStreams', () => {
  it('asks clients to reconnect well within the grace period their calls are kept', () => {
    expect(new CallStreams().options).toEqual(DEFAULT_CALL_STREAMS);
    expect(new CallStreams({ resumeGraceMs: 600 }).options.retryMs).toBe(200);
    expect(new CallStreams({ resumeGraceMs: 60_000, retryMs: 2_000 }).options.retryMs).toBe(2_000);
  });

  it('tells the event ids of call streams from those of session GET streams', () => {
    expect(CallStreams.isCallStreamEventId('p.AbC_d1.3')).toBe(true);
    expect(CallStreams.isCallStreamEventId('q2X-ab-3')).toBe(false);
  });

  it('resumes nothing for an id it does not hold, of any shape', () => {
    const streams = new CallStreams();
    for (const id of ['p.', 'p.x', 'p.x.', 'p.x.-1', 'p.x.1e3', 'p.unknown.4']) expect(streams.resume('session', id, undefined as never)).toBe(false);
    expect(streams.size).toBe(0);
  });
});
