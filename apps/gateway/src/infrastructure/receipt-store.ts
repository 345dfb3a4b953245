import { randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { ReceiptFacts } from '../domain/receipt.js';
import { canonicalJson } from '../domain/receipt.js';
import type { ReceiptSigner } from './receipt-signer.js';

/** A receipt as stored and served: the signed object, its exact signed bytes and the signature. */
export interface StoredReceipt {
  receiptId: string;
  /** The canonical JSON the signature covers. */
  canonical: string;
  keyId: string;
  signature: Buffer;
}

export interface PublishedKey {
  keyId: string;
  publicKeyRaw: Buffer;
  firstUsedAt: string;
}

/** Receipts a party may list per settlement at most (a split or a retry never makes more than a few). */
const RECEIPTS_PER_SETTLEMENT_MAX = 20;

/** gateway.receipts and gateway.receipt_keys (ADR 0020). */
export class ReceiptStore {
  constructor(private readonly dataSource: DataSource) {}

  /** Records the signer's public key once, before it signs anything (the receipts' foreign key). */
  async registerKey(signer: ReceiptSigner): Promise<void> {
    await this.dataSource.query(
      `INSERT INTO gateway.receipt_keys (key_id, public_key) VALUES ($1, $2) ON CONFLICT (key_id) DO NOTHING`,
      [signer.keyId, signer.publicKeyRaw],
    );
  }

  /**
   * Signs and stores the receipt of one settling event, once: a redelivered event finds the
   * receipt already there (unique event_id) and leaves it as first signed.
   */
  async issue(facts: ReceiptFacts, parties: readonly string[], signer: ReceiptSigner): Promise<void> {
    const receiptId = `rcpt_${randomBytes(16).toString('hex')}`;
    const canonical = canonicalJson({ ...facts, receipt_id: receiptId, key_id: signer.keyId });
    await this.dataSource.query(
      `INSERT INTO gateway.receipts (receipt_id, event_id, settlement_id, parties, receipt, key_id, signature)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING`,
      [
        receiptId,
        facts.event_id,
        facts.settlement_id,
        [...parties],
        canonical,
        signer.keyId,
        signer.sign(canonical),
      ],
    );
  }

  async get(receiptId: string): Promise<StoredReceipt | null> {
    const rows: ReceiptRow[] = await this.dataSource.query(
      `SELECT receipt_id, receipt, key_id, signature FROM gateway.receipts WHERE receipt_id = $1`,
      [receiptId],
    );
    return rows[0] ? stored(rows[0]) : null;
  }

  /** The receipts of one settlement where the agent is a party, oldest first. */
  async listFor(settlementId: string, agentId: string): Promise<StoredReceipt[]> {
    const rows: ReceiptRow[] = await this.dataSource.query(
      `SELECT receipt_id, receipt, key_id, signature FROM gateway.receipts
       WHERE settlement_id = $1 AND $2 = ANY (parties) ORDER BY created_at, receipt_id LIMIT $3`,
      [settlementId, agentId, RECEIPTS_PER_SETTLEMENT_MAX],
    );
    return rows.map(stored);
  }

  async keys(): Promise<PublishedKey[]> {
    const rows: Array<{ key_id: string; public_key: Buffer; first_used_at: Date }> =
      await this.dataSource.query(
        `SELECT key_id, public_key, first_used_at FROM gateway.receipt_keys ORDER BY first_used_at, key_id`,
      );
    return rows.map((row) => ({
      keyId: row.key_id,
      publicKeyRaw: row.public_key,
      firstUsedAt: row.first_used_at.toISOString(),
    }));
  }
}

interface ReceiptRow {
  receipt_id: string;
  receipt: string;
  key_id: string;
  signature: Buffer;
}

function stored(row: ReceiptRow): StoredReceipt {
  return { receiptId: row.receipt_id, canonical: row.receipt, keyId: row.key_id, signature: row.signature };
}
