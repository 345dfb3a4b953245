import { SystemAccount } from './accounts.js';
import type { LedgerCommand } from './ledger.js';

/**
 * An operator deposit (a credit from outside): a transfer from `world` to the agent, reason
 * `deposit`, whose id derives from the operator's reference. The same reference is the same
 * transfer, so a repeated credit is answered from the first one; the same reference with another
 * agent or amount is the reuse of an operation id, refused by the ledger.
 */
export const DEPOSIT_REASON = 'deposit';

/** The transfer id of the deposit with this reference. */
export function depositTransferId(reference: string): string {
  return `deposit:${reference}`;
}

/** The ledger command that credits `amountMicros` to `agentId` under `reference`. */
export function depositCommand(input: {
  agentId: string;
  amountMicros: bigint;
  reference: string;
}): Extract<LedgerCommand, { kind: 'transfer' }> {
  return {
    kind: 'transfer',
    transferId: depositTransferId(input.reference),
    from: SystemAccount.world,
    to: input.agentId,
    amountMicros: input.amountMicros,
    reason: DEPOSIT_REASON,
  };
}
