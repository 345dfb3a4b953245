import { createHmac } from 'node:crypto';
import { BlockList, isIP } from 'node:net';

/**
 * What the webhook sender computes with Node's crypto and net (ADR 0020): the signature header
 * and which addresses are never called. Pure functions; they live here only because domain
 * code may not import node modules.
 */

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, keyed with the secret's UTF-8 bytes. */
export function signatureHeader(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac('sha256', Buffer.from(secret, 'utf8'))
    .update(`${unixSeconds}.${body}`, 'utf8')
    .digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
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
