/**
 * Signed receipts (docs/API.md, "Receipts"; ADR 0020): one per settlement, signed by the
 * gateway's Ed25519 key so a third party can check it offline with only the public key.
 */

/** `rcpt_` + 32 hex digits (128 random bits): the id is the capability to read the receipt. */
export const RECEIPT_ID_PATTERN = /^rcpt_[0-9a-f]{32}$/;

/**
 * What was settled. `payment` is for direct payments (`pay_` ids) once they exist; the
 * receipt's fields are the same for every kind.
 */
export const RECEIPT_KINDS = [
  'escrow_release',
  'escrow_refund',
  'escrow_split',
  'faucet_claim',
  'payment',
] as const;
export type ReceiptKind = (typeof RECEIPT_KINDS)[number];

/** The format version inside every receipt (`receipt.format`). */
export const RECEIPT_FORMAT = 'pf-receipt-v1';

export const receiptErrors = {
  receiptNotFound: 'receipt_not_found',
} as const;

/** HTTP status of each receipt code (merged into httpStatusByErrorCode). */
export const receiptHttpStatuses: Readonly<Record<string, number>> = {
  receipt_not_found: 404,
};
