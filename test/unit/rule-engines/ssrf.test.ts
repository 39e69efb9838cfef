import { describe, expect, it } from 'vitest';
import {
  EngineDestinationError,
  assertPublicDestination,
  checkDestinationUrl,
  refusedAddressReason,
  type LookupFunction,
} from '../../../schema/rules/engines/index.js';

/** DNS answers for names outside this machine (the network is what we fake, not our code). */
function fakeDns(table: Record<string, string[]>): LookupFunction {
  return (hostname, _options, callback) => {
    const addresses = table[hostname];
    if (!addresses) return callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []);
    callback(null, addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));
  };
}

describe('refusedAddressReason', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.1.2.3', 'private (RFC 1918)'],
    ['172.16.0.1', 'private (RFC 1918)'],
    ['172.31.255.255', 'private (RFC 1918)'],
    ['192.168.1.1', 'private (RFC 1918)'],
    ['169.254.169.254', 'link-local (cloud metadata lives here)'],
    ['100.64.0.1', 'carrier-grade NAT (RFC 6598)'],
    ['100.127.255.255', 'carrier-grade NAT (RFC 6598)'],
    ['0.0.0.0', 'unspecified ("this network")'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'reserved (and broadcast)'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fd12:3456::1', 'unique-local (ULA)'],
    ['fc00::1', 'unique-local (ULA)'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
    ['::ffff:7f00:1', 'IPv4-mapped loopback'],
    ['::ffff:10.0.0.1', 'IPv4-mapped private (RFC 1918)'],
    ['::ffff:169.254.169.254', 'IPv4-mapped link-local (cloud metadata lives here)'],
    ['64:ff9b::a00:1', 'NAT64 private (RFC 1918)'],
    ['2002:c0a8:0101::1', '6to4 private (RFC 1918)'],
    ['2001:db8::1', 'documentation'],
    ['example.com', 'not an IP address'],
  ])('%s is refused as %s', (address, why) => {
    expect(refusedAddressReason(address)).toBe(why);
  });

  it.each(['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '192.169.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '64:ff9b::808:808', '2002:0808:0808::1'])(
    '%s is public',
    (address) => {
      expect(refusedAddressReason(address)).toBeUndefined();
    },
  );
});

describe('checkDestinationUrl', () => {
  const refused = (url: string, allow = false) => {
    try {
      checkDestinationUrl(url, allow);
    } catch (error) {
      expect(error).toBeInstanceOf(EngineDestinationError);
      return error as EngineDestinationError;
    }
    throw new Error(`${url} was accepted`);
  };

  it('accepts https to a name or public address', () => {
    expect(checkDestinationUrl('https://engine.example.com/verdict', false).hostname).toBe('engine.example.com');
    expect(checkDestinationUrl('https://8.8.8.8/', false).hostname).toBe('8.8.8.8');
  });

  it('refuses http unless the private network is allowed', () => {
    expect(refused('http://engine.example.com/').code).toBe('INSECURE_SCHEME');
    expect(checkDestinationUrl('http://127.0.0.1:8080/', true).port).toBe('8080');
    expect(refused('ftp://engine.example.com/', true).code).toBe('INSECURE_SCHEME');
  });

  it('refuses private IP literals in every spelling the URL parser accepts', () => {
    for (const url of ['https://127.0.0.1/', 'https://2130706433/', 'https://0x7f.1/', 'https://[::1]/', 'https://[::ffff:127.0.0.1]/', 'https://10.0.0.5:8443/', 'https://169.254.169.254/latest/meta-data']) {
      const error = refused(url);
      expect(error.code, url).toBe('PRIVATE_ADDRESS');
      expect(error.message).toMatch(/private and loopback destinations are refused/);
    }
  });

  it('refuses credentials in the URL and relative URLs', () => {
    expect(refused('https://user:pass@engine.example.com/').code).toBe('INVALID_URL');
    expect(refused('/verdict').code).toBe('INVALID_URL');
  });
});

describe('assertPublicDestination (after DNS resolution)', () => {
  const lookup = fakeDns({
    'engine.example.com': ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946'],
    'internal.example.com': ['10.0.0.7'],
    'mixed.example.com': ['93.184.216.34', '192.168.0.10'],
    'mapped.example.com': ['::ffff:127.0.0.1'],
  });

  it('accepts a name whose every address is public', async () => {
    await expect(assertPublicDestination('https://engine.example.com/v', false, { lookup })).resolves.toBeInstanceOf(URL);
  });

  it('refuses a name resolving to a private address, naming host and address', async () => {
    await expect(assertPublicDestination('https://internal.example.com/', false, { lookup })).rejects.toMatchObject({
      code: 'PRIVATE_ADDRESS',
      message: expect.stringContaining('internal.example.com (10.0.0.7)'),
    });
  });

  it('refuses a name when any of its addresses is private', async () => {
    await expect(assertPublicDestination('https://mixed.example.com/', false, { lookup })).rejects.toMatchObject({ code: 'PRIVATE_ADDRESS' });
    await expect(assertPublicDestination('https://mapped.example.com/', false, { lookup })).rejects.toMatchObject({ code: 'PRIVATE_ADDRESS' });
  });

  it('reports a name that does not resolve', async () => {
    await expect(assertPublicDestination('https://nowhere.example.com/', false, { lookup })).rejects.toMatchObject({ code: 'UNRESOLVED' });
  });

  it('refuses localhost through the real resolver', async () => {
    await expect(assertPublicDestination('https://localhost/', false)).rejects.toMatchObject({ code: 'PRIVATE_ADDRESS' });
  });

  it('skips resolution when the private network is allowed', async () => {
    await expect(assertPublicDestination('http://internal.example.com/', true, { lookup })).resolves.toBeInstanceOf(URL);
  });
});
