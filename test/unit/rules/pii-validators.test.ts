import { describe, expect, it } from 'vitest';
import { ibanChecksumValid, ipv4Valid, ipv6Groups, knownIin, luhnValid, shannonEntropy, ssnValid } from '../../../schema/rules/pii/validators.js';

const digitsOf = (s: string) => Uint8Array.from(s.replace(/\D/g, ''), (c) => Number(c));
const charsOf = (s: string) => Uint8Array.from(s.replace(/ /g, ''), (c) => c.charCodeAt(0));

describe('Luhn and IIN', () => {
  it.each(['4111111111111111', '5555555555554444', '378282246310005', '6011111111111117', '3530111333300000', '2221000000000009'])('accepts %s', (n) => {
    const d = digitsOf(n);
    expect(luhnValid(d, d.length)).toBe(true);
    expect(knownIin(d, d.length)).toBe(true);
  });
  it.each(['4111111111111112', '5555555555554440', '378282246310006'])('rejects the checksum of %s', (n) => {
    const d = digitsOf(n);
    expect(luhnValid(d, d.length)).toBe(false);
  });
  it('rejects unknown issuers and wrong lengths', () => {
    for (const n of ['9111111111111111', '1234567812345670', '341111111111111111']) {
      const d = digitsOf(n);
      expect(knownIin(d, d.length), n).toBe(false);
    }
  });
});

describe('IBAN mod-97', () => {
  it.each(['DE89 3704 0044 0532 0130 00', 'GB82 WEST 1234 5698 7654 32', 'FR14 2004 1010 0505 0001 3M02 606', 'NL91ABNA0417164300', 'CH9300762011623852957'])('accepts %s', (iban) => {
    const c = charsOf(iban);
    expect(ibanChecksumValid(c, c.length)).toBe(true);
  });
  it.each(['DE88 3704 0044 0532 0130 00', 'GB82 WEST 1234 5698 7654 33'])('rejects %s', (iban) => {
    const c = charsOf(iban);
    expect(ibanChecksumValid(c, c.length)).toBe(false);
  });
});

describe('SSN rules', () => {
  it.each(['123-45-6789', '001-01-0001', '899-99-9999', '665-12-3456'])('accepts %s', (s) => expect(ssnValid(digitsOf(s))).toBe(true));
  it.each(['000-12-3456', '666-12-3456', '900-12-3456', '999-99-9999', '123-00-4567', '123-45-0000', '078-05-1120', '219-09-9999'])('rejects %s', (s) =>
    expect(ssnValid(digitsOf(s))).toBe(false),
  );
});

describe('IP addresses', () => {
  it('IPv4 octets', () => {
    for (const ok of ['0.0.0.0', '192.168.1.1', '255.255.255.255', '10.0.0.254']) expect(ipv4Valid(ok, 0, ok.length), ok).toBe(true);
    for (const bad of ['256.1.1.1', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1..2.3', '1.2.3.1000']) expect(ipv4Valid(bad, 0, bad.length), bad).toBe(false);
  });
  it('IPv6 full, compressed and IPv4-embedded forms', () => {
    const groups = (s: string) => ipv6Groups(s, 0, s.length);
    expect(groups('2001:0db8:85a3:0000:0000:8a2e:0370:7334')).toBe(8);
    expect(groups('2001:db8::8a2e:370:7334')).toBe(5);
    expect(groups('fe80::1')).toBe(2);
    expect(groups('::1')).toBe(1);
    expect(groups('1::')).toBe(1);
    expect(groups('::ffff:192.0.2.128')).toBe(3);
    expect(groups('64:ff9b::192.0.2.33')).toBe(4);
    for (const bad of ['::', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '1::2::3', '12345::1', 'g::1', '10:30:00', '00:1A:2B:3C:4D:5E', ':1:2:3:4:5:6:7', '1:2:3:4:5:6:7:']) {
      expect(groups(bad), bad).toBe(0);
    }
  });
});

describe('Shannon entropy', () => {
  it('is 0 for one repeated character and log2(n) for n distinct ones', () => {
    expect(shannonEntropy('aaaaaaaa', 0, 8)).toBe(0);
    expect(shannonEntropy('abcdefgh', 0, 8)).toBeCloseTo(3);
  });
});
