import { describe, expect, it } from 'vitest';
import { decodeUri, reencodeUri } from '../../../schema/rules/engine/uri-text.js';

/** The `resourceUris` codec: what rules read of a URI, and the URI a rewrite sends upstream (end to end: rules-e2e/resource-uris.test.ts). */

const rewrite = (raw: string, edit: (text: string) => string) => {
  const before = decodeUri(raw);
  return reencodeUri(raw, before, edit(before.text));
};

describe('decodeUri', () => {
  it('decodes UTF-8 escapes, reserved ones included', () => {
    expect(decodeUri('doc://x/pay%72oll%2Fa%20b%E2%82%AC%F0%9F%98%80').text).toBe('doc://x/payroll/a b€😀');
  });

  it('keeps what is not a UTF-8 escape as written', () => {
    for (const raw of ['100%', '%zz', '%FF', '%E2%82', '%C0%AF']) expect(decodeUri(raw).text).toBe(raw);
    // A broken sequence stays; the escape after it is read on its own.
    expect(decodeUri('%E2%82%41').text).toBe('%E2%82A');
  });
});

describe('reencodeUri', () => {
  it('keeps the original bytes around the change and encodes what is not URI-safe in it', () => {
    expect(rewrite('doc://x/a%2Fb/ada@example.com?q=%41', (t) => t.replace('ada@example.com', '[REDACTED:EMAIL_ADDRESS]'))).toBe(
      'doc://x/a%2Fb/%5BREDACTED:EMAIL_ADDRESS%5D?q=%41',
    );
    expect(rewrite('doc://x/secret', (t) => t.replace('secret', 'a b#c%d€'))).toBe('doc://x/a%20b%23c%25d%E2%82%AC');
  });

  it('rewrites a match hidden in escapes', () => {
    expect(rewrite('doc://x/pay%72oll/2026', (t) => t.replace('payroll', '***'))).toBe('doc://x/***/2026');
  });

  it('never splits a character: an escaped astral character next to the change is written again whole', () => {
    expect(rewrite('doc://x/%F0%9F%98%80a', (t) => t.replace('a', 'b'))).toBe('doc://x/%F0%9F%98%80b');
    expect(rewrite('doc://x/%F0%9F%98%80', (t) => t.replace('😀', '😁'))).toBe('doc://x/%F0%9F%98%81');
  });

  it('an unchanged text leaves the URI alone; a whole rewrite replaces all of it', () => {
    expect(rewrite('doc://x/%41', (t) => t)).toBe('doc://x/%41');
    expect(rewrite('doc://x/y', () => '[REDACTED:PROMPT_INJECTION]')).toBe('%5BREDACTED:PROMPT_INJECTION%5D');
  });
});
