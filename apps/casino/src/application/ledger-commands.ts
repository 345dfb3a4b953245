import type { MandateUse } from '@pf/contracts';
import type { LedgerCommand } from '../domain/ledger.js';

/*
 * What a ledger command names and where it comes from, shared by the LedgerService, its batch
 * strategy and the mandate's part (its own module so none imports another at run time).
 */

export interface CommandOrigin {
  /** The service that asked (faucet, escrow, admin): shown in ledger entries. */
  service: string;
  correlationId?: string;
  /** Made with a sub-key: its mandate is checked in the same transaction (ADR 0019). */
  mandate?: MandateUse;
  /** A payment's memo, kept in its events' metadata. */
  memo?: string;
}

/** The event stream of an operation (a transfer or a hold). */
export function operationStream(operationId: string): string {
  return `op-${operationId}`;
}

/** The operation a command acts on: the caller-chosen transfer id or hold id. */
export function operationIdOf(command: LedgerCommand): string {
  return command.kind === 'transfer' ? command.transferId : command.holdId;
}

/** The accounts a command names itself (a post's or void's hold owner comes from its stream). */
export function accountsNamed(command: LedgerCommand): string[] {
  switch (command.kind) {
    case 'transfer':
      return [command.from, command.to];
    case 'hold':
      return [command.from];
    case 'post':
      return command.splits.map((split) => split.to);
    case 'void':
      return [];
  }
}
