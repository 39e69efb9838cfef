// `gatehouse data-plane`, apart from the control plane's modules: a data-plane process
// loads only the data plane (and its small launcher), which keeps its memory and start
// time to what it serves with.
import { controlPlaneAuditShipper } from '#data-plane/audit/shipper.js';
import { buildDataPlane, type DataPlane } from '#data-plane/app.js';
import type { DataPlaneEnvironment } from '#data-plane/config.js';
import type { DataPlaneLogger } from '#data-plane/logger.js';
import { PushSnapshotSource } from '#data-plane/snapshot/push-client.js';
import { applyDataPlaneHeapPolicy } from './data-plane-heap.js';

export interface RunningDataPlane {
  readonly dataPlane: DataPlane;
  readonly url: string;
  readonly snapshots: PushSnapshotSource;
  close(): Promise<void>;
}

/** `gatehouse data-plane`: a data plane alone, fed by a remote control plane. */
export async function startStandaloneDataPlane(env: DataPlaneEnvironment, logger: DataPlaneLogger): Promise<RunningDataPlane> {
  if (!env.controlPlaneUrl || !env.token || !env.sessionSecret) {
    throw new TypeError('a standalone data plane needs the control-plane URL, its token and the session secret');
  }
  // A process of its own: keep V8's old generation near what is live (data-plane-heap.ts).
  const heapGrowingPercent = applyDataPlaneHeapPolicy();
  logger.info({ heapGrowingPercent: heapGrowingPercent ?? 'V8 default' }, 'data-plane heap policy');
  const snapshots = new PushSnapshotSource({ url: env.controlPlaneUrl, token: env.token, logger });
  const audit = controlPlaneAuditShipper({ url: env.controlPlaneUrl, token: env.token, logger, maxBufferedEntries: env.auditBufferEntries, buildOn: env.auditBuildOn }); // [audit]
  const dataPlane = buildDataPlane({ ...env.options, host: env.host, port: env.port, sessionSecret: env.sessionSecret }, { snapshots, logger, audit });
  const { url } = await dataPlane.listen();
  snapshots.start();
  return {
    dataPlane,
    url,
    snapshots,
    async close() {
      await dataPlane.close();
      await snapshots.close();
    },
  };
}

