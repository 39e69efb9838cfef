/**
 * The snapshot contract between the control plane and the data plane. Both planes
 * import it; it imports neither. See `schema/SNAPSHOT.md`.
 */
export * from './types.js';
export * from './hash.js';
export * from './naming.js';
export * from './validate.js';
export * from './secrets.js';
export * from './upstream-client.js';
