import { describe, expect, it } from 'vitest';
import { createPiiScanner, ENTITY_TYPES, type EntityType } from '../../../schema/rules/pii/index.js';
import { resolveOverlaps } from '../../../schema/rules/pii/pii-scanner.js';

const scanner = createPiiScanner();
const found = (text: string, type?: EntityType) =>
  scanner
    .scan(text)
    .filter((f) => type === undefined || f.entityType === type)
    .map((f) => f.text);

describe('email', () => {
  it('finds addresses in JSON, headers and mailto links', () => {
    expect(found('{"to":"jane.doe+crm@mail.example.co.uk"}', 'EMAIL_ADDRESS')).toEqual(['jane.doe+crm@mail.example.co.uk']);
    expect(found('From: Bob <bob_smith42@acme.io>', 'EMAIL_ADDRESS')).toEqual(['bob_smith42@acme.io']);
    expect(found('<a href="mailto:sales@globex.de">', 'EMAIL_ADDRESS')).toEqual(['sales@globex.de']);
    expect(found('Write to a.b@c.io.', 'EMAIL_ADDRESS')).toEqual(['a.b@c.io']);
  });
  it('ignores look-alikes', () => {
    expect(found('icon@2x.png @types/node lodash@4.17.21 user:pass@db.internal:5432 @here a@b', 'EMAIL_ADDRESS')).toEqual([]);
  });
});

describe('phone numbers', () => {
  it.each([
    '(415) 555-2671', '415-555-2671', '415.555.2671', '+1 415 555 2671', '1-800-555-0199', '+14155552671',
    '+44 20 7946 0958', '020 7946 0958', '07700 900123', '+44 (0)20 7946 0958',
    '+49 30 1234567', '030 1234567', '0151 23456789', '089/1234567',
    '+33 1 23 45 67 89', '01 23 45 67 89', '06.12.34.56.78',
    '+91 98765 43210', '98765 43210',
  ])('finds %s', (phone) => {
    expect(found(`call me: ${phone} today`, 'PHONE_NUMBER')).toEqual([phone]);
  });
  it.each(['ORD-2024-5551234567', '2024-01-15 10:30:00', '05/06/2024', 'ISBN 978-3-16-148410-0', 'ISBN 0-306-40615-2', '1705312200', '123-456-7890', 'v1.2.3', 'build 20240115.3', '$1,234.56', 'x4155552671'])(
    'does not take %s for a phone',
    (text) => expect(found(text, 'PHONE_NUMBER')).toEqual([]),
  );
  it('takes an unformatted 10-digit number only after a context word', () => {
    expect(found('id 4155552671', 'PHONE_NUMBER')).toEqual([]);
    expect(found('mobile: 4155552671', 'PHONE_NUMBER')).toEqual(['4155552671']);
  });
});

describe('US SSN', () => {
  it('finds dashed SSNs that follow the SSA rules', () => {
    expect(found('ssn 123-45-6789', 'US_SSN')).toEqual(['123-45-6789']);
    expect(found('id 536-22-1042', 'US_SSN')).toEqual(['536-22-1042']);
  });
  it('rejects invalid areas, groups and serials', () => {
    expect(found('000-12-3456 666-12-3456 912-12-3456 123-00-4567 123-45-0000', 'US_SSN')).toEqual([]);
  });
  it('needs context for spaced and unformatted forms', () => {
    expect(found('ref 536221042', 'US_SSN')).toEqual([]);
    expect(found('SSN: 536221042', 'US_SSN')).toEqual(['536221042']);
    expect(found('social security number 536 22 1042', 'US_SSN')).toEqual(['536 22 1042']);
  });
});

describe('credit cards', () => {
  it('finds Luhn-valid numbers of known networks, spaced, dashed or plain', () => {
    expect(found('card 4111 1111 1111 1111 exp 12/27', 'CREDIT_CARD')).toEqual(['4111 1111 1111 1111']);
    expect(found('pan=5555-5555-5555-4444;', 'CREDIT_CARD')).toEqual(['5555-5555-5555-4444']);
    expect(found('amex 3782 822463 10005', 'CREDIT_CARD')).toEqual(['3782 822463 10005']);
    expect(found('"6011111111111117"', 'CREDIT_CARD')).toEqual(['6011111111111117']);
  });
  it('rejects numbers that fail Luhn or have no known issuer', () => {
    expect(found('card 4111 1111 1111 1112, 1234 5678 9012 3456, 9111111111111111', 'CREDIT_CARD')).toEqual([]);
  });
  it('treats an opening parenthesis as punctuation', () => {
    expect(found('pay by card (4111 1111 1111 1111 on file)', 'CREDIT_CARD')).toEqual(['4111 1111 1111 1111']);
  });
  it('trims a following group that is not part of the card', () => {
    expect(found('4111 1111 1111 1111 2027', 'CREDIT_CARD')).toEqual(['4111 1111 1111 1111']);
  });
});

describe('IBAN', () => {
  it('finds printed and electronic IBANs with valid check digits', () => {
    expect(found('IBAN: DE89 3704 0044 0532 0130 00.', 'IBAN_CODE')).toEqual(['DE89 3704 0044 0532 0130 00']);
    expect(found('{"iban":"GB82WEST12345698765432"}', 'IBAN_CODE')).toEqual(['GB82WEST12345698765432']);
  });
  it('rejects bad check digits, wrong lengths and unknown countries', () => {
    expect(found('DE88 3704 0044 0532 0130 00 DE89370400440532013 QQ89370400440532013000', 'IBAN_CODE')).toEqual([]);
    expect(found('DE88 3704 0044 0532 0130 00', 'PHONE_NUMBER')).toEqual([]);
  });
});

describe('IP addresses', () => {
  it('finds IPv4 and every IPv6 form', () => {
    const text = 'from 203.0.113.9 via 2001:0db8:85a3:0000:0000:8a2e:0370:7334, 2001:db8::ff00:42:8329 and ::ffff:192.0.2.128 (peer fe80::1ff:fe23:4567:890a%eth0)';
    expect(found(text, 'IP_ADDRESS')).toEqual(['203.0.113.9', '2001:0db8:85a3:0000:0000:8a2e:0370:7334', '2001:db8::ff00:42:8329', '::ffff:192.0.2.128', 'fe80::1ff:fe23:4567:890a']);
  });
  it('ignores times, MAC addresses, C++ scopes, invalid octets and versions', () => {
    expect(found('at 10:30:00, mac 00:1A:2B:3C:4D:5E, std::vector, 256.1.2.3, version 1.2.3.4, v10.0.0.1', 'IP_ADDRESS')).toEqual([]);
  });
});

describe('secrets', () => {
  const jwt = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';
  it.each<[EntityType, string]>([
    ['AWS_ACCESS_KEY', 'AKIAIOSFODNN7EXAMPLE'],
    ['GITHUB_TOKEN', 'ghp_16C7e42F292c6912E7710c838347Ae178B4a'],
    ['GITHUB_TOKEN', 'github_pat_11ABCDEFG0123456789abc_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVW'],
    ['SLACK_TOKEN', 'xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx'],
    ['STRIPE_KEY', 'sk_live_4eC39HqLyjWDarjtT1zdp7dc'],
    ['STRIPE_KEY', 'rk_test_51H8abcDEFghiJKLmno'],
    ['JWT', jwt],
  ])('finds %s %s', (type, secret) => {
    expect(scanner.scan(`value: ${secret}\n`).map((f) => [f.entityType, f.text])).toEqual([[type, secret]]);
  });
  it('checks that a JWT header decodes to JSON with "alg"', () => {
    const noAlg = `${Buffer.from('{"typ":"JWT"}').toString('base64url')}.eyJzdWIiOiIxIn0.sig`;
    expect(found(`t ${noAlg}`, 'JWT')).toEqual([]);
  });
  it('finds private key blocks, also JSON-escaped and truncated', () => {
    const block = '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx\n-----END RSA PRIVATE KEY-----';
    expect(found(`key:\n${block}\n`, 'PRIVATE_KEY')).toEqual([block]);
    const escaped = '-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBg\\n-----END PRIVATE KEY-----';
    expect(found(`{"private_key":"${escaped}"}`, 'PRIVATE_KEY')).toEqual([escaped]);
    expect(found('-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA', 'PRIVATE_KEY')).toEqual(['-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA']);
    expect(found('-----BEGIN PUBLIC KEY-----\nMIIBIjAN\n-----END PUBLIC KEY-----', 'PRIVATE_KEY')).toEqual([]);
  });
  it('takes an AWS secret key only near "aws"', () => {
    expect(found('aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'AWS_SECRET_KEY')).toEqual(['wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY']);
    expect(found('secret = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'AWS_SECRET_KEY')).toEqual([]);
  });
  it('flags high-entropy strings only near credential words', () => {
    const sha = 'a94a8fe5ccb19ba61c4c0873d391e987982fbbd3';
    expect(found(`{"commit":"${sha}","digest":"sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"}`)).toEqual([]);
    expect(found(`{"api_key":"${sha}"}`, 'HIGH_ENTROPY_SECRET')).toEqual([sha]);
    expect(found('Authorization: Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0Zx', 'HIGH_ENTROPY_SECRET')).toEqual(['9f8e7d6c5b4a39281706f5e4d3c2b1a0Zx']);
    expect(found('password=Tr0ub4dor&3xK9mQ2vL8nR5wY7', 'HIGH_ENTROPY_SECRET')).toEqual([]);
    expect(found('"cache_key": "user_profile_2024_v1_backup_store"', 'HIGH_ENTROPY_SECRET')).toEqual([]);
    expect(found('monkey 9f8e7d6c5b4a39281706f5e4d3c2b1a0Zx keyboard 9f8e7d6c5b4a39281706f5e4d3c2b1a0Zx', 'HIGH_ENTROPY_SECRET')).toEqual([]);
  });
});

describe('scanner options', () => {
  it('raises confidence with a context word before the span', () => {
    const [plain] = scanner.scan('ref 536-22-1042');
    const [boosted] = scanner.scan('SSN: 536-22-1042');
    expect(plain!.confidence).toBe(0.6);
    expect(boosted!.confidence).toBe(0.9);
    const [far] = scanner.scan(`ssn ${'x'.repeat(60)} 536-22-1042`);
    expect(far!.confidence).toBe(0.6);
  });
  it('drops findings below minConfidence', () => {
    const strict = createPiiScanner({ minConfidence: 0.8 });
    expect(strict.scan('ref 536-22-1042, SSN 536-22-1043').map((f) => f.text)).toEqual(['536-22-1043']);
    const lax = createPiiScanner({ minConfidence: 0.1 });
    expect(lax.scan('ref 536221042').map((f) => f.entityType)).toEqual(['US_SSN']);
  });
  it('never reports allow-listed values (case-insensitive)', () => {
    const s = createPiiScanner({ allowList: ['Support@Example.com', '4111 1111 1111 1111'] });
    expect(s.scan('support@example.com, sales@example.com, 4111 1111 1111 1111').map((f) => f.text)).toEqual(['sales@example.com']);
  });
  it('reports only the selected entity types', () => {
    const s = createPiiScanner({ entities: ['CREDIT_CARD'] });
    expect(s.scan('bob@acme.io 4111111111111111 +44 20 7946 0958').map((f) => f.entityType)).toEqual(['CREDIT_CARD']);
  });
  it('can leave text out of findings', () => {
    const s = createPiiScanner({ includeText: false });
    expect(s.scan('bob@acme.io')).toEqual([{ entityType: 'EMAIL_ADDRESS', start: 0, end: 11, confidence: 0.9 }]);
  });
  it('refuses bad options, naming them', () => {
    expect(() => createPiiScanner({ minConfidence: 2 })).toThrow(/"minConfidence"/);
    expect(() => createPiiScanner({ entities: ['NOPE' as EntityType] })).toThrow(/"entities".*NOPE/);
  });
  it('has a type for every recognizer and is frozen', () => {
    expect(ENTITY_TYPES).toHaveLength(14);
    expect(Object.isFrozen(scanner)).toBe(true);
  });
});

describe('overlap resolution', () => {
  it('keeps the higher confidence, then the longer span', () => {
    const r = resolveOverlaps([
      { start: 0, end: 10, confidence: 0.6, id: 'a' },
      { start: 5, end: 20, confidence: 0.9, id: 'b' },
      { start: 30, end: 40, confidence: 0.7, id: 'c' },
      { start: 30, end: 45, confidence: 0.7, id: 'd' },
      { start: 50, end: 55, confidence: 0.5, id: 'e' },
    ]);
    expect(r.map((x) => x.id)).toEqual(['b', 'd', 'e']);
  });
  it('lets a specific token win over the generic high-entropy finding on the same span', () => {
    expect(scanner.scan('"token": "ghp_16C7e42F292c6912E7710c838347Ae178B4a"').map((f) => f.entityType)).toEqual(['GITHUB_TOKEN']);
    expect(scanner.scan('Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlX3NpZ25hdHVyZQ').map((f) => f.entityType)).toEqual(['JWT']);
  });
});

describe('large input', () => {
  it('scans several MiB and finds the planted items', () => {
    const filler = '{"level":"info","ts":"2024-05-01T10:00:00Z","msg":"request served","status":200,"bytes":5123,"trace":"a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"}\n';
    const chunk = filler.repeat(Math.ceil((1024 * 1024) / filler.length));
    const planted = ['jane@example.com', '4111 1111 1111 1111', 'AKIAIOSFODNN7EXAMPLE', 'DE89 3704 0044 0532 0130 00'];
    const text = [chunk, planted[0], chunk, planted[1], chunk, planted[2], chunk, planted[3], chunk].join(' ');
    expect(text.length).toBeGreaterThan(5 * 1024 * 1024);
    expect(scanner.scan(text).map((f) => f.text)).toEqual(planted);
  });
  it('stays linear on inputs shaped against the triggers', () => {
    for (const unit of ['1 ', '1-', 'a@', '::', 'key ', 'eyJ', 'AKIA', '-----BEGIN ', 'DE89 ']) {
      const text = unit.repeat(Math.ceil((512 * 1024) / unit.length));
      expect(Array.isArray(scanner.scan(text))).toBe(true);
    }
  });
});
