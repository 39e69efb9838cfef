// The ingest validator's limits (validate.ts), apart from it: the data plane's entry
// builder cuts every string to them on a worker thread that must not load zod.

/** Most entries in one batch. */
export const MAX_AUDIT_BATCH_ENTRIES = 5000;
/** Longest `body` (characters); data planes cut bodies at the gateway's `maxBodyBytes`, below this. */
export const MAX_AUDIT_BODY_CHARS = 1024 * 1024;
/** Caps of the other strings (characters). */
export const AUDIT_STRING_LIMITS = Object.freeze({
  name: 256,
  method: 256,
  featureName: 2048,
  jsonRpcId: 256,
  errorMessage: 8192,
  headerName: 256,
  headerValue: 8192,
  headers: 100,
  userAgent: 1024,
  originIp: 64,
  sessionRef: 128,
  policyActions: 100,
  findings: 100,
  detail: 4096,
});
