export { type EngineAdapter, type PreparedCall } from './adapter.js';
export { BEDROCK_CREDENTIAL_HEADERS, BEDROCK_SIGNING_SERVICE } from './bedrock-adapter.js';
export {
  DEFAULT_ENGINE_TIMEOUT_MS,
  RuleEngineClient,
  UNFORWARDABLE_HEADERS,
  connectionTestEvaluation,
  createRuleEngineClients,
  snapshotSecretOpener,
  type ConnectionTestResult,
  type EvaluateOptions,
  type OpenSecret,
  type RuleEngineClientOptions,
} from './rule-engine-client.js';
export { DEFAULT_SIGNATURE_TOLERANCE_SECONDS, SIGNATURE_HEADER, signEngineBody, verifyEngineSignature, type SignatureCheck } from './signature.js';
export { awsUriEncode, signSigV4, sigV4Parts, type AwsCredentials } from './sigv4.js';
export {
  EngineDestinationError,
  assertPublicDestination,
  checkDestinationUrl,
  createEngineDispatcher,
  refusedAddressReason,
  type EngineDestinationErrorCode,
  type LookupFunction,
} from './ssrf.js';
export {
  DEFAULT_ENGINE_MAX_BYTES,
  validateModifiedPayload,
  type EngineEnvelope,
  type EngineErrorCode,
  type EngineEvaluation,
  type EngineVerdict,
  type PayloadCheck,
} from './verdict.js';
