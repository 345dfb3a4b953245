import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  type KeyObject,
} from 'node:crypto';
import { readFileSync } from 'node:fs';

/** PKCS#8 DER prefix of an Ed25519 private key; the 32-byte seed follows (RFC 8410). */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const ED25519_SEED_BYTES = 32;

/**
 * The gateway's receipt key (ADR 0020): an Ed25519 private key from configuration, its public
 * key and the key id derived from it (`rk_` + 16 hex of SHA-256 of the raw public key), so a
 * key id can never name two keys and no id has to be configured alongside the key.
 */
export class ReceiptSigner {
  readonly keyId: string;
  /** The raw 32-byte public key. */
  readonly publicKeyRaw: Buffer;

  private constructor(
    private readonly privateKey: KeyObject,
    /** Where the key came from, for the start-up log line (never the key itself). */
    readonly source: string,
  ) {
    this.publicKeyRaw = rawPublicKey(createPublicKey(privateKey));
    this.keyId = receiptKeyId(this.publicKeyRaw);
  }

  /**
   * From `RECEIPT_SIGNING_KEY` (base64 of the 32-byte seed), else `RECEIPT_SIGNING_KEY_FILE`
   * (the base64 seed or a PKCS#8 PEM), else a fresh key for this process only: its receipts
   * still verify, because every public key used is recorded (receipt_keys) and published.
   */
  static fromConfig(config: {
    RECEIPT_SIGNING_KEY?: string;
    RECEIPT_SIGNING_KEY_FILE?: string;
  }): ReceiptSigner {
    if (config.RECEIPT_SIGNING_KEY)
      return new ReceiptSigner(keyFromText(config.RECEIPT_SIGNING_KEY), 'RECEIPT_SIGNING_KEY');
    if (config.RECEIPT_SIGNING_KEY_FILE) {
      const text = readFileSync(config.RECEIPT_SIGNING_KEY_FILE, 'utf8');
      return new ReceiptSigner(keyFromText(text), 'RECEIPT_SIGNING_KEY_FILE');
    }
    return new ReceiptSigner(generateKeyPairSync('ed25519').privateKey, 'generated for this process');
  }

  /** Ed25519 signature (64 bytes) of the canonical receipt bytes. */
  sign(canonical: string): Buffer {
    return sign(null, Buffer.from(canonical, 'utf8'), this.privateKey);
  }
}

/** A base64 seed or a PKCS#8 PEM; anything else stops the gateway at start (a config error). */
export function keyFromText(text: string): KeyObject {
  const trimmed = text.trim();
  if (trimmed.startsWith('-----BEGIN')) {
    const key = createPrivateKey(trimmed);
    if (key.asymmetricKeyType !== 'ed25519')
      throw new Error('the receipt signing key must be an Ed25519 key');
    return key;
  }
  const seed = Buffer.from(trimmed, 'base64');
  if (seed.length !== ED25519_SEED_BYTES)
    throw new Error('the receipt signing key must be the base64 of a 32-byte Ed25519 seed, or a PKCS#8 PEM');
  return createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

export function rawPublicKey(key: KeyObject): Buffer {
  // SPKI DER of Ed25519 is a 12-byte header and the 32-byte key.
  return key.export({ format: 'der', type: 'spki' }).subarray(-ED25519_SEED_BYTES);
}

export function receiptKeyId(publicKeyRaw: Buffer): string {
  return `rk_${createHash('sha256').update(publicKeyRaw).digest('hex').slice(0, 16)}`;
}

/** The PEM (SPKI) of a raw public key, for clients whose library wants PEM. */
export function publicKeyPem(publicKeyRaw: Buffer): string {
  const der = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), publicKeyRaw]);
  return createPublicKey({ key: der, format: 'der', type: 'spki' })
    .export({ format: 'pem', type: 'spki' })
    .toString();
}
