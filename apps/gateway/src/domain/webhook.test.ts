import { createHmac } from 'node:crypto';
import { afterFailure, refusedAddress, signatureHeader } from './webhook.js';

const policy = {
  retryInitialMs: 1_000,
  retryMaxMs: 60_000,
  disableAfterFailures: 5,
  disableAfterMs: 86_400_000,
};
const closed = { allowLoopback: false, allowPrivate: false };

describe('webhook rules', () => {
  it('signs "t.body" with HMAC-SHA256 of the secret, as a receiver recomputes it', () => {
    const header = signatureHeader('whsec_abc', '{"a":1}', 1_700_000_000);
    const expected = createHmac('sha256', 'whsec_abc').update('1700000000.{"a":1}').digest('hex');
    expect(header).toBe(`t=1700000000,v1=${expected}`);
  });

  it('backs off exponentially up to the cap, with at most 10% jitter', () => {
    const at = (failures: number, random = 0) =>
      afterFailure({ consecutiveFailures: failures, failingSinceMs: 0 }, 1_000, policy, random);
    expect(at(1)).toEqual({ disable: false, retryInMs: 1_000 });
    expect(at(3)).toEqual({ disable: false, retryInMs: 4_000 });
    expect(at(20)).toEqual({ disable: false, retryInMs: 60_000 });
    expect(at(1, 1)).toEqual({ disable: false, retryInMs: 1_100 });
  });

  it('disables only when both the failure count and the failing time are passed (never before a day by default)', () => {
    const day = 86_400_000;
    expect(afterFailure({ consecutiveFailures: 100, failingSinceMs: 0 }, day - 1, policy, 0).disable).toBe(
      false,
    );
    expect(afterFailure({ consecutiveFailures: 4, failingSinceMs: 0 }, 2 * day, policy, 0).disable).toBe(
      false,
    );
    expect(afterFailure({ consecutiveFailures: 5, failingSinceMs: 0 }, day, policy, 0).disable).toBe(true);
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
