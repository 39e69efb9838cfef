import { afterEach, describe, expect, it } from 'vitest';
import { AuditShipper, type AuditShipperOptions } from '../../../data-plane/audit/shipper.js';
import { MemoryAuditTransport } from '../../../data-plane/audit/transport.js';
import type { AuditEntry } from '../../../schema/audit/types.js';
import { fakeCall, type FakeCallOptions } from './fake-calls.js';

const shippers: AuditShipper[] = [];
afterEach(async () => {
  for (const shipper of shippers.splice(0)) await shipper.close();
});

function shipper(transport: MemoryAuditTransport, options: Partial<AuditShipperOptions> = {}): AuditShipper {
  const created = new AuditShipper({ transport, flushIntervalMs: 10, initialRetryDelayMs: 5, maxRetryDelayMs: 20, closeTimeoutMs: 2_000, random: () => 0.5, ...options });
  shippers.push(created);
  return created;
}

/** An entry without what differs between two builds of the same call (its random id). */
const comparable = ({ id: _id, ...rest }: AuditEntry) => rest;

const kinds: FakeCallOptions[] = [
  { upstream: { result: { content: [{ type: 'text', text: 'Echo: hi' }] } } },
  { upstream: { result: { isError: true, content: [{ type: 'text', text: 'disk full' }] } } },
  { upstream: { error: new Error('connect ECONNREFUSED') } },
  { message: 'x'.repeat(40_000), upstream: { result: { content: [{ type: 'text', text: 'y'.repeat(40_000) }] } } },
  // Larger than a worker request's text budget: sent alone, within the worker's heap cap.
  { message: 'z'.repeat(3_000_000), upstream: { result: { content: [{ type: 'text', text: 'w'.repeat(3_000_000) }] } } },
  { headers: { authorization: 'Bearer secret-token', 'x-api-key': 'k-123' }, upstream: { result: { content: [] } } },
  { answer: null },
];

describe('audit entries built on a worker thread', () => {
  it('are the entries the event loop builds for the same calls (a data plane builds on the worker)', async () => {
    const calls = kinds.map((kind) => fakeCall(kind));
    const onWorker = new MemoryAuditTransport();
    const onLoop = new MemoryAuditTransport();
    const worker = shipper(onWorker, { buildOn: 'worker' });
    const loop = shipper(onLoop);
    for (const call of calls) {
      worker.accept(call);
      loop.accept(call);
    }
    await worker.flush();
    await loop.flush();
    expect(worker.entryWorker?.thread).toBeDefined(); // built there, not on the event loop
    expect(onWorker.entries().length).toBe(onLoop.entries().length);
    expect(onWorker.entries().length).toBeGreaterThanOrEqual(calls.length * 2);
    expect(onWorker.entries().map(comparable)).toEqual(onLoop.entries().map(comparable));
    // The batches are posted as their exact JSON, from the texts the worker serialized.
    onWorker.batches.forEach((batch, i) => expect(onWorker.bodies[i]).toBe(JSON.stringify(batch)));
    // Token estimates were made on the worker too (its own copy of the vocabulary).
    expect(onWorker.entries().find((entry) => entry.leg === 'client_request')?.inputTokens).toBeGreaterThan(0);
  });

  it('loses nothing when the worker dies: its calls are built on the event loop, and it is started again', async () => {
    const transport = new MemoryAuditTransport();
    const audit = shipper(transport, { buildOn: 'worker' });
    audit.accept(fakeCall(kinds[0]));
    await audit.flush();
    const first = audit.entryWorker!.thread!;
    for (let i = 0; i < 200; i++) audit.accept(fakeCall(kinds[i % kinds.length]));
    // It dies while building: 200 calls go over in several requests, one of them is in flight.
    let answered = 0;
    first.on('message', () => (answered += 1));
    const flushing = audit.flush();
    await expect.poll(() => answered, { interval: 1 }).toBeGreaterThan(0);
    await first.terminate(); // as if it crashed
    await flushing;
    await audit.flush();
    await expect.poll(() => audit.buffered()).toBe(0);
    const correlations = new Set(transport.entries().map((entry) => entry.correlationId));
    expect(correlations.size).toBe(201);
    expect(audit.stats.dropped).toBe(0);
    audit.accept(fakeCall(kinds[0]));
    await audit.flush();
    expect(audit.entryWorker!.thread).toBeDefined();
    expect(audit.entryWorker!.thread).not.toBe(first);
    expect(new Set(transport.entries().map((entry) => entry.correlationId)).size).toBe(202);
  });

  it('stops the worker on close, after shipping what was buffered', async () => {
    const transport = new MemoryAuditTransport();
    const audit = shipper(transport, { buildOn: 'worker' });
    for (let i = 0; i < 100; i++) audit.accept(fakeCall(kinds[0]));
    const thread = await (async () => {
      await audit.flush();
      return audit.entryWorker!.thread!;
    })();
    let exited = false;
    thread.once('exit', () => (exited = true));
    for (let i = 0; i < 100; i++) audit.accept(fakeCall(kinds[1]));
    await audit.close();
    expect(new Set(transport.entries().map((entry) => entry.correlationId)).size).toBe(200);
    expect(exited).toBe(true);
    expect(audit.entryWorker!.usable).toBe(false);
  });
});
