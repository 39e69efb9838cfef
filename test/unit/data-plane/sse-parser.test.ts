import { describe, expect, it } from 'vitest';
import { SseParser, SseTooLargeError, type SseEvent } from '../../../data-plane/upstream/sse-parser.js';

function parse(chunks: readonly string[]): { events: SseEvent[]; retries: number[] } {
  const events: SseEvent[] = [];
  const retries: number[] = [];
  const parser = new SseParser((event) => events.push(event), (ms) => retries.push(ms));
  for (const chunk of chunks) parser.push(Buffer.from(chunk, 'utf8'));
  parser.end();
  return { events, retries };
}

const STREAM = [
  ': keep-alive comment',
  'id: 1',
  'data: {"jsonrpc":"2.0","method":"a"}',
  '',
  'event: message',
  'data: line one',
  'data:line two',
  '',
  'id: 2',
  'data: ',
  '',
  'id: 3',
  '',
  'event: other',
  'data: ignored by callers, still dispatched',
  '',
  'retry: 1500',
  'data: ünïcödé ✓',
  '',
].join('\n');

describe('SseParser', () => {
  it('parses fields, multi-line data, comments, ids, event types and retry', () => {
    const { events, retries } = parse([`${STREAM}\n`]);
    expect(events).toEqual([
      { id: '1', event: undefined, data: '{"jsonrpc":"2.0","method":"a"}' },
      { id: '1', event: 'message', data: 'line one\nline two' },
      { id: '2', event: undefined, data: '' },
      { id: '3', event: undefined, data: '' },
      { id: '3', event: 'other', data: 'ignored by callers, still dispatched' },
      { id: '3', event: undefined, data: 'ünïcödé ✓' },
    ]);
    expect(retries).toEqual([1500]);
  });

  it('gives the same events whatever the chunk boundaries, with LF, CRLF or CR line ends', () => {
    const expected = parse([`${STREAM}\n`]).events;
    for (const ending of ['\n', '\r\n', '\r']) {
      const text = `${STREAM.split('\n').join(ending)}${ending}`;
      const bytes = Buffer.from(text, 'utf8');
      for (let cut = 1; cut < bytes.length; cut += 1) {
        const events: SseEvent[] = [];
        const parser = new SseParser((event) => events.push(event));
        parser.push(bytes.subarray(0, cut));
        parser.push(bytes.subarray(cut));
        parser.end();
        expect(events, `ending ${JSON.stringify(ending)} cut at ${cut}`).toEqual(expected);
      }
    }
  });

  it('drops an event the stream ended in the middle of', () => {
    expect(parse(['data: complete\n\ndata: cut off']).events).toEqual([{ id: undefined, event: undefined, data: 'complete' }]);
  });

  it('refuses an event larger than its limit', () => {
    const parser = new SseParser(() => undefined, undefined, 1_000);
    expect(() => parser.push(Buffer.from(`data: ${'x'.repeat(2_000)}`))).toThrow(SseTooLargeError);
    const lines = new SseParser(() => undefined, undefined, 1_000);
    expect(() => {
      for (let i = 0; i < 100; i += 1) lines.push(Buffer.from(`data: ${'y'.repeat(20)}\n`));
    }).toThrow(SseTooLargeError);
  });
});
