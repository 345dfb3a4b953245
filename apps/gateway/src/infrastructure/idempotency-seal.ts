import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';

const AES_KEY_BYTES = 32;
const DIGEST_KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HKDF_INFO = 'pf-gateway-idempotency-v1';

/** A response as the idempotency store keeps it once sealed: the HTTP status and the body text. */
export interface StoredResponse {
  status: number;
  body: string;
}

/**
 * What the idempotency store may know about one (scope, Idempotency-Key), and nothing more
 * (ADR 0009): the row's id is a one-way digest, the request is compared by a keyed digest, and
 * the response is sealed with AES-256-GCM under a key derived from the Idempotency-Key itself.
 * A database dump therefore shows neither the keys nor the responses (the register answer holds
 * an API key), and reading a response back needs the Idempotency-Key that wrote it.
 */
export class IdempotencySeal {
  /** Primary key of the record: finds the row, reveals neither the scope nor the key. */
  readonly recordId: Buffer;
  private readonly aesKey: Buffer;
  private readonly digestKey: Buffer;

  /** `scope`: a digest of the caller's credential (or of "anonymous"); `key`: the Idempotency-Key header. */
  constructor(scope: Buffer, key: string) {
    this.recordId = createHmac('sha256', scope).update('record\0').update(key, 'utf8').digest();
    const keying = Buffer.from(
      hkdfSync('sha256', Buffer.from(key, 'utf8'), scope, HKDF_INFO, AES_KEY_BYTES + DIGEST_KEY_BYTES),
    );
    this.aesKey = keying.subarray(0, AES_KEY_BYTES);
    this.digestKey = keying.subarray(AES_KEY_BYTES);
  }

  /** The request's fingerprint (method, path, canonical body), keyed so a dump cannot test guesses of a body. */
  requestDigest(canonicalRequest: string): Buffer {
    return createHmac('sha256', this.digestKey).update(canonicalRequest, 'utf8').digest();
  }

  /** iv ‖ tag ‖ ciphertext; the record id is authenticated too, so a sealed body cannot be moved to another row. */
  seal(response: StoredResponse): Buffer {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.aesKey, iv);
    cipher.setAAD(this.recordId);
    const plaintext = Buffer.from(`${response.status}\n${response.body}`, 'utf8');
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), ciphertext]);
  }

  /** Throws when the bytes were not sealed under this key and record (tampering or a bug). */
  open(sealed: Buffer): StoredResponse {
    const decipher = createDecipheriv('aes-256-gcm', this.aesKey, sealed.subarray(0, IV_BYTES));
    decipher.setAAD(this.recordId);
    decipher.setAuthTag(sealed.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    const text = Buffer.concat([
      decipher.update(sealed.subarray(IV_BYTES + TAG_BYTES)),
      decipher.final(),
    ]).toString('utf8');
    const newline = text.indexOf('\n');
    return { status: Number(text.slice(0, newline)), body: text.slice(newline + 1) };
  }
}

/** The scope of a request: a digest of its credential, so the credential itself is never kept. */
export function idempotencyScope(credential: string | undefined): Buffer {
  return createHash('sha256')
    .update(credential === undefined ? 'anonymous' : `key:${credential}`, 'utf8')
    .digest();
}
