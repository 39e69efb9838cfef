import { describe, expect, it } from 'vitest';
import { damerauLevenshtein, hostParts, nameWords, skeleton } from '../../../control-plane/servers/threats/confusables.js';
import { detectMimicry, type ExistingServer } from '../../../control-plane/servers/threats/mimicry.js';

describe('confusables skeleton', () => {
  it('maps Cyrillic, Greek, fullwidth, accented and digit look-alikes to the Latin letters they pass for', () => {
    expect(skeleton('gіthub')).toBe('github'); // Cyrillic і (U+0456)
    expect(skeleton('gіtһսb')).not.toBe('github'); // Armenian ս is not in the compact map: edit distance catches it
    expect(skeleton('ѕlасk')).toBe('slack'); // Cyrillic ѕ, а, с
    expect(skeleton('gοοgle')).toBe('google'); // Greek omicrons
    expect(skeleton('ＧｉｔＨｕｂ')).toBe('github'); // fullwidth, through NFKC
    expect(skeleton('gíthúb')).toBe('github'); // accents stripped
    expect(skeleton('g1thub')).toBe('glthub');
    expect(skeleton('GlTHUB')).toBe(skeleton('GITHUB')); // capital I reads as l
    expect(skeleton('g0ogle')).toBe('google');
    expect(skeleton('rnicrosoft')).toBe('microsoft');
    expect(skeleton('vvikipedia')).toBe('wikipedia');
  });

  it('splits names into words whatever the separators', () => {
    expect(nameWords('GitHub-MCP')).toEqual(['github', 'mcp']);
    expect(nameWords('github_mcp (prod)')).toEqual(['github', 'mcp', 'prod']);
  });
});

describe('Damerau-Levenshtein distance', () => {
  it('counts insertions, deletions, substitutions and adjacent transpositions as one edit each', () => {
    expect(damerauLevenshtein('github', 'github')).toBe(0);
    expect(damerauLevenshtein('github', 'githuh')).toBe(1);
    expect(damerauLevenshtein('github', 'gihtub')).toBe(1);
    expect(damerauLevenshtein('github', 'githubb')).toBe(1);
    expect(damerauLevenshtein('github', 'gitlab')).toBe(2);
    expect(damerauLevenshtein('ca', 'abc')).toBe(3); // optimal string alignment: no edit of a transposed pair
    expect(damerauLevenshtein('', 'abc')).toBe(3);
  });

  it('stops early past the limit', () => {
    expect(damerauLevenshtein('a'.repeat(50), 'b'.repeat(50), 2)).toBe(3);
    expect(damerauLevenshtein('short', 'a much longer string', 2)).toBe(3);
  });
});

describe('host parts', () => {
  it('finds the registrable domain, with multi-label suffixes and punycode decoded', () => {
    expect(hostParts('https://mcp.github.com/mcp')).toMatchObject({ label: 'github', suffix: 'com', subdomains: ['mcp'] });
    expect(hostParts('https://api.example.co.uk/x')).toMatchObject({ label: 'example', suffix: 'co.uk', subdomains: ['api'] });
    expect(hostParts('https://xn--gthub-n2e.com/')).toMatchObject({ host: 'gіthub.com', label: 'gіthub' });
    expect(hostParts('https://alice.github.io/')).toMatchObject({ label: 'alice', suffix: 'github.io' });
  });

  it('has nothing to compare for IP addresses, localhost and bad URLs', () => {
    expect(hostParts('http://127.0.0.1:8080/mcp')).toBeNull();
    expect(hostParts('http://[::1]:8080/mcp')).toBeNull();
    expect(hostParts('http://localhost:3000/mcp')).toBeNull();
    expect(hostParts('not a url')).toBeNull();
  });
});

const existing: ExistingServer[] = [
  { id: 's-github', name: 'GitHub', url: 'https://github-mcp.example.com/mcp' },
  { id: 's-api', name: 'GitHub API', url: 'https://api.github.com/mcp' },
  { id: 's-slack', name: 'Slack', url: 'https://mcp.slack.com/mcp' },
  { id: 's-jira', name: 'Jira EU', url: 'https://eu.jira.atlassian.net/mcp' },
  { id: 's-1', name: 'Server 1', url: 'http://127.0.0.1:9001/mcp' },
  { id: 's-stdio', name: 'Filesystem', url: null },
];

const codes = (name: string, url: string | null = null) => detectMimicry({ name, url }, existing).map((f) => `${f.code}:${f.serverId}`);

describe('anti-mimicry', () => {
  it('flags a name that differs only in look-alike characters, naming the characters', () => {
    const [finding] = detectMimicry({ name: 'gіthub', url: null }, existing);
    expect(finding).toMatchObject({ code: 'CONFUSABLE_NAME', serverId: 's-github', serverName: 'GitHub' });
    expect(finding!.message).toContain('і (U+0456)');
    expect(codes('Git-Hub')).toEqual(['CONFUSABLE_NAME:s-github']);
    expect(codes('ＧｉｔＨｕｂ')).toEqual(['CONFUSABLE_NAME:s-github']);
    expect(codes('Fi1esystem')).toEqual(['CONFUSABLE_NAME:s-stdio']);
  });

  it('flags names within two edits', () => {
    expect(codes('githuh')).toEqual(['SIMILAR_NAME:s-github']);
    expect(codes('Gihtub')).toEqual(['SIMILAR_NAME:s-github']);
    expect(codes('GitHubb')).toEqual(['SIMILAR_NAME:s-github']);
    expect(codes('Filesytsem')).toEqual(['SIMILAR_NAME:s-stdio']);
    expect(codes('Filesstem')).toEqual(['SIMILAR_NAME:s-stdio']); // two edits on a long name
  });

  it('flags look-alike hosts: swapped TLD, homoglyphs, embedded domains, typos and hyphen extensions', () => {
    expect(codes('Issues', 'https://github-mcp.example.co/mcp')).toEqual(['SWAPPED_TLD:s-github']);
    expect(codes('Issues', 'https://mcp.slack.co.uk/mcp')).toEqual(['SWAPPED_TLD:s-slack']);
    expect(codes('Mirror', 'https://api.gіthub.com/mcp')).toEqual(['HOMOGLYPH_HOST:s-api']);
    expect(codes('Mirror', 'https://api.xn--gthub-n2e.com/mcp')).toEqual(['HOMOGLYPH_HOST:s-api']);
    expect(codes('Mirror', 'https://github-com.evil.io/mcp')).toEqual(['EMBEDDED_DOMAIN:s-api']);
    expect(codes('Mirror', 'https://api.github.com.evil.io/mcp')).toEqual(['EMBEDDED_DOMAIN:s-api']);
    expect(codes('Mirror', 'https://mcp.githuh.com/mcp')).toEqual(['LOOKALIKE_HOST:s-api']);
    expect(codes('Mirror', 'https://github-login.com/mcp')).toEqual(['LOOKALIKE_HOST:s-api']);
    expect(codes('Mirror', 'https://mcp.s1ack.com/mcp')).toEqual(['HOMOGLYPH_HOST:s-slack']);
  });

  it('reports the name and the host separately when both resemble', () => {
    expect(codes('githuh', 'https://github-mcp.example.co/mcp')).toEqual(['SIMILAR_NAME:s-github', 'SWAPPED_TLD:s-github']);
  });

  it('leaves unrelated names and hosts alone, and numbered or regional siblings', () => {
    for (const name of ['Linear', 'Notion', 'GitLab', 'Sentry', 'Server 2', 'Server 10', 'Jira US', 'GitHub 2', 'GitHub (personal)', 'GitHub Enterprise', 'Files', 'Slack bot', 'GH']) {
      expect(codes(name), name).toEqual([]);
    }
    for (const url of [
      'https://mcp.linear.app/sse',
      'https://mcp.notion.com/mcp',
      'https://other.github.com/mcp', // same registrable domain as api.github.com: the same owner
      'https://github-mcp.example.com/v2/mcp', // same host, another path
      'https://gitlab.com/api/mcp',
      'http://127.0.0.1:9002/mcp',
      'http://localhost:9001/mcp',
    ]) {
      expect(codes('Unrelated', url), url).toEqual([]);
    }
  });
});
