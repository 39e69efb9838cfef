import { createHash } from 'node:crypto';
import type { Rng } from './rng.js';

/** Generators of realistic values, valid and deliberately invalid. */
export const FIRST = ['james', 'maria', 'wei', 'olga', 'ahmed', 'priya', 'lucas', 'emma', 'kenji', 'fatima', 'noah', 'chloe', 'diego', 'anna', 'raj', 'sofia'];
export const LAST = ['smith', 'garcia', 'zhang', 'ivanova', 'khan', 'patel', 'muller', 'dubois', 'tanaka', 'nguyen', 'okafor', 'rossi', 'schmidt', 'kowalski'];
export const DOMAINS = ['example.com', 'acme.io', 'contoso.co.uk', 'globex.de', 'initech.fr', 'mail.example.org', 'corp.acme-widgets.com', 'tata.co.in', 'gmail.com', 'outlook.com'];

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const B62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const B64 = B62 + '+/';
const B64URL = B62 + '-_';
const HEX = '0123456789abcdef';

export const cap = (s: string) => s[0]!.toUpperCase() + s.slice(1);

export function email(r: Rng): string {
  const f = r.pick(FIRST);
  const l = r.pick(LAST);
  const local = r.pick([`${f}.${l}`, `${f[0]}${l}`, `${f}_${l}${r.int(1, 99)}`, `${f}+${r.pick(['billing', 'test', 'crm'])}`, `${l}.${f}`]);
  return `${local}@${r.pick(DOMAINS)}`;
}

export function usPhone(r: Rng): string {
  const area = `${r.int(2, 9)}${r.digits(2)}`;
  const ex = `${r.int(2, 9)}${r.digits(2)}`;
  const line = r.digits(4);
  return r.pick([`(${area}) ${ex}-${line}`, `${area}-${ex}-${line}`, `${area}.${ex}.${line}`, `+1 ${area} ${ex} ${line}`, `+1-${area}-${ex}-${line}`, `1-${area}-${ex}-${line}`, `+1${area}${ex}${line}`]);
}

export function intlPhone(r: Rng): string {
  return r.pick([
    () => `+44 20 ${r.digits(4)} ${r.digits(4)}`,
    () => `+44 7700 ${r.digits(6)}`,
    () => `020 ${r.digits(4)} ${r.digits(4)}`,
    () => `07700 ${r.digits(6)}`,
    () => `+49 30 ${r.digits(7)}`,
    () => `+49 151 ${r.digits(8)}`,
    () => `030 ${r.digits(7)}`,
    () => `0151 ${r.digits(8)}`,
    () => `089/${r.digits(7)}`,
    () => `+33 1 ${r.digits(2)} ${r.digits(2)} ${r.digits(2)} ${r.digits(2)}`,
    () => `+33 6 ${r.digits(2)} ${r.digits(2)} ${r.digits(2)} ${r.digits(2)}`,
    () => `01 ${r.digits(2)} ${r.digits(2)} ${r.digits(2)} ${r.digits(2)}`,
    () => `06.${r.digits(2)}.${r.digits(2)}.${r.digits(2)}.${r.digits(2)}`,
    () => `+91 ${r.int(6, 9)}${r.digits(4)} ${r.digits(5)}`,
    () => `+91-${r.int(6, 9)}${r.digits(9)}`,
    () => `${r.int(6, 9)}${r.digits(4)} ${r.digits(5)}`,
  ])();
}

export function ssn(r: Rng, format: 'dash' | 'space' | 'plain' = 'dash'): string {
  let area = r.int(1, 899);
  if (area === 666) area = 665;
  const a = String(area).padStart(3, '0');
  const g = String(r.int(1, 99)).padStart(2, '0');
  const s = String(r.int(1, 9999)).padStart(4, '0');
  return format === 'dash' ? `${a}-${g}-${s}` : format === 'space' ? `${a} ${g} ${s}` : `${a}${g}${s}`;
}

export function invalidSsn(r: Rng): string {
  return r.pick([`000-${r.digits(2)}-${r.int(1000, 9999)}`, `666-${r.int(10, 99)}-${r.int(1000, 9999)}`, `9${r.digits(2)}-${r.int(10, 99)}-${r.int(1000, 9999)}`, `${r.int(100, 665)}-00-${r.int(1000, 9999)}`, `${r.int(100, 665)}-${r.int(10, 99)}-0000`]);
}

function luhnCheckDigit(body: string): number {
  let sum = 0;
  let double = true;
  for (let i = body.length - 1; i >= 0; i--) {
    let d = Number(body[i]);
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return (10 - (sum % 10)) % 10;
}

export function cardDigits(r: Rng): string {
  const [prefix, length] = r.pick<[string, number]>([
    ['4', 16], ['4', 16], ['51', 16], ['55', 16], ['2221', 16], ['2720', 16], ['34', 15], ['37', 15], ['6011', 16], ['65', 16], ['3530', 16], ['36', 14], ['62', 16],
  ]);
  const body = prefix + r.digits(length - prefix.length - 1);
  return body + luhnCheckDigit(body);
}

export function formatCard(r: Rng, digits: string): string {
  const sep = r.pick([' ', '-', '', ' ']);
  if (sep === '') return digits;
  if (digits.length === 15) return `${digits.slice(0, 4)}${sep}${digits.slice(4, 10)}${sep}${digits.slice(10)}`;
  return digits.match(/.{1,4}/g)!.join(sep);
}

export function card(r: Rng): string {
  return formatCard(r, cardDigits(r));
}

export function badLuhnCard(r: Rng): string {
  const good = cardDigits(r);
  const last = (Number(good.at(-1)) + r.int(1, 9)) % 10;
  return formatCard(r, good.slice(0, -1) + last);
}

function mod97(s: string): number {
  let rem = 0;
  for (const ch of s) {
    const v = /[0-9]/.test(ch) ? ch : String(ch.charCodeAt(0) - 55);
    for (const d of v) rem = (rem * 10 + Number(d)) % 97;
  }
  return rem;
}

const IBAN_SHAPES: ReadonlyArray<[string, (r: Rng) => string]> = [
  ['DE', (r) => r.digits(18)],
  ['GB', (r) => r.chars('ABCDEFGHIJKLMNOPQRSTUVWXYZ', 4) + r.digits(14)],
  ['FR', (r) => r.digits(23)],
  ['NL', (r) => r.chars('ABCDEFGHIJKLMNOPQRSTUVWXYZ', 4) + r.digits(10)],
  ['ES', (r) => r.digits(20)],
  ['IT', (r) => r.chars('ABCDEFGHIJKLMNOPQRSTUVWXYZ', 1) + r.digits(22)],
  ['CH', (r) => r.digits(17)],
  ['BE', (r) => r.digits(12)],
];

export function ibanCompact(r: Rng, valid = true): string {
  const [country, bban] = r.pick(IBAN_SHAPES);
  const b = bban(r);
  const check = 98 - mod97(`${b}${country}00`);
  let cd = String(check).padStart(2, '0');
  if (!valid) cd = String((check + r.int(1, 50)) % 97 + 2).padStart(2, '0');
  return `${country}${cd}${b}`;
}

export function iban(r: Rng, valid = true): string {
  const compact = ibanCompact(r, valid);
  return r.next() < 0.5 ? compact : compact.match(/.{1,4}/g)!.join(' ');
}

export function ipv4(r: Rng): string {
  return r.pick([
    () => `10.${r.int(0, 255)}.${r.int(0, 255)}.${r.int(1, 254)}`,
    () => `192.168.${r.int(0, 255)}.${r.int(1, 254)}`,
    () => `172.${r.int(16, 31)}.${r.int(0, 255)}.${r.int(1, 254)}`,
    () => `${r.int(11, 223)}.${r.int(0, 255)}.${r.int(0, 255)}.${r.int(1, 254)}`,
  ])();
}

export function ipv6(r: Rng): string {
  const g = () => r.chars(HEX, r.int(1, 4));
  return r.pick([
    () => Array.from({ length: 8 }, () => r.chars(HEX, 4)).join(':'),
    () => `2001:db8:${g()}:${g()}::${g()}`,
    () => `fe80::${g()}:${g()}:${g()}:${g()}`,
    () => `2001:0db8:85a3::8a2e:0370:${r.chars(HEX, 4)}`,
    () => `::ffff:${r.int(1, 223)}.${r.int(0, 255)}.${r.int(0, 255)}.${r.int(1, 254)}`,
    () => `2a00:1450:${g()}:${g()}::${g()}`,
  ])();
}

export const awsAccessKey = (r: Rng) => `${r.pick(['AKIA', 'ASIA'])}${r.chars(B32, 16)}`;
export const awsSecret = (r: Rng) => r.chars(B64, 40);
export const githubToken = (r: Rng) =>
  r.next() < 0.8 ? `${r.pick(['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_'])}${r.chars(B62, 36)}` : `github_pat_${r.chars(B62, 22)}_${r.chars(B62, 59)}`;
export const slackToken = (r: Rng) => `${r.pick(['xoxb', 'xoxp', 'xoxa', 'xoxr', 'xoxs'])}-${r.digits(12)}-${r.digits(13)}-${r.chars(B62, 24)}`;
export const stripeKey = (r: Rng) => `${r.pick(['sk', 'rk', 'sk', 'pk'])}_${r.pick(['live', 'test', 'live'])}_${r.chars(B62, r.int(24, 99))}`;
export const highEntropy = (r: Rng) => r.pick([() => r.chars(B62, r.int(24, 48)), () => r.chars(HEX, 32), () => r.chars(HEX, 64), () => r.chars(B64URL, 43)])();

export function jwt(r: Rng): string {
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const header = enc({ alg: r.pick(['HS256', 'RS256', 'ES256']), typ: 'JWT' });
  const payload = enc({ sub: r.digits(10), name: `${cap(r.pick(FIRST))} ${cap(r.pick(LAST))}`, iat: 1700000000 + r.int(0, 9999999) });
  return `${header}.${payload}.${r.chars(B64URL, 43)}`;
}

export function privateKey(r: Rng, escaped: boolean): string {
  const kind = r.pick(['RSA ', 'EC ', 'OPENSSH ', '', 'ENCRYPTED ']);
  const nl = escaped ? '\\n' : '\n';
  const lines = Array.from({ length: r.int(3, 8) }, () => r.chars(B64, 64));
  return `-----BEGIN ${kind}PRIVATE KEY-----${nl}${lines.join(nl)}${nl}-----END ${kind}PRIVATE KEY-----`;
}

export const uuid = (r: Rng) => `${r.chars(HEX, 8)}-${r.chars(HEX, 4)}-4${r.chars(HEX, 3)}-${r.pick(['8', '9', 'a', 'b'])}${r.chars(HEX, 3)}-${r.chars(HEX, 12)}`;
export const gitSha = (r: Rng) => r.chars(HEX, 40);
export const sha256 = (r: Rng) => createHash('sha256').update(r.digits(12)).digest('hex');
export const isoTime = (r: Rng) => `2024-${String(r.int(1, 12)).padStart(2, '0')}-${String(r.int(1, 28)).padStart(2, '0')}T${String(r.int(0, 23)).padStart(2, '0')}:${String(r.int(0, 59)).padStart(2, '0')}:${String(r.int(0, 59)).padStart(2, '0')}Z`;
export const orderNo = (r: Rng) => r.pick([`ORD-2024-${r.digits(6)}`, `INV-${r.digits(10)}`, `PO#${r.digits(8)}`, `SO-${r.digits(4)}-${r.digits(4)}`, `case_${r.digits(9)}`]);
export const version = (r: Rng) => r.pick([`v${r.int(0, 9)}.${r.int(0, 30)}.${r.int(0, 99)}`, `${r.int(1, 9)}.${r.int(0, 20)}.${r.int(0, 40)}`, `${r.int(1, 5)}.${r.int(0, 9)}.${r.int(0, 9)}-beta.${r.int(1, 9)}`]);
export const isbn = (r: Rng) => r.pick([`978-${r.int(0, 1)}-${r.digits(3)}-${r.digits(5)}-${r.int(0, 9)}`, `978${r.digits(10)}`, `0-${r.digits(3)}-${r.digits(5)}-${r.int(0, 9)}`]);
export const epoch = (r: Rng) => String(1700000000 + r.int(0, 99999999)) + (r.next() < 0.5 ? r.digits(3) : '');
export const price = (r: Rng) => `$${r.int(1, 99)},${r.digits(3)}.${r.digits(2)}`;
export const mac = (r: Rng) => Array.from({ length: 6 }, () => r.chars('0123456789ABCDEF', 2)).join(':');
export const base64Blob = (r: Rng) => r.chars(B64, r.int(60, 120)) + '==';
