export {
  createInjectionDetector,
  DEFAULT_INJECTION_THRESHOLD,
  type InjectionDetector,
  type InjectionDetectorOptions,
  type InjectionVerdict,
  type Signal,
  type SignalKind,
  type SignalSource,
} from './injection-detector.js';
