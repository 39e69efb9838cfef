import { createRequire } from 'node:module';
import type { Counter } from 'prom-client';
import { processMetrics } from '../ops/metrics.js';

/** Why entries were dropped: the buffer was full, the control plane refused them, or shutdown ran out of time. */
export type AuditDropReason = 'buffer_full' | 'rejected' | 'shutdown';

/** What a shipper reports at scrape time. */
export interface AuditBufferSource {
  buffered(): number;
  readonly capacity: number;
}

/**
 * The audit shipper's Prometheus metrics, created once per process in the data plane's
 * registry (served at `/metrics` with the others):
 * - `gatehouse_data_plane_audit_buffered_entries` / `…_audit_buffer_capacity_entries`;
 * - `gatehouse_data_plane_audit_shipped_entries_total`;
 * - `gatehouse_data_plane_audit_dropped_entries_total{reason}` (`buffer_full`, `rejected`, `shutdown`);
 * - `gatehouse_data_plane_audit_ship_failures_total` (a batch that must be retried).
 */
export class AuditMetrics {
  readonly shipped: Counter;
  readonly dropped: Counter<'reason'>;
  readonly shipFailures: Counter;
  readonly #sources = new Set<AuditBufferSource>();

  constructor() {
    const prom = createRequire(import.meta.url)('prom-client') as typeof import('prom-client');
    const registers = [processMetrics().registry];
    const sources = this.#sources;
    this.shipped = new prom.Counter({
      name: 'gatehouse_data_plane_audit_shipped_entries_total',
      help: 'Audit entries the control plane acknowledged (stored or already stored)',
      registers,
    });
    this.dropped = new prom.Counter({
      name: 'gatehouse_data_plane_audit_dropped_entries_total',
      help: 'Audit entries dropped, by reason: buffer_full (the bounded buffer was full), rejected (the control plane refused them), shutdown (not shipped before the close deadline)',
      labelNames: ['reason'] as const,
      registers,
    });
    this.shipFailures = new prom.Counter({
      name: 'gatehouse_data_plane_audit_ship_failures_total',
      help: 'Audit batches that failed to ship and were kept for a retry (network error, 429, 5xx)',
      registers,
    });
    new prom.Gauge({
      name: 'gatehouse_data_plane_audit_buffered_entries',
      help: 'Audit entries waiting to be shipped (built or not yet built, including batches in flight)',
      registers,
      collect() {
        let total = 0;
        for (const source of sources) total += source.buffered();
        this.set(total);
      },
    });
    new prom.Gauge({
      name: 'gatehouse_data_plane_audit_buffer_capacity_entries',
      help: 'Bound of the audit buffer: past it, entries of new calls are dropped',
      registers,
      collect() {
        let total = 0;
        for (const source of sources) total += source.capacity;
        this.set(total);
      },
    });
    for (const reason of ['buffer_full', 'rejected', 'shutdown'] as const) this.dropped.inc({ reason }, 0);
  }

  /** Adds a shipper's buffer to the gauges; returns the removal. */
  register(source: AuditBufferSource): () => void {
    this.#sources.add(source);
    return () => this.#sources.delete(source);
  }
}

let instance: AuditMetrics | undefined;

/** The process's audit metrics, created on first use. */
export function auditMetrics(): AuditMetrics {
  instance ??= new AuditMetrics();
  return instance;
}
