import { randomUUID } from 'node:crypto';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { QueryRunner } from 'typeorm';
import { DomainError, type OperationReply } from '@pf/contracts';
import { fold, isVersionConflict, prepared, type EventStore, type NewEvent, type RecordedEvent } from '@pf/event-store';
import { isKnownAccountName, SYSTEM_ACCOUNTS } from '../domain/accounts.js';
import { insufficient, ledgerDecider, type AccountBalance, type LedgerCommand, type LedgerEvent, type LedgerState, type Operation } from '../domain/ledger.js';
import { decodeLedgerEvent, encodeLedgerEvent } from '../infrastructure/ledger-codec.js';
import { isMaterialized } from '../infrastructure/ledger-projection.js';
import { CONFIG, type BaseConfig } from '@pf/platform';
import { CASINO_EVENT_STORE } from './tokens.js';

/** Most commands decided and committed in one transaction. */
const MAX_BATCH_SIZE = 64;
/**
 * Batches in flight at once, each on its own connection: while one waits on Postgres another
 * can run. Batches on disjoint accounts proceed in parallel; on shared ones the row locks
 * serialise them (one sorted lock statement per batch: never a deadlock). Kept below the pool
 * size so reads and the outbox relay always find a connection, and at 3: measured through NATS
 * (bench:ledger), 2, 3 and 4 in flight gave the same throughput within noise, 7 was ~30% slower
 * (more backends than cores).
 */
function batchConcurrency(poolMax: number): number {
  return Math.max(1, Math.min(3, poolMax - 1));
}
/** Version conflicts (another replica wrote the same operation) are retried this often. */
const MAX_CONFLICT_RETRIES = 20;

export interface CommandOrigin {
  /** The service that asked (faucet, escrow, admin): shown in ledger entries. */
  service: string;
  correlationId?: string;
}

interface Pending {
  command: LedgerCommand;
  origin: CommandOrigin;
  resolve: (reply: OperationReply) => void;
  reject: (error: unknown) => void;
}

interface OperationSlot {
  streamId: string;
  version: number;
  lastPosition: number | null;
  operation: Operation;
  newEvents: NewEvent[];
}

/**
 * Runs ledger commands in batches: the commands waiting in the queue are decided one after the
 * other against the loaded state and committed in ONE transaction — read every operation
 * stream, lock every touched balance row (one sorted statement, so batches never deadlock),
 * decide in order, append to all streams in one statement, project, commit. One commit and a
 * handful of round trips serve the whole batch; under load batches grow, when idle a command
 * runs alone at once. The result is the same as running the commands one by one in that
 * order: each is decided on the state its predecessors left, and the row locks and stream
 * versions make concurrent batches (in flight here or on other replicas) serialise.
 */
@Injectable()
export class LedgerService implements OnApplicationShutdown {
  private readonly queue: Pending[] = [];
  private running = 0;
  private readonly maxRunning: number;
  private stopping = false;

  constructor(
    @Inject(CASINO_EVENT_STORE) private readonly store: EventStore,
    @Inject(CONFIG) config: BaseConfig,
  ) {
    this.maxRunning = batchConcurrency(config.DB_POOL_MAX);
  }

  execute(command: LedgerCommand, origin: CommandOrigin): Promise<OperationReply> {
    if (this.stopping) return Promise.reject(new DomainError('service_unavailable', 'casino is shutting down'));
    return new Promise((resolve, reject) => {
      this.queue.push({ command, origin, resolve, reject });
      this.startBatches();
    });
  }

  /** The current outcome of an operation, without changing anything. */
  async outcome(operationId: string): Promise<OperationReply | null> {
    const history = await this.store.readStream(operationStream(operationId));
    if (history.length === 0) return null;
    return toReply(fold(ledgerDecider, history.map(decode)).operation, history.at(-1)!.globalPosition);
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    for (let waitedMs = 0; this.running > 0 && waitedMs < 10_000; waitedMs += 20) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Starts batches from the queue while fewer than the limit are in flight. */
  private startBatches(): void {
    while (this.queue.length > 0 && this.running < this.maxRunning) {
      const batch = this.queue.splice(0, MAX_BATCH_SIZE);
      this.running += 1;
      void this.runBatch(batch)
        .catch((error: unknown) => batch.forEach((item) => item.reject(error)))
        .finally(() => {
          this.running -= 1;
          this.startBatches();
        });
    }
  }

  /** Commits the batch, retrying on version conflicts; a batch that fails otherwise is split. */
  private async runBatch(batch: Pending[]): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        const settle = await this.store.transaction((runner) => this.decideBatch(runner, batch));
        settle();
        return;
      } catch (error) {
        if (isVersionConflict(error) && attempt < MAX_CONFLICT_RETRIES) continue;
        if (batch.length === 1) return batch[0]!.reject(error);
        // Find the culprit: run each command on its own so one bad command fails alone.
        for (const item of batch) await this.runBatch([item]);
        return;
      }
    }
  }

  /**
   * Decides and appends the whole batch inside `runner`'s transaction. Returns the function
   * that answers the callers, to be called only after the commit.
   */
  private async decideBatch(runner: QueryRunner, batch: readonly Pending[]): Promise<() => void> {
    const slots = await this.loadOperations(runner, batch);
    const accounts = await lockAccounts(runner, this.store.schema, batch.flatMap(({ command }) => accountsTouched(command, slots.get(operationIdOf(command))!.operation)));
    const outcomes: Array<() => OperationReply | DomainError | Error> = [];
    for (const { command, origin } of batch) {
      const slot = slots.get(operationIdOf(command))!;
      let events: LedgerEvent[];
      try {
        events = ledgerDecider.decide(command, { operation: slot.operation, accounts });
      } catch (error) {
        outcomes.push(() => error as Error);
        continue;
      }
      const next = events.reduce<LedgerState>((state, event) => ledgerDecider.evolve(state, event), { operation: slot.operation, accounts });
      slot.operation = next.operation;
      for (const [account, balance] of next.accounts) accounts.set(account, balance);
      slot.newEvents.push(...events.map((event) => toNewEvent(event, command, origin)));
      const operation = slot.operation;
      const eventCount = slot.newEvents.length;
      // A refused hold is recorded (see hold_rejected) and answered as the refusal it is.
      if (operation.status === 'rejected' && command.kind === 'hold') {
        outcomes.push(() => insufficient(operation.from, operation.availableMicros));
        continue;
      }
      outcomes.push(() => toReply(operation, positionAfter(slot, eventCount)));
    }
    const appended = await this.store.appendManyInTransaction(
      runner,
      [...slots.values()].filter((slot) => slot.newEvents.length > 0).map((slot) => ({ streamId: slot.streamId, expectedVersion: slot.version, events: slot.newEvents })),
    );
    recordPositions(slots, appended);
    return () => {
      batch.forEach((item, index) => {
        const outcome = outcomes[index]!();
        if (outcome instanceof Error) item.reject(outcome);
        else item.resolve(outcome);
      });
    };
  }

  private async loadOperations(runner: QueryRunner, batch: readonly Pending[]): Promise<Map<string, OperationSlot & { positions: number[] }>> {
    const operationIds = [...new Set(batch.map(({ command }) => operationIdOf(command)))];
    const histories = await this.store.readStreams(operationIds.map(operationStream), { runner });
    return new Map(
      operationIds.map((operationId) => {
        const history = histories.get(operationStream(operationId)) ?? [];
        return [
          operationId,
          {
            streamId: operationStream(operationId),
            version: history.length,
            lastPosition: history.at(-1)?.globalPosition ?? null,
            operation: fold(ledgerDecider, history.map(decode)).operation,
            newEvents: [],
            positions: [],
          },
        ];
      }),
    );
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

function toNewEvent(event: LedgerEvent, command: LedgerCommand, origin: CommandOrigin): NewEvent {
  return {
    eventId: randomUUID(),
    ...encodeLedgerEvent(event),
    metadata: { service: origin.service, commandId: operationIdOf(command), correlationId: origin.correlationId, schemaVersion: 1 },
  };
}

/** The log position of the slot's event number `eventCount` of this batch (or its last stored one). */
function positionAfter(slot: OperationSlot & { positions: number[] }, eventCount: number): number {
  if (eventCount === 0) return slot.lastPosition ?? 0;
  return slot.positions[eventCount - 1]!;
}

function recordPositions(slots: Map<string, OperationSlot & { positions: number[] }>, appended: readonly RecordedEvent[]): void {
  const byStream = new Map([...slots.values()].map((slot) => [slot.streamId, slot]));
  for (const event of appended) byStream.get(event.streamId)!.positions.push(event.globalPosition);
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
 * Locks the balance rows of the touched accounts (sorted: one global lock order, taken in one
 * statement) and returns the balances. System accounts without a row are present with zero;
 * unknown ones are absent (the decider refuses them).
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
    prepared(`SELECT account_id, available_micros, held_micros FROM ${schema}.accounts
     WHERE account_id = ANY($1::text[]) ORDER BY account_id FOR UPDATE`),
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
        ...(operation.status !== 'rejected' && operation.splits
          ? { splits: operation.splits.map((split) => ({ to: split.to, amountMicros: split.amountMicros.toString() })) }
          : {}),
        position,
      };
  }
}
