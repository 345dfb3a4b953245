import { createHmac } from 'node:crypto';
import { BlockList, isIP } from 'node:net';

/**
 * Webhook rules without I/O (ADR 0020): the signature header,
 * when to retry a failing endpoint and when to give up on it, and which addresses are never
 * called.
 */

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, keyed with the secret's UTF-8 bytes. */
export function signatureHeader(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac('sha256', Buffer.from(secret, 'utf8'))
    .update(`${unixSeconds}.${body}`, 'utf8')
    .digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

export interface RetryPolicy {
  retryInitialMs: number;
  retryMaxMs: number;
  /** An endpoint is disabled only after this many failures in a row … */
  disableAfterFailures: number;
  /** … and only once it has been failing for this long (at least a day by default). */
  disableAfterMs: number;
}

export interface FailureState {
  /** Failures in a row, counting the one just seen. */
  consecutiveFailures: number;
  /** When the first failure of this run happened. */
  failingSinceMs: number;
}

export type FailureOutcome = { disable: true } | { disable: false; retryInMs: number };

/**
 * After a failed attempt: disable when both limits are passed, else wait twice as long as last
 * time (capped), with up to 10% jitter so endpoints that failed together do not retry together.
 */
export function afterFailure(
  state: FailureState,
  nowMs: number,
  policy: RetryPolicy,
  random: number,
): FailureOutcome {
  if (
    state.consecutiveFailures >= policy.disableAfterFailures &&
    nowMs - state.failingSinceMs >= policy.disableAfterMs
  )
    return { disable: true };
  const exponent = Math.min(Math.max(state.consecutiveFailures - 1, 0), 30);
  const baseMs = Math.min(policy.retryMaxMs, policy.retryInitialMs * 2 ** exponent);
  return { disable: false, retryInMs: Math.round(baseMs * (1 + 0.1 * random)) };
}

export interface TargetPolicy {
  allowLoopback: boolean;
  allowPrivate: boolean;
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** Addresses that are not the public internet: private, link-local (cloud metadata), CGNAT, multicast, reserved. */
const PRIVATE = new BlockList();
for (const [network, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  PRIVATE.addSubnet(network, bits, 'ipv4');
for (const [network, bits] of [
  ['::', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['64:ff9b::', 96],
  ['2001:db8::', 32],
] as const)
  PRIVATE.addSubnet(network, bits, 'ipv6');

/** Why an address may not be called, or null when it may. */
export function refusedAddress(address: string, policy: TargetPolicy): string | null {
  const family = isIP(address);
  if (family === 0) return 'not an IP address';
  // An IPv4-mapped IPv6 address (::ffff:10.0.0.1) is judged as the IPv4 address it carries.
  const mapped = family === 6 ? /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1] : undefined;
  if (mapped) return refusedAddress(mapped, policy);
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (LOOPBACK.check(address, type))
    return policy.allowLoopback || policy.allowPrivate ? null : 'a loopback address';
  if (PRIVATE.check(address, type)) return policy.allowPrivate ? null : 'a private or reserved address';
  return null;
}
