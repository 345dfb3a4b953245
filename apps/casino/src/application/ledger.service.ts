import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { QueryRunner } from 'typeorm';
import type { OperationReply } from '@pf/contracts';
import { fold, isVersionConflict, type EventStore, type RecordedEvent } from '@pf/event-store';
import { isKnownAccountName, SYSTEM_ACCOUNTS } from '../domain/accounts.js';
import { ledgerDecider, type AccountBalance, type LedgerCommand, type LedgerEvent, type LedgerState, type Operation } from '../domain/ledger.js';
import { decodeLedgerEvent, encodeLedgerEvent } from '../infrastructure/ledger-codec.js';
import { isMaterialized } from '../infrastructure/ledger-projection.js';
import { CASINO_EVENT_STORE } from './tokens.js';

/** Version conflicts are retried this many times before the caller sees one. */
const MAX_CONFLICT_RETRIES = 20;

export interface CommandOrigin {
  /** The service that asked (faucet, escrow, gateway-admin): shown in ledger entries. */
  service: string;
  correlationId?: string;
}

/**
 * Runs ledger commands: one transaction each. The operation's stream is read, the balance
 * rows it debits are locked (in account order, so two transfers never deadlock), the decider
 * decides, and the events are appended with the stream's expected version; the inline
 * projection updates the balances in the same transaction. A concurrent command on the same
 * operation id loses the version check and is retried, and then sees the first outcome.
 */
@Injectable()
export class LedgerService {
  constructor(@Inject(CASINO_EVENT_STORE) private readonly store: EventStore) {}

  async execute(command: LedgerCommand, origin: CommandOrigin): Promise<OperationReply> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.store.transaction((runner) => this.executeOnce(runner, command, origin));
      } catch (error) {
        if (!isVersionConflict(error) || attempt >= MAX_CONFLICT_RETRIES) throw error;
      }
    }
  }

  /** The current outcome of an operation, without changing anything. */
  async outcome(operationId: string): Promise<OperationReply | null> {
    const history = await this.store.readStream(operationStream(operationId));
    if (history.length === 0) return null;
    return toReply(fold(ledgerDecider, history.map(decode)).operation, history.at(-1)!.globalPosition);
  }

  private async executeOnce(runner: QueryRunner, command: LedgerCommand, origin: CommandOrigin): Promise<OperationReply> {
    const streamId = operationStream(operationIdOf(command));
    const history = await this.store.readStream(streamId, { runner });
    const operation = fold(ledgerDecider, history.map(decode)).operation;
    const accounts = await lockAccounts(runner, this.store.schema, accountsTouched(command, operation));
    const events = ledgerDecider.decide(command, { operation, accounts });
    if (events.length === 0) return toReply(operation, history.at(-1)!.globalPosition);

    const appended = await this.store.appendInTransaction(
      runner,
      streamId,
      history.length,
      events.map((event) => ({
        eventId: randomUUID(),
        ...encodeLedgerEvent(event),
        metadata: { service: origin.service, commandId: operationIdOf(command), correlationId: origin.correlationId, schemaVersion: 1 },
      })),
    );
    const next = events.reduce<LedgerState>((state, event) => ledgerDecider.evolve(state, event), { operation, accounts });
    return toReply(next.operation, appended.events.at(-1)!.globalPosition);
  }
}

export function operationStream(operationId: string): string {
  return `op-${operationId}`;
}

function operationIdOf(command: LedgerCommand): string {
  return command.kind === 'transfer' ? command.transferId : command.holdId;
}

function decode(event: RecordedEvent): LedgerEvent {
  return decodeLedgerEvent(event.type, event.data);
}

/** The accounts a command reads or writes; for post and void the hold says whose it is. */
function accountsTouched(command: LedgerCommand, operation: Operation): string[] {
  switch (command.kind) {
    case 'transfer':
      return [command.from, command.to];
    case 'hold':
      return [command.from];
    case 'post':
      return operation.status === 'none' || operation.status === 'transferred' ? [] : [operation.from, ...command.splits.map((split) => split.to)];
    case 'void':
      return operation.status === 'none' || operation.status === 'transferred' ? [] : [operation.from];
  }
}

/**
 * Locks the balance rows of the touched accounts (sorted: a global lock order), and returns
 * the balances. System accounts without a row are present with zero; unknown ones are absent.
 */
async function lockAccounts(runner: QueryRunner, schema: string, touched: readonly string[]): Promise<Map<string, AccountBalance>> {
  const accounts = new Map<string, AccountBalance>();
  const unique = [...new Set(touched)].filter(isKnownAccountName);
  for (const account of unique) {
    if (SYSTEM_ACCOUNTS.includes(account) && !isMaterialized(account)) accounts.set(account, { availableMicros: 0n, heldMicros: 0n });
  }
  const materialized = unique.filter(isMaterialized).sort();
  if (materialized.length === 0) return accounts;
  const rows: Array<{ account_id: string; available_micros: string; held_micros: string }> = await runner.query(
    `SELECT account_id, available_micros, held_micros FROM ${schema}.accounts
     WHERE account_id = ANY($1::text[]) ORDER BY account_id FOR UPDATE`,
    [materialized],
  );
  for (const row of rows) {
    accounts.set(row.account_id, { availableMicros: BigInt(row.available_micros), heldMicros: BigInt(row.held_micros) });
  }
  return accounts;
}

function toReply(operation: Operation, position: number): OperationReply {
  switch (operation.status) {
    case 'none':
      throw new Error('an operation without events has no outcome');
    case 'transferred':
      return {
        operationId: operation.transferId,
        kind: 'transfer',
        status: 'transferred',
        from: operation.from,
        to: operation.to,
        amountMicros: operation.amountMicros.toString(),
        position,
      };
    default:
      return {
        operationId: operation.holdId,
        kind: 'hold',
        status: operation.status,
        from: operation.from,
        amountMicros: operation.amountMicros.toString(),
        ...(operation.splits ? { splits: operation.splits.map((split) => ({ to: split.to, amountMicros: split.amountMicros.toString() })) } : {}),
        position,
      };
  }
}

