import type { EngineAdapter, OpenedEngine, PreparedCall } from './adapter.js';
import { SIGNATURE_HEADER, signEngineBody } from './signature.js';
import { parseWebhookVerdict, type EngineEnvelope } from './verdict.js';

/** Gatehouse's own protocol: the envelope as JSON, signed with HMAC-SHA256; the answer is a verdict object. */
export function webhookAdapter(opened: OpenedEngine, signingSecret: string): EngineAdapter {
  const { engine, url, maxBytes } = opened;
  return {
    prepare(envelope: EngineEnvelope): PreparedCall {
      const body = JSON.stringify(envelope);
      return {
        method: engine.method,
        url,
        body,
        headers: (nowMs) => ({
          'content-type': 'application/json',
          [SIGNATURE_HEADER]: signEngineBody(signingSecret, body, Math.floor(nowMs / 1000)),
        }),
        interpret: (answer) => parseWebhookVerdict(answer, envelope.payload, engine.name, maxBytes),
      };
    },
  };
}
