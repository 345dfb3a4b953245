import type { LedgerCommand } from '../domain/ledger.js';

/*
 * What a ledger command names, shared by the batching LedgerService and the MandatedLedger (its
 * own module so neither imports the other at run time).
 */

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
