import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import protobuf from 'protobufjs';

/**
 * A local OTLP/HTTP logs receiver for tests: it decodes what it is sent (protobuf with
 * definitions written from the OTLP spec, `test/fixtures/otlp/logs.proto`, independent of
 * the encoder under test; or OTLP JSON) into flat records, and answers with the statuses a
 * test queues (200 once the queue is empty).
 */

export type AttributeValue = string | number | boolean | null | AttributeValue[] | { [key: string]: AttributeValue };

export interface ReceivedRecord {
  readonly timeUnixNano: string;
  readonly observedTimeUnixNano: string;
  readonly severityNumber: number;
  readonly severityText: string;
  readonly body: AttributeValue;
  readonly attributes: Record<string, AttributeValue>;
  readonly traceId: string;
  readonly resource: Record<string, AttributeValue>;
  readonly scope: { readonly name: string; readonly version: string };
}

export interface ReceivedRequest {
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly contentType: string;
  /** The status the receiver answered. */
  readonly status: number;
  readonly records: readonly ReceivedRecord[];
}

export interface OtlpReceiver {
  readonly url: string;
  readonly requests: ReceivedRequest[];
  /** Records of requests answered 2xx only: what a collector has accepted. */
  accepted(): ReceivedRecord[];
  /** Statuses (with an optional body) for the next requests, in order. */
  respondWith(...answers: (number | { status: number; body: string; contentType?: string; headers?: Record<string, string> })[]): void;
  close(): Promise<void>;
}

const root = protobuf.parse(readFileSync(new URL('../fixtures/otlp/logs.proto', import.meta.url), 'utf8'), { keepCase: false }).root;
const Request = root.lookupType('otlp.test.ExportLogsServiceRequest');

const hex = (b64: string | undefined) => (b64 ? Buffer.from(b64, 'base64').toString('hex') : '');

function anyValue(v: any): AttributeValue {
  if (!v) return null;
  if ('stringValue' in v) return v.stringValue;
  if ('boolValue' in v) return v.boolValue;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return v.doubleValue;
  if ('arrayValue' in v) return (v.arrayValue.values ?? []).map(anyValue);
  if ('kvlistValue' in v) return attributes(v.kvlistValue.values);
  if ('bytesValue' in v) return v.bytesValue;
  return null;
}

function attributes(kvs: any[] | undefined): Record<string, AttributeValue> {
  return Object.fromEntries((kvs ?? []).map((kv) => [kv.key, anyValue(kv.value)]));
}

/** Flattens an ExportLogsServiceRequest (as plain JSON: protobufjs `toObject` or OTLP JSON) into records. */
function flatten(request: any, idsAreHex: boolean): ReceivedRecord[] {
  const out: ReceivedRecord[] = [];
  for (const rl of request.resourceLogs ?? []) {
    const resource = attributes(rl.resource?.attributes);
    for (const sl of rl.scopeLogs ?? []) {
      for (const r of sl.logRecords ?? []) {
        out.push({
          timeUnixNano: String(r.timeUnixNano),
          observedTimeUnixNano: String(r.observedTimeUnixNano),
          severityNumber: Number(r.severityNumber),
          severityText: r.severityText,
          body: anyValue(r.body),
          attributes: attributes(r.attributes),
          traceId: idsAreHex ? (r.traceId ?? '') : hex(r.traceId),
          resource,
          scope: { name: sl.scope?.name ?? '', version: sl.scope?.version ?? '' },
        });
      }
    }
  }
  return out;
}

export function decodeOtlpProtobuf(body: Uint8Array): ReceivedRecord[] {
  const message = Request.decode(body);
  return flatten(Request.toObject(message, { longs: String, bytes: String, oneofs: false, defaults: false }), false);
}

export function decodeOtlpJson(text: string): ReceivedRecord[] {
  return flatten(JSON.parse(text), true);
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const requests: ReceivedRequest[] = [];
  const queue: (number | { status: number; body: string; contentType?: string; headers?: Record<string, string> })[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const contentType = req.headers['content-type'] ?? '';
      const records = contentType.startsWith('application/x-protobuf') ? decodeOtlpProtobuf(body) : decodeOtlpJson(body.toString('utf8'));
      const answer = queue.shift() ?? 200;
      const status = typeof answer === 'number' ? answer : answer.status;
      requests.push({ path: req.url ?? '', headers: req.headers, contentType, status, records });
      if (typeof answer === 'number') {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(status < 300 ? '{}' : JSON.stringify({ code: status, message: `test collector answered ${status}` }));
      } else {
        res.writeHead(status, { 'content-type': answer.contentType ?? 'application/json', ...answer.headers });
        res.end(answer.body);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/logs`,
    requests,
    accepted: () => requests.filter((r) => r.status >= 200 && r.status < 300).flatMap((r) => r.records),
    respondWith: (...answers) => void queue.push(...answers),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
