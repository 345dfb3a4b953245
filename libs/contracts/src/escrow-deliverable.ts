import { DomainError } from './errors.js';
import { ESCROW_LIMITS, escrowErrors, type Deliverable } from './escrow.js';

// Apart from escrow.ts: errors.ts imports (through reputation.ts) escrow.ts, so escrow.ts must not
// import errors.ts back (a cycle leaves one side uninitialized when the other loads).

const DELIVERABLE_FIELDS: ReadonlySet<string> = new Set(['url', 'sha256', 'mime']);
const SHA256_HEX = /^[0-9a-f]{64}$/;
/** A media type (`type/subtype`) with optional `; name=value` parameters, printable ASCII only. */
const MEDIA_TYPE =
  /^[A-Za-z0-9][\w!#$&^.+-]*\/[A-Za-z0-9][\w!#$&^.+-]*(\s*;\s*[\w!#$&^.+-]+=("[ -~]*"|[\w!#$&^.+-]+))*$/;

/**
 * A deliverable from the outside (an API body or a command): checked strictly and normalized
 * (the digest lowercased), so the log records exactly one spelling of each. Used by the gateway
 * (before anything is written) and by escrow's decider (the command's own check). Absent or
 * null: no deliverable.
 */
export function parseDeliverable(value: unknown): Deliverable | null {
  if (value === undefined || value === null) return null;
  const refuse = (message: string): never => {
    throw new DomainError(escrowErrors.invalidDeliverable, message);
  };
  if (typeof value !== 'object' || Array.isArray(value))
    refuse('deliverable must be an object with url, sha256 and/or mime');
  const fields = value as Record<string, unknown>;
  const names = Object.keys(fields);
  const unknown = names.find((name) => !DELIVERABLE_FIELDS.has(name));
  if (unknown !== undefined) refuse(`deliverable has an unknown field (only url, sha256 and mime)`);
  const deliverable: Deliverable = {};
  if (fields.url !== undefined) deliverable.url = deliverableUrl(fields.url, refuse);
  if (fields.sha256 !== undefined) {
    const digest = typeof fields.sha256 === 'string' ? fields.sha256.toLowerCase() : '';
    if (!SHA256_HEX.test(digest)) refuse('deliverable.sha256 must be exactly 64 hex characters');
    deliverable.sha256 = digest;
  }
  if (fields.mime !== undefined) {
    const mime = fields.mime;
    if (
      typeof mime !== 'string' ||
      mime.length > ESCROW_LIMITS.maxDeliverableMimeChars ||
      !MEDIA_TYPE.test(mime)
    ) {
      refuse(
        `deliverable.mime must be a media type (type/subtype) of at most ${ESCROW_LIMITS.maxDeliverableMimeChars} characters`,
      );
    }
    deliverable.mime = mime as string;
  }
  if (Object.keys(deliverable).length === 0) refuse('deliverable needs at least one of url, sha256, mime');
  return deliverable;
}

function deliverableUrl(value: unknown, refuse: (message: string) => never): string {
  const message = `deliverable.url must be an http(s) URL of at most ${ESCROW_LIMITS.maxDeliverableUrlChars} characters`;
  if (typeof value !== 'string' || value.length > ESCROW_LIMITS.maxDeliverableUrlChars)
    return refuse(message);
  // Printable ASCII only: what is recorded is exactly what was sent, with no invisible characters.
  if (!/^[!-~]+$/.test(value)) return refuse(message);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return refuse(message);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') return refuse(message);
  return value;
}
