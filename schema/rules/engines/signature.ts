import { createHmac, timingSafeEqual } from 'node:crypto';

/** The header carrying the envelope's signature. */
export const SIGNATURE_HEADER = 'x-gatehouse-signature';

/** How far an engine should let `t` drift from its own clock by default (seconds). */
export const DEFAULT_SIGNATURE_TOLERANCE_SECONDS = 300;

/** Lowercase hex HMAC-SHA256(secret, `${t}.${body}`). */
export function signatureDigest(secret: string, unixSeconds: number, body: string | Uint8Array): string {
  return createHmac('sha256', secret).update(`${unixSeconds}.`, 'utf8').update(body).digest('hex');
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`. */
export function signEngineBody(secret: string, body: string | Uint8Array, unixSeconds: number): string {
  return `t=${unixSeconds},v1=${signatureDigest(secret, unixSeconds, body)}`;
}

export type SignatureCheck = { readonly ok: true; readonly timestamp: number } | { readonly ok: false; readonly reason: string };

/**
 * What an engine runs on each delivery: parse `x-gatehouse-signature`, recompute the HMAC
 * over the **raw** body bytes (before any JSON parsing), compare in constant time, and
 * refuse timestamps further than `toleranceSeconds` from `now` (replay window). Several
 * `v1=` values may appear (during a secret rotation); any match passes.
 */
export function verifyEngineSignature(
  header: string | undefined | null,
  body: string | Uint8Array,
  secret: string,
  options: { toleranceSeconds?: number; now?: () => number } = {},
): SignatureCheck {
  if (!header) return { ok: false, reason: `missing ${SIGNATURE_HEADER} header` };
  let timestamp: number | undefined;
  const candidates: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't' && /^[0-9]{1,12}$/.test(value)) timestamp = Number(value);
    else if (key === 'v1' && /^[0-9a-f]{64}$/.test(value)) candidates.push(value);
  }
  if (timestamp === undefined) return { ok: false, reason: 'signature has no timestamp (t=)' };
  if (candidates.length === 0) return { ok: false, reason: 'signature has no v1= digest' };
  const now = Math.floor((options.now ?? Date.now)() / 1000);
  const tolerance = options.toleranceSeconds ?? DEFAULT_SIGNATURE_TOLERANCE_SECONDS;
  if (Math.abs(now - timestamp) > tolerance) return { ok: false, reason: `signature timestamp is outside the ${tolerance} s tolerance` };
  const expected = Buffer.from(signatureDigest(secret, timestamp, body), 'hex');
  const match = candidates.some((candidate) => timingSafeEqual(Buffer.from(candidate, 'hex'), expected));
  return match ? { ok: true, timestamp } : { ok: false, reason: 'signature does not match the body' };
}
