export { ENTITY_TYPES, isEntityType, type EntityType, type Finding } from './finding.js';
export { createPiiScanner, DEFAULT_MIN_CONFIDENCE, type PiiScanner, type PiiScannerOptions, type PiiSpan } from './pii-scanner.js';
