import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Webhook signing secrets at rest (ADR 0020): AES-256-GCM under a server key from configuration
 * (`WEBHOOK_SECRETS_KEY`, base64 of 32 bytes, or `WEBHOOK_SECRETS_KEY_FILE`), with the webhook id
 * as associated data so a sealed secret cannot be moved to another endpoint's row. A database
 * dump holds only ciphertext; the key never enters the database or a log line. Every replica
 * needs the same key.
 */
export class WebhookSecrets {
  private constructor(private readonly key: Buffer) {}

  /** Null when no key is configured: the webhook routes then answer 503. */
  static fromConfig(config: {
    WEBHOOK_SECRETS_KEY?: string;
    WEBHOOK_SECRETS_KEY_FILE?: string;
  }): WebhookSecrets | null {
    const text =
      config.WEBHOOK_SECRETS_KEY ??
      (config.WEBHOOK_SECRETS_KEY_FILE ? readFileSync(config.WEBHOOK_SECRETS_KEY_FILE, 'utf8') : undefined);
    if (text === undefined) return null;
    const key = Buffer.from(text.trim(), 'base64');
    if (key.length !== KEY_BYTES) throw new Error('the webhook secrets key must be the base64 of 32 bytes');
    return new WebhookSecrets(key);
  }

  /** A new endpoint secret: shown once to its owner, then only kept sealed. */
  static newSecret(): string {
    return `whsec_${randomBytes(32).toString('base64url')}`;
  }

  seal(webhookId: string, secret: string): Buffer {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(webhookId, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), ciphertext]);
  }

  open(webhookId: string, sealed: Buffer): string {
    const decipher = createDecipheriv('aes-256-gcm', this.key, sealed.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(webhookId, 'utf8'));
    decipher.setAuthTag(sealed.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(sealed.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString(
      'utf8',
    );
  }
}
