import { AsyncLocalStorage } from 'node:async_hooks';
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';

/**
 * One request followed through every service: the gateway takes (or makes) a request id, each
 * command it sends carries it in a NATS header, and the service that handles the command runs
 * its handler inside the same id, so every log line written on the way names it and every
 * command sent onwards (escrow → casino) carries it again.
 */

/** The HTTP header and the NATS header that carry the id. */
export const REQUEST_ID_HEADER = 'X-Request-Id';

/** Longest id accepted from outside; longer ones (or odd characters) are replaced, not trusted. */
export const REQUEST_ID_CHARS_MAX = 128;

/** Letters, digits and `._:-`: safe to print in a log line and to echo in a header. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]+$/;

const storage = new AsyncLocalStorage<string>();

/** The id of the request being handled here, if any. */
export function currentRequestId(): string | undefined {
  return storage.getStore();
}

/** Runs `work` (and everything it starts) as part of the request `requestId`. */
export function runWithRequestId<T>(requestId: string, work: () => T): T {
  return storage.run(requestId, work);
}

/** A caller's id if it is sane (short, printable, no separators that could forge log fields), else undefined. */
export function saneRequestId(candidate: unknown): string | undefined {
  if (typeof candidate !== 'string') return undefined;
  if (candidate.length === 0 || candidate.length > REQUEST_ID_CHARS_MAX) return undefined;
  return SANE_REQUEST_ID.test(candidate) ? candidate : undefined;
}

/** NATS headers carrying the current request id, or undefined outside a request. */
export function requestIdHeaders(): MsgHdrs | undefined {
  const requestId = currentRequestId();
  if (!requestId) return undefined;
  const headers = natsHeaders();
  headers.set(REQUEST_ID_HEADER, requestId);
  return headers;
}

/** The request id a received message carries, if it is sane. */
export function requestIdOf(headers: MsgHdrs | undefined): string | undefined {
  return saneRequestId(headers?.get(REQUEST_ID_HEADER));
}
