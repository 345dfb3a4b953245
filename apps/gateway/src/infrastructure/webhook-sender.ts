import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { refusedAddress, type TargetPolicy } from './webhook-signing.js';

export interface SendLimits {
  timeoutMs: number;
  responseMaxBytes: number;
}

export interface SendOutcome {
  ok: boolean;
  status: number | null;
  /** Why it failed, one line; null on success. */
  error: string | null;
}

/** A target the policy refuses: not retried differently, but said clearly in the delivery log. */
export class RefusedTarget extends Error {}

/**
 * Checks a URL's host against the policy: an IP literal directly, a name by resolving it (every
 * address it resolves to must be allowed). Used at creation, so a bad URL is refused with 400.
 */
export async function checkTarget(url: URL, policy: TargetPolicy): Promise<string | null> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host)) return refusedAddress(host, policy);
  try {
    const addresses = await new Promise<LookupAddress[]>((resolve, reject) =>
      dnsLookup(host, { all: true }, (error, found) => (error ? reject(error) : resolve(found))),
    );
    for (const { address } of addresses) {
      const refused = refusedAddress(address, policy);
      if (refused) return `${host} resolves to ${refused}`;
    }
    return addresses.length === 0 ? `${host} does not resolve` : null;
  } catch {
    return `${host} does not resolve`;
  }
}

/**
 * The DNS lookup the request connects with: the address it checks is the address it connects
 * to, so a name that resolves to a public address at creation and a private one later (DNS
 * rebinding) is still refused.
 */
function guardedLookup(policy: TargetPolicy): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { all: true }, (error, addresses) => {
      if (error) return callback(error, '', 0);
      for (const { address } of addresses) {
        const refused = refusedAddress(address, policy);
        if (refused) return callback(new RefusedTarget(`${hostname} resolves to ${refused}`), '', 0);
      }
      const first = addresses[0];
      if (!first) return callback(new Error(`${hostname} does not resolve`), '', 0);
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, [first]);
      callback(null, first.address, first.family);
    });
  };
}

/**
 * One POST: no redirect is followed (a 3xx is a failure), the whole exchange is bounded by
 * `timeoutMs`, and at most `responseMaxBytes` of the answer are read (only the status counts).
 */
export async function postSigned(
  url: URL,
  body: string,
  headers: Record<string, string>,
  policy: TargetPolicy,
  limits: SendLimits,
): Promise<SendOutcome> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host)) {
    const refused = refusedAddress(host, policy);
    if (refused) return { ok: false, status: null, error: `target refused: ${refused}` };
  }
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise<SendOutcome>((resolve) => {
    let settled = false;
    const finish = (outcome: SendOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const request = transport.request(
      url,
      {
        method: 'POST',
        agent: false,
        lookup: guardedLookup(policy),
        headers: {
          'content-type': 'application/json; charset=utf-8',
          'content-length': String(Buffer.byteLength(body, 'utf8')),
          'user-agent': 'pf-webhooks/1',
          ...headers,
        },
      },
      (response) => {
        const status = response.statusCode ?? 0;
        const ok = status >= 200 && status < 300;
        const error = ok
          ? null
          : status >= 300 && status < 400
            ? `redirect ${status} not followed`
            : `HTTP ${status}`;
        let readBytes = 0;
        response.on('data', (chunk: Buffer) => {
          readBytes += chunk.length;
          if (readBytes > limits.responseMaxBytes) {
            response.destroy();
            finish({ ok, status, error });
          }
        });
        response.on('end', () => finish({ ok, status, error }));
        response.on('error', () => finish({ ok, status, error }));
        response.on('close', () => finish({ ok, status, error }));
      },
    );
    const timer = setTimeout(() => {
      request.destroy();
      finish({ ok: false, status: null, error: `no answer within ${limits.timeoutMs} ms` });
    }, limits.timeoutMs);
    request.on('error', (error) =>
      finish({
        ok: false,
        status: null,
        error: error instanceof RefusedTarget ? `target refused: ${error.message}` : oneLine(error.message),
      }),
    );
    request.end(body);
  });
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').slice(0, 200);
}
