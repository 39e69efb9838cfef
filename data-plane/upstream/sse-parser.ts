/** One server-sent event as dispatched by {@link SseParser}. */
export interface SseEvent {
  /** The stream's last event id after this event (the `id` field of this or an earlier event). */
  readonly id: string | undefined;
  /** `event` field; undefined means the default type, `message`. */
  readonly event: string | undefined;
  /** The `data` lines joined with `\n`; empty for an event that only carried an id (a priming event). */
  readonly data: string;
}

/** An event's data exceeded the parser's limit; the stream is unusable. */
export class SseTooLargeError extends Error {
  override readonly name = 'SseTooLargeError';
}

/**
 * An incremental `text/event-stream` parser (the WHATWG event-stream grammar): feed it
 * bytes as they arrive and it calls `onEvent` per dispatched event. Lines end with LF,
 * CR or CRLF (also split across chunks); comments are skipped; `retry` is reported
 * through `onRetry`. An event with no data is dispatched only when it set an id (a
 * priming event), so a resuming client learns the id. Bytes of a line are held until its
 * end arrives, bounded by `maxBytes` (then {@link SseTooLargeError}).
 */
export class SseParser {
  private readonly decoder = new TextDecoder();
  private carry = '';
  /** The previous chunk ended in CR: a leading LF of the next one belongs to it. */
  private skipLeadingLf = false;
  private data: string[] = [];
  private dataBytes = 0;
  private eventType: string | undefined;
  private idSeen = false;
  /** The last event id of the stream (persists across events, per the spec). */
  lastEventId: string | undefined;

  constructor(
    private readonly onEvent: (event: SseEvent) => void,
    private readonly onRetry: (ms: number) => void = () => undefined,
    private readonly maxBytes = 32 * 1024 * 1024,
  ) {}

  push(chunk: Uint8Array): void {
    this.feed(this.decoder.decode(chunk, { stream: true }));
  }

  /** The stream ended: an event without its terminating blank line is discarded (per the spec). */
  end(): void {
    const rest = this.decoder.decode();
    if (rest) this.feed(rest);
    this.carry = '';
    this.data = [];
    this.dataBytes = 0;
    this.eventType = undefined;
    this.idSeen = false;
  }

  private feed(text: string): void {
    let input = this.carry === '' ? text : this.carry + text;
    this.carry = '';
    let at = 0;
    if (this.skipLeadingLf) {
      this.skipLeadingLf = false;
      if (input.charCodeAt(0) === 10) at = 1;
    }
    let nextCr = input.indexOf('\r', at);
    for (;;) {
      const nextLf = input.indexOf('\n', at);
      if (nextCr !== -1 && nextCr < at) nextCr = input.indexOf('\r', at);
      let end: number;
      if (nextCr !== -1 && (nextLf === -1 || nextCr < nextLf)) end = nextCr;
      else if (nextLf !== -1) end = nextLf;
      else break;
      this.line(input.slice(at, end));
      if (input.charCodeAt(end) === 13) {
        if (end + 1 === input.length) {
          this.skipLeadingLf = true;
          at = end + 1;
        } else at = input.charCodeAt(end + 1) === 10 ? end + 2 : end + 1;
      } else at = end + 1;
    }
    if (at < input.length) {
      input = input.slice(at);
      if (input.length + this.dataBytes > this.maxBytes) throw new SseTooLargeError(`an event of the upstream's stream exceeds ${this.maxBytes} bytes`);
      this.carry = input;
    }
  }

  private line(line: string): void {
    if (line === '') return this.dispatch();
    if (line.charCodeAt(0) === 58) return; // ':' comment (keep-alive)
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    switch (field) {
      case 'data':
        this.dataBytes += value.length + 1;
        if (this.dataBytes > this.maxBytes) throw new SseTooLargeError(`an event of the upstream's stream exceeds ${this.maxBytes} bytes`);
        this.data.push(value);
        return;
      case 'event':
        this.eventType = value;
        return;
      case 'id':
        if (!value.includes('\u0000')) {
          this.lastEventId = value;
          this.idSeen = true;
        }
        return;
      case 'retry':
        if (/^\d+$/.test(value)) this.onRetry(Number(value));
        return;
      default:
        return;
    }
  }

  private dispatch(): void {
    const data = this.data;
    const event = this.eventType;
    const idSeen = this.idSeen;
    this.data = [];
    this.dataBytes = 0;
    this.eventType = undefined;
    this.idSeen = false;
    if (data.length === 0 && !idSeen) return;
    this.onEvent({ id: this.lastEventId, event, data: data.length === 1 ? data[0]! : data.join('\n') });
  }
}
