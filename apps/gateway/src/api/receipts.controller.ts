import { Controller, Get, Inject, Param, Query, Req, UseGuards } from '@nestjs/common';
import { z } from 'zod';
import { DomainError, ErrorCode, RECEIPT_ID_PATTERN, receiptErrors } from '@pf/contracts';
import { ReceiptSigner, publicKeyPem } from '../infrastructure/receipt-signer.js';
import { ReceiptStore, type StoredReceipt } from '../infrastructure/receipt-store.js';
import { AgentAuthGuard, type AuthenticatedRequest } from './auth.guard.js';
import { parseInput } from './request.js';

export const receiptsQuerySchema = z.object({
  settlement_id: z
    .string()
    .min(1)
    .max(80)
    .regex(/^[A-Za-z0-9_-]+$/)
    .describe('An escrow id (esc_…), a faucet claim id, or a payment id (pay_…).'),
});

/**
 * Signed receipts (docs/API.md, "Receipts"; ADR 0020). A receipt is read by its id alone: it
 * is meant to be shown to third parties, and its 128-bit random id is the capability. A party
 * finds the ids of its own receipts by settlement.
 */
@Controller()
export class ReceiptsController {
  constructor(
    @Inject(ReceiptStore) private readonly store: ReceiptStore,
    @Inject(ReceiptSigner) private readonly signer: ReceiptSigner,
  ) {}

  @Get('receipts/:id')
  async receipt(@Param('id') receiptId: string) {
    if (!RECEIPT_ID_PATTERN.test(receiptId))
      throw new DomainError(ErrorCode.invalidRequest, 'receipt id must be rcpt_ + 32 hex');
    const receipt = await this.store.get(receiptId);
    if (!receipt) throw new DomainError(receiptErrors.receiptNotFound, 'no receipt with this id');
    return receiptBody(receipt);
  }

  @Get('receipts')
  @UseGuards(AgentAuthGuard)
  async receipts(@Req() request: AuthenticatedRequest, @Query() query: unknown) {
    const { settlement_id: settlementId } = parseInput(receiptsQuerySchema, query, 'query');
    const receipts = await this.store.listFor(settlementId, request.agentId!);
    return { settlement_id: settlementId, receipts: receipts.map(receiptBody) };
  }

  @Get('.well-known/receipts-key')
  async keys() {
    const keys = await this.store.keys();
    return {
      algorithm: 'Ed25519',
      current_key_id: this.signer.keyId,
      keys: keys.map((key) => ({
        key_id: key.keyId,
        algorithm: 'Ed25519',
        public_key: key.publicKeyRaw.toString('base64'),
        public_key_pem: publicKeyPem(key.publicKeyRaw),
        status: key.keyId === this.signer.keyId ? 'current' : 'retired',
        first_used_at: key.firstUsedAt,
      })),
    };
  }
}

export function receiptBody(receipt: StoredReceipt) {
  return {
    receipt_id: receipt.receiptId,
    receipt: JSON.parse(receipt.canonical) as Record<string, string | null>,
    signature: receipt.signature.toString('base64'),
    signature_algorithm: 'Ed25519',
    key_id: receipt.keyId,
    canonical: receipt.canonical,
  };
}
