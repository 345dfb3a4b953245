import { createHmac } from 'node:crypto';
import { refusedAddress, signatureHeader } from './webhook-signing.js';

const closed = { allowLoopback: false, allowPrivate: false };

describe('webhook signing and targets', () => {
  it('signs "t.body" with HMAC-SHA256 of the secret, as a receiver recomputes it', () => {
    const header = signatureHeader('whsec_abc', '{"a":1}', 1_700_000_000);
    const expected = createHmac('sha256', 'whsec_abc').update('1700000000.{"a":1}').digest('hex');
    expect(header).toBe(`t=1700000000,v1=${expected}`);
  });

  it('refuses loopback, private, link-local and mapped addresses unless allowed', () => {
    for (const address of [
      '127.0.0.1',
      '::1',
      '10.1.2.3',
      '172.16.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      'fd00::1',
      'fe80::1',
      '::ffff:10.0.0.1',
      '::ffff:127.0.0.1',
    ])
      expect([address, refusedAddress(address, closed)]).toEqual([address, expect.any(String)]);
    for (const address of ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946', '172.32.0.1'])
      expect([address, refusedAddress(address, closed)]).toEqual([address, null]);
    expect(refusedAddress('127.0.0.1', { allowLoopback: true, allowPrivate: false })).toBeNull();
    expect(refusedAddress('10.0.0.1', { allowLoopback: true, allowPrivate: false })).not.toBeNull();
    expect(refusedAddress('10.0.0.1', { allowLoopback: false, allowPrivate: true })).toBeNull();
  });
});
