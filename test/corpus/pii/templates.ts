import type { EntityType } from '../../../schema/rules/pii/finding.js';
import * as v from './values.js';
import { createRng, type Rng } from './rng.js';

export interface ExpectedFinding {
  readonly entityType: EntityType;
  readonly text: string;
}

export interface PiiSample {
  readonly id: string;
  /** Where a gateway would see it. */
  readonly kind: 'tool-arguments' | 'tool-result';
  readonly text: string;
  readonly expected: readonly ExpectedFinding[];
}

type Emit = (entityType: EntityType, value: string) => string;
type Template = { readonly name: string; readonly kind: PiiSample['kind']; readonly build: (r: Rng, e: Emit) => string };

const name = (r: Rng) => `${v.cap(r.pick(v.FIRST))} ${v.cap(r.pick(v.LAST))}`;
const json = (o: unknown) => JSON.stringify(o);

/** Templates the recognizers were tuned on. */
const TUNED: readonly Template[] = [
  {
    name: 'crm-contact-update', kind: 'tool-arguments',
    build: (r, e) => json({ name: 'crm.update_contact', arguments: { id: v.uuid(r), fullName: name(r), email: e('EMAIL_ADDRESS', v.email(r)), phone: e('PHONE_NUMBER', v.usPhone(r)), updatedAt: v.isoTime(r), tags: ['vip', `tier-${r.int(1, 3)}`] } }),
  },
  {
    name: 'crm-record-intl', kind: 'tool-result',
    build: (r, e) => `Contact: ${name(r)}\nCompany: ${v.cap(r.pick(v.LAST))} GmbH\nPhone: ${e('PHONE_NUMBER', v.intlPhone(r))}\nE-mail: ${e('EMAIL_ADDRESS', v.email(r))}\nAccount #: ${v.orderNo(r)}\nLast contact: ${v.isoTime(r)}`,
  },
  {
    name: 'hr-ssn', kind: 'tool-result',
    build: (r, e) => json({ employee: { name: name(r), employeeId: `E${r.digits(6)}`, ssn: e('US_SSN', v.ssn(r)), hired: '2019-04-01', salary: r.int(50, 250) * 1000 } }),
  },
  {
    name: 'hr-ssn-plain-context', kind: 'tool-result',
    build: (r, e) => `Applicant ${name(r)} - SSN ${e('US_SSN', v.ssn(r, r.pick(['plain', 'space', 'dash'])))} verified on ${v.isoTime(r)} (ref ${v.orderNo(r)})`,
  },
  {
    name: 'payment-card', kind: 'tool-arguments',
    build: (r, e) => json({ name: 'payments.charge', arguments: { amount: r.int(100, 99999), currency: 'usd', card_number: e('CREDIT_CARD', v.card(r)), exp: `${r.int(1, 12)}/${r.int(25, 30)}`, order: v.orderNo(r) } }),
  },
  {
    name: 'support-email-card', kind: 'tool-result',
    build: (r, e) => `From: ${e('EMAIL_ADDRESS', v.email(r))}\nSubject: Refund for order ${v.orderNo(r)}\n\nHi, I was charged twice on my card ${e('CREDIT_CARD', v.card(r))}. Please call me back at ${e('PHONE_NUMBER', v.usPhone(r))}.\nThanks,\n${name(r)}`,
  },
  {
    name: 'bank-transfer', kind: 'tool-arguments',
    build: (r, e) => json({ name: 'bank.transfer', arguments: { beneficiary: name(r), iban: e('IBAN_CODE', v.iban(r)), amount: `${r.int(10, 9999)}.${r.digits(2)}`, reference: v.orderNo(r), executeAt: v.isoTime(r) } }),
  },
  {
    name: 'access-log', kind: 'tool-result',
    build: (r, e) => {
      const lines: string[] = [];
      for (let i = 0; i < r.int(2, 5); i++) {
        lines.push(`${e('IP_ADDRESS', v.ipv4(r))} - - [${v.isoTime(r)}] "GET /api/v${r.int(1, 3)}/orders/${r.digits(6)} HTTP/1.1" ${r.pick([200, 404, 500])} ${r.int(100, 99999)} ${r.int(1, 999)}ms`);
      }
      return lines.join('\n');
    },
  },
  {
    name: 'ipv6-firewall', kind: 'tool-result',
    build: (r, e) => `rule ${r.int(1, 999)}: allow from ${e('IP_ADDRESS', v.ipv6(r))} to ${e('IP_ADDRESS', v.ipv4(r))} port ${r.int(1, 65535)} proto tcp # added ${v.isoTime(r)}`,
  },
  {
    name: 'dotenv', kind: 'tool-result',
    build: (r, e) => [
      `NODE_ENV=production`,
      `PORT=${r.int(3000, 9000)}`,
      `AWS_ACCESS_KEY_ID=${e('AWS_ACCESS_KEY', v.awsAccessKey(r))}`,
      `AWS_SECRET_ACCESS_KEY=${e('AWS_SECRET_KEY', v.awsSecret(r))}`,
      `STRIPE_SECRET_KEY=${e('STRIPE_KEY', v.stripeKey(r))}`,
      `APP_VERSION=${v.version(r)}`,
      `BUILD_SHA=${v.gitSha(r)}`,
    ].join('\n'),
  },
  {
    name: 'github-config', kind: 'tool-arguments',
    build: (r, e) => json({ name: 'ci.configure', arguments: { repo: `${r.pick(v.LAST)}/${r.pick(['api', 'web', 'infra'])}`, token: e('GITHUB_TOKEN', v.githubToken(r)), ref: v.gitSha(r), runId: r.digits(10) } }),
  },
  {
    name: 'slack-webhook-yaml', kind: 'tool-result',
    build: (r, e) => `notifications:\n  slack:\n    channel: "#alerts"\n    bot_token: ${e('SLACK_TOKEN', v.slackToken(r))}\n  pagerduty:\n    service_id: P${r.chars('ABCDEFGHJKLMNPQRSTUVWXYZ0123456789', 6)}\nimage: registry.example.com/app@sha256:${v.sha256(r)}`,
  },
  {
    name: 'http-request-dump', kind: 'tool-result',
    build: (r, e) => `POST /v1/sessions HTTP/1.1\nHost: api.example.com\nAuthorization: Bearer ${e('JWT', v.jwt(r))}\nX-Request-Id: ${v.uuid(r)}\nContent-Type: application/json\n\n{"client_ip":"${e('IP_ADDRESS', v.ipv4(r))}","user":"${e('EMAIL_ADDRESS', v.email(r))}"}`,
  },
  {
    name: 'private-key-json', kind: 'tool-result',
    build: (r, e) => json({ type: 'service_account', project_id: `proj-${r.digits(6)}`, private_key_id: e('HIGH_ENTROPY_SECRET', v.gitSha(r)), private_key: e('PRIVATE_KEY', v.privateKey(r, false)), client_email: e('EMAIL_ADDRESS', `svc-${r.digits(4)}@proj-${r.digits(6)}.iam.gserviceaccount.com`) }),
  },
  {
    name: 'private-key-file', kind: 'tool-result',
    build: (r, e) => `$ cat ~/.ssh/id_ed25519\n${e('PRIVATE_KEY', v.privateKey(r, false))}\n$ `,
  },
  {
    name: 'api-key-near-word', kind: 'tool-arguments',
    build: (r, e) => json({ name: 'http.request', arguments: { url: `https://api.example.com/v2/items?page=${r.int(1, 9)}`, headers: { 'x-api-key': e('HIGH_ENTROPY_SECRET', v.highEntropy(r)), 'x-trace-id': v.uuid(r) } } }),
  },
  {
    name: 'python-stacktrace', kind: 'tool-result',
    build: (r, e) => `Traceback (most recent call last):\n  File "/srv/app/billing.py", line ${r.int(10, 900)}, in charge\n    resp = client.charge(card="${e('CREDIT_CARD', v.card(r))}", email="${e('EMAIL_ADDRESS', v.email(r))}")\n  File "/usr/lib/python3.${r.int(8, 12)}/site-packages/stripe/api.py", line ${r.int(10, 900)}, in charge\nstripe.error.CardError: Request req_${r.chars('abcdefghijklmnopqrstuvwxyz0123456789', 14)}: Your card was declined. (api_key=${e('STRIPE_KEY', v.stripeKey(r))})`,
  },
  {
    name: 'code-snippet', kind: 'tool-arguments',
    build: (r, e) => `const client = new Client({\n  endpoint: "https://${r.pick(['api', 'eu', 'us-east'])}.example.com",\n  apiToken: "${e('HIGH_ENTROPY_SECRET', v.highEntropy(r))}",\n  retries: ${r.int(1, 5)},\n  version: "${v.version(r)}",\n});\n// TODO(${r.pick(v.FIRST)}): rotate before ${v.isoTime(r)}`,
  },
  {
    name: 'csv-export', kind: 'tool-result',
    build: (r, e) => {
      const rows = ['name,email,phone,country,created'];
      for (let i = 0; i < r.int(2, 4); i++) rows.push(`${name(r)},${e('EMAIL_ADDRESS', v.email(r))},${e('PHONE_NUMBER', r.next() < 0.5 ? v.usPhone(r) : v.intlPhone(r))},${r.pick(['US', 'GB', 'DE', 'FR', 'IN'])},${v.isoTime(r)}`);
      return rows.join('\n');
    },
  },
  {
    name: 'neg-build-metadata', kind: 'tool-result',
    build: (r) => json({ build: { id: r.digits(9), version: v.version(r), commit: v.gitSha(r), started: v.isoTime(r), epochMs: v.epoch(r), digest: `sha256:${v.sha256(r)}`, artifacts: [`app-${v.version(r)}.tgz`, `icon@2x.png`] } }),
  },
  {
    name: 'neg-orders', kind: 'tool-result',
    build: (r) => `Order ${v.orderNo(r)} placed ${v.isoTime(r)} total ${v.price(r)} (${r.int(1, 9)} items). Tracking: 1Z${r.chars('0123456789ABCDEFGHJKLMNPRSTUVWXYZ', 16)}. Ref ${v.orderNo(r)}, ISBN ${v.isbn(r)}, zip ${r.digits(5)}.`,
  },
  {
    name: 'neg-luhn-and-invalid', kind: 'tool-result',
    build: (r) => `Test vectors: card ${v.badLuhnCard(r)} (should be declined), ssn ${v.invalidSsn(r)} (invalid), iban ${v.iban(r, false)} (bad check digits), ip 256.${r.int(0, 255)}.${r.int(0, 255)}.1, mac ${v.mac(r)}, at ${String(r.int(0, 23)).padStart(2, '0')}:${String(r.int(10, 59))}:${String(r.int(10, 59))}`,
  },
  {
    name: 'neg-hashes', kind: 'tool-result',
    build: (r) => `commit ${v.gitSha(r)}\nAuthor: ${name(r)} <noreply>\nDate: ${v.isoTime(r)}\n\n    Bump lodash to ${v.version(r)} (integrity sha512-${v.base64Blob(r)})\n    checksum ${v.sha256(r)}  dist/app.js\n    request-id ${v.uuid(r)}`,
  },
  {
    name: 'neg-metrics', kind: 'tool-result',
    build: (r) => json({ metrics: [{ ts: Number(v.epoch(r).slice(0, 10)), p50: r.int(1, 900) / 10, p99: r.int(100, 9000) / 10, count: r.int(1000, 9999999999) }], window: `${r.int(1, 60)}m`, host: `web-${r.int(1, 40)}.internal`, tokens_used: r.int(100, 90000) }),
  },
  {
    name: 'mixed-ticket', kind: 'tool-result',
    build: (r, e) => `Ticket #${r.digits(6)} (${v.orderNo(r)})\nReporter: ${name(r)} <${e('EMAIL_ADDRESS', v.email(r))}>\nCallback number: ${e('PHONE_NUMBER', v.intlPhone(r))}\nClient IP: ${e('IP_ADDRESS', v.ipv4(r))}\nApp ${v.version(r)} on build ${r.digits(8)}\nPlease refund to IBAN ${e('IBAN_CODE', v.iban(r))}.`,
  },
];

/** Templates written separately and only evaluated: other shapes, other wording. */
const HELD_OUT: readonly Template[] = [
  {
    name: 'ho-chat-transcript', kind: 'tool-result',
    build: (r, e) => `[${v.isoTime(r)}] customer: hey, my new number is ${e('PHONE_NUMBER', r.next() < 0.5 ? v.usPhone(r) : v.intlPhone(r))} and you can reach me at ${e('EMAIL_ADDRESS', v.email(r))}\n[${v.isoTime(r)}] agent: thanks! updated ticket ${v.orderNo(r)}`,
  },
  {
    name: 'ho-kyc-form', kind: 'tool-arguments',
    build: (r, e) => json({ tool: 'kyc_submit', input: { applicant: name(r), social_security_number: e('US_SSN', v.ssn(r)), dob: `19${r.int(50, 99)}-0${r.int(1, 9)}-1${r.int(0, 9)}`, bank: { iban: e('IBAN_CODE', v.iban(r)) }, contact: { mobile: e('PHONE_NUMBER', v.intlPhone(r)) } } }),
  },
  {
    name: 'ho-terraform', kind: 'tool-result',
    build: (r, e) => `provider "aws" {\n  region     = "eu-west-${r.int(1, 3)}"\n  access_key = "${e('AWS_ACCESS_KEY', v.awsAccessKey(r))}"\n  secret_key = "${e('AWS_SECRET_KEY', v.awsSecret(r))}"\n}\n\nresource "aws_instance" "web" {\n  ami           = "ami-${r.chars('0123456789abcdef', 17)}"\n  private_ip    = "${e('IP_ADDRESS', v.ipv4(r))}"\n}`,
  },
  {
    name: 'ho-invoice-email', kind: 'tool-result',
    build: (r, e) => `Dear ${name(r)},\n\nInvoice ${v.orderNo(r)} of ${v.price(r)} is due on ${v.isoTime(r).slice(0, 10)}. Pay by card (${e('CREDIT_CARD', v.card(r))} on file) or wire to ${e('IBAN_CODE', v.iban(r))}.\nQuestions? ${e('EMAIL_ADDRESS', v.email(r))} or ${e('PHONE_NUMBER', v.usPhone(r))}.\n\nISBN of the manual: ${v.isbn(r)}`,
  },
  {
    name: 'ho-kubectl-secret', kind: 'tool-result',
    build: (r, e) => `apiVersion: v1\nkind: Secret\nmetadata:\n  name: app-secrets\n  uid: ${v.uuid(r)}\nstringData:\n  GITHUB_TOKEN: ${e('GITHUB_TOKEN', v.githubToken(r))}\n  SLACK_BOT: ${e('SLACK_TOKEN', v.slackToken(r))}\n  DB_PASSWORD: ${e('HIGH_ENTROPY_SECRET', v.highEntropy(r))}\n  resourceVersion: "${r.digits(8)}"`,
  },
  {
    name: 'ho-auth-debug', kind: 'tool-result',
    build: (r, e) => `DEBUG auth: verifying id_token=${e('JWT', v.jwt(r))} for ${e('EMAIL_ADDRESS', v.email(r))} from ${e('IP_ADDRESS', r.next() < 0.5 ? v.ipv6(r) : v.ipv4(r))} (session ${v.uuid(r)}, took ${r.int(1, 99)}.${r.digits(2)}ms)`,
  },
  {
    name: 'ho-payment-webhook', kind: 'tool-arguments',
    build: (r, e) => json({ event: 'charge.failed', livemode: true, data: { card_last4: r.digits(4), pan: e('CREDIT_CARD', v.card(r)), customer_phone: e('PHONE_NUMBER', v.usPhone(r)) }, created: Number(v.epoch(r).slice(0, 10)), request: { idempotency_key: v.uuid(r) } }),
  },
  {
    name: 'ho-neg-release-notes', kind: 'tool-result',
    build: (r) => `## ${v.version(r)} (${v.isoTime(r).slice(0, 10)})\n- Fixed crash in parser (#${r.digits(4)}), commit ${v.gitSha(r).slice(0, 12)}\n- Bumped openssl to 3.${r.int(0, 3)}.${r.int(0, 15)}\n- Docker image digest sha256:${v.sha256(r)}\n- Benchmarks: ${r.int(1000, 999999)} ops/s, p99 ${r.int(1, 99)}.${r.digits(1)} ms\n- Order of magnitude: ${r.digits(12)} rows`,
  },
  {
    name: 'ho-neg-inventory', kind: 'tool-result',
    build: (r) => json({ sku: `SKU-${r.digits(8)}`, ean: r.digits(13), qty: r.int(0, 999), location: `A${r.int(1, 40)}-${r.int(1, 9)}`, batch: `${r.digits(4)}-${r.digits(3)}-${r.digits(4)}`, checksum: v.sha256(r).slice(0, 40), expires: v.isoTime(r), declined_card: v.badLuhnCard(r) }),
  },
  {
    name: 'ho-stripe-log', kind: 'tool-result',
    build: (r, e) => `2024-05-0${r.int(1, 9)} ${String(r.int(10, 23))}:${String(r.int(10, 59))}:00 INFO stripe client init key=${e('STRIPE_KEY', v.stripeKey(r))} account=acct_${r.chars('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', 16)} retry=${r.int(0, 3)}`,
  },
];

function build(templates: readonly Template[], seed: number, count: number, prefix: string): PiiSample[] {
  const r = createRng(seed);
  const samples: PiiSample[] = [];
  for (let i = 0; i < count; i++) {
    const template = templates[i % templates.length]!;
    const expected: ExpectedFinding[] = [];
    const e: Emit = (entityType, value) => {
      expected.push({ entityType, text: value });
      return value;
    };
    const text = template.build(r, e);
    // JSON.stringify escapes newlines inside values; label what the scanner will see.
    const seen = expected.map((x) => (text.includes(x.text) ? x : { ...x, text: JSON.stringify(x.text).slice(1, -1) }));
    samples.push({ id: `${prefix}-${String(i).padStart(3, '0')}-${template.name}`, kind: template.kind, text, expected: seen });
  }
  return samples;
}

export function buildPiiCorpus(): { tuned: PiiSample[]; heldOut: PiiSample[] } {
  return { tuned: build(TUNED, 20240601, 300, 'pii'), heldOut: build(HELD_OUT, 777001, 100, 'pii-ho') };
}
