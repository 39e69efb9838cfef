import { afterEach, describe, expect, it } from 'vitest';
import { AuditShipper, type AuditShipperOptions } from '../../../data-plane/audit/shipper.js';
import { AuditShipError, MemoryAuditTransport, ingestUrl } from '../../../data-plane/audit/transport.js';
import type { AuditBatch } from '../../../schema/audit/types.js';
import { fakeCall } from './fake-calls.js';

const shippers: AuditShipper[] = [];
afterEach(async () => {
  for (const shipper of shippers.splice(0)) await shipper.close();
});

function shipper(transport: MemoryAuditTransport, options: Partial<AuditShipperOptions> = {}): AuditShipper {
  const created = new AuditShipper({ transport, flushIntervalMs: 10, initialRetryDelayMs: 5, maxRetryDelayMs: 20, closeTimeoutMs: 500, random: () => 0.5, ...options });
  shippers.push(created);
  return created;
}

const result = { upstream: { result: { content: [{ type: 'text' as const, text: 'ok' }] } } };
const ids = (batch: AuditBatch) => batch.entries.map((entry) => entry.id);

describe('audit shipper', () => {
  it('ships a call as its entries, at once when a batch is full', async () => {
    const transport = new MemoryAuditTransport();
    const audit = shipper(transport, { flushIntervalMs: 60_000, batchEntries: 8 });
    audit.accept(fakeCall(result));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(transport.batches).toHaveLength(0); // 4 entries wait for the interval...
    audit.accept(fakeCall(result));
    await expect.poll(() => transport.entries().length).toBe(8); // ...8 go at once
    expect(transport.batches[0]).toMatchObject({ formatVersion: 1 });
    expect(audit.stats).toMatchObject({ shipped: 8, dropped: 0 });
  });

  it('posts each batch as exactly the JSON of the batch, from entries serialized as they were built', async () => {
    const transport = new MemoryAuditTransport();
    let refused = 0;
    transport.fail = () => {
      if (refused++ === 0) throw new AuditShipError('HTTP', 'refused', { retriable: false, status: 403 }); // dropped: reported next time
    };
    const audit = shipper(transport, { batchEntries: 4 });
    audit.accept(fakeCall(result));
    await expect.poll(() => refused).toBe(1);
    audit.accept(fakeCall({ ...result, message: 'quote " backslash \\ and \u2028' }));
    await expect.poll(() => transport.batches.length).toBe(1);
    const [batch] = transport.batches;
    expect(batch!.droppedEntries).toBe(4);
    expect(transport.bodies[0]).toBeDefined();
    expect(JSON.parse(transport.bodies[0]!)).toEqual(JSON.parse(JSON.stringify(batch)));
    expect(transport.bodies[0]).toBe(JSON.stringify(batch));
  });

  it('ships every call once and in order while entries are built between requests and in flushes', async () => {
    const transport = new MemoryAuditTransport();
    const audit = shipper(transport, { flushIntervalMs: 5, batchEntries: 64 });
    const order: string[] = [];
    for (let burst = 0; burst < 60; burst++) {
      // Bursts of 1 to 13 calls, a turn of the event loop between them (the eager builds run
      // there), a flush now and then.
      for (let i = 0; i < 1 + ((burst * 7) % 13); i++) {
        const call = fakeCall(result);
        order.push(call.correlationId);
        audit.accept(call);
      }
      await new Promise((resolve) => setImmediate(resolve));
      if (burst % 9 === 0) await audit.flush();
    }
    await audit.flush();
    const entries = transport.entries();
    expect(entries).toHaveLength(order.length * 4);
    expect(new Set(entries.map((entry) => entry.id)).size).toBe(entries.length);
    expect([...new Set(entries.map((entry) => entry.correlationId))]).toEqual(order);
    transport.batches.forEach((batch, i) => expect(transport.bodies[i]).toBe(JSON.stringify(batch)));
  });

  it('ships none of the entries of a call whose build fails halfway, and counts them as dropped', async () => {
    const transport = new MemoryAuditTransport();
    const audit = shipper(transport, { flushIntervalMs: 60_000 });
    // The upstream result cannot be serialized: the build fails after the request legs.
    const broken = fakeCall({ upstream: { result: { content: [], toJSON: () => { throw new Error('unserializable'); } } as never }, answer: '{"jsonrpc":"2.0","id":7,"result":{}}' });
    const calls = [fakeCall(result), broken, fakeCall(result)];
    for (const call of calls) audit.accept(call);
    await audit.flush();
    expect(transport.entries().map((entry) => entry.correlationId)).toEqual([...Array(4).fill(calls[0]!.correlationId), ...Array(4).fill(calls[2]!.correlationId)]);
    expect(audit.stats.dropped).toBe(broken.legCount());
  });

  it('retries a failed batch with the same entry ids until it ships', async () => {
    const transport = new MemoryAuditTransport();
    const attempts: string[][] = [];
    transport.fail = (batch) => {
      attempts.push(ids(batch));
      if (attempts.length <= 2) throw new AuditShipError('HTTP', '503', { retriable: true, status: 503 });
    };
    const audit = shipper(transport);
    audit.accept(fakeCall(result));
    await expect.poll(() => transport.batches.length).toBe(1);
    expect(attempts).toHaveLength(3);
    expect(attempts[1]).toEqual(attempts[0]);
    expect(attempts[2]).toEqual(attempts[0]);
    expect(audit.stats).toMatchObject({ shipped: 4, failures: 2, dropped: 0 });
  });

  it('drops the one entry a 400 names and resends the rest; halves batches on 413; drops a batch refused with 403', async () => {
    const transport = new MemoryAuditTransport();
    let refusedOnce = false;
    transport.fail = (batch) => {
      if (!refusedOnce) {
        refusedOnce = true;
        throw new AuditShipError('HTTP', 'bad', { retriable: false, status: 400, index: 1, field: 'entries[1].method' });
      }
      if (batch.entries.length > 2) throw new AuditShipError('HTTP', 'too large', { retriable: false, status: 413 });
    };
    const audit = shipper(transport);
    audit.accept(fakeCall(result));
    await expect.poll(() => transport.entries().length).toBe(3);
    expect(transport.batches.every((batch) => batch.entries.length <= 2)).toBe(true);
    expect(audit.stats.dropped).toBe(1);
    // The drop is reported with the next accepted batch.
    expect(transport.batches[0]!.droppedEntries).toBe(1);

    transport.fail = () => {
      throw new AuditShipError('HTTP', 'revoked', { retriable: false, status: 403 });
    };
    audit.accept(fakeCall(result));
    await expect.poll(() => audit.stats.dropped).toBe(5);
    expect(audit.buffered()).toBe(0);
  });

  it('bounds its buffer: calls past it are dropped and counted, never queued', async () => {
    const transport = new MemoryAuditTransport();
    transport.fail = () => {
      throw new AuditShipError('NETWORK', 'down', { retriable: true });
    };
    const audit = shipper(transport, { maxBufferedEntries: 10 });
    const accepted = Array.from({ length: 5 }, () => audit.accept(fakeCall(result)));
    expect(accepted).toEqual([true, true, false, false, false]);
    expect(audit.buffered()).toBe(8);
    expect(audit.load()).toBeCloseTo(0.8);
    expect(audit.stats.dropped).toBe(12);
  });

  it('ships what is buffered on close, and drops what it cannot within the deadline', async () => {
    const transport = new MemoryAuditTransport();
    const audit = shipper(transport, { flushIntervalMs: 60_000 });
    audit.accept(fakeCall(result));
    await audit.close();
    expect(transport.entries()).toHaveLength(4);

    const down = new MemoryAuditTransport();
    down.fail = () => {
      throw new AuditShipError('NETWORK', 'down', { retriable: true });
    };
    const stuck = shipper(down, { closeTimeoutMs: 100 });
    stuck.accept(fakeCall(result));
    const started = Date.now();
    await stuck.close();
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(stuck.stats.dropped).toBe(4);
    expect(stuck.accept(fakeCall(result))).toBe(false);
  });

  it('checks its options, naming the one that is wrong', () => {
    const transport = new MemoryAuditTransport();
    expect(() => new AuditShipper({ transport, maxBufferedEntries: 0 })).toThrow(/"maxBufferedEntries"/);
    expect(() => new AuditShipper({ transport, batchEntries: 6000 })).toThrow(/"batchEntries"/);
  });

  it('derives the ingest URL from the control plane URL', () => {
    expect(ingestUrl('http://cp:4000')).toBe('http://cp:4000/ingest/audit');
    expect(ingestUrl('https://cp.example.com/base/')).toBe('https://cp.example.com/base/ingest/audit');
    expect(ingestUrl('wss://cp.example.com/graphql')).toBe('https://cp.example.com/ingest/audit');
  });
});
