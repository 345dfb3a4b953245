import { randomUUID } from 'node:crypto';
import { DomainError, type MandateAction, type OperationReply } from '@pf/contracts';
import {
  isVersionConflict,
  namedStatement,
  qualify,
  type EventStore,
  type RecordedEvent,
  type Statement,
} from '@pf/event-store';
import { isKnownAccountName } from '../domain/accounts.js';
import { apiKeyDecider, type KeyEvent, type KeyState } from '../domain/api-key.js';
import type { AccountBalance, LedgerCommand } from '../domain/ledger.js';
import { encodeKeyEvent, keyStream } from '../infrastructure/keys-projection.js';
import { isMaterialized } from '../infrastructure/ledger-projection.js';
import { accountsNamed, operationIdOf } from './ledger-commands.js';
import type { CommandOrigin, Slot } from './ledger.service.js';

/** Mandated commands in one process at once: each holds a connection while it waits for its key's lock. */
const MANDATED_IN_FLIGHT = 2;
/** Waiting mandated commands; more are refused as busy (the caller retries with its Idempotency-Key). */
const MANDATED_QUEUE_MAX = 1_000;
/** Version conflicts (another replica wrote the operation or the key) are retried this often. */
const MAX_CONFLICT_RETRIES = 20;
/** The rolling window of `max_per_day_usd`, in the database's interval syntax. */
const DAY_WINDOW_SQL = `interval '24 hours'`;

/** What the batch ledger lends this path, so both decide and write exactly the same way. */
export interface LedgerParts {
  loadStatement(operationId: string, accounts: readonly string[]): Statement;
  load(
    operationId: string,
    rows: readonly unknown[],
  ): { slots: Map<string, Slot>; accounts: Map<string, AccountBalance>; lockable: Set<string> };
  decide(
    item: { command: LedgerCommand; origin: CommandOrigin },
    slots: Map<string, Slot>,
    accounts: Map<string, AccountBalance>,
    lockable: ReadonlySet<string>,
  ): Array<() => OperationReply | Error>;
  committed(
    slots: Map<string, Slot>,
    accounts: ReadonlyMap<string, AccountBalance>,
    lockable: ReadonlySet<string>,
    recorded: readonly RecordedEvent[],
  ): void;
}

interface KeyRow {
  key_id: string;
  agent_id: string;
  key_hash: string;
  name: string | null;
  max_per_transaction_micros: string;
  max_per_day_micros: string;
  allowed_payees: string[] | null;
  allowed_actions: string[] | null;
  expires_at: Date;
  revoked_at: Date | null;
  version: number;
  now: Date;
}

/**
 * A ledger command made with a sub-key (ADR 0019): the mandate is decided in the SAME
 * transaction as the hold or transfer, never checked first and acted on later. One round trip
 * locks the key's row (FOR UPDATE: every spend of that key, on any replica, queues here), then
 * — as separate statements, so their snapshots see every spend committed before the lock was
 * granted — sums the key's spends of the last 24 h and loads the operation with its balance rows
 * locked. The mandate and the ledger decide; the second round trip appends the operation's
 * events and the key's `key_spent` (at the key's version) with the projections, and commits.
 * A retry of an operation that exists answers its first outcome without spending again.
 */
export class MandatedLedger {
  private inFlight = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly store: EventStore,
    private readonly parts: LedgerParts,
  ) {}

  get busy(): boolean {
    return this.inFlight > 0 || this.waiting.length > 0;
  }

  async run(command: LedgerCommand, origin: CommandOrigin): Promise<OperationReply> {
    if (command.kind !== 'hold' && command.kind !== 'transfer')
      throw new Error(`a mandate applies to holds and transfers, not ${command.kind}`);
    if (this.waiting.length >= MANDATED_QUEUE_MAX)
      throw new DomainError('service_unavailable', 'casino is busy; retry with the same Idempotency-Key', {
        write_may_have_happened: false,
      });
    await this.slot();
    try {
      for (let attempt = 1; ; attempt += 1) {
        try {
          return await this.commit(command, origin);
        } catch (error) {
          if (isVersionConflict(error) && attempt < MAX_CONFLICT_RETRIES) continue;
          throw error;
        }
      }
    } finally {
      this.inFlight -= 1;
      this.waiting.shift()?.();
    }
  }

  private slot(): Promise<void> {
    if (this.inFlight < MANDATED_IN_FLIGHT) {
      this.inFlight += 1;
      return Promise.resolve();
    }
    return new Promise((resolve) =>
      this.waiting.push(() => {
        this.inFlight += 1;
        resolve();
      }),
    );
  }

  private async commit(
    command: Extract<LedgerCommand, { kind: 'hold' | 'transfer' }>,
    origin: CommandOrigin,
  ): Promise<OperationReply> {
    const use = origin.mandate!;
    const operationId = operationIdOf(command);
    const named = [...new Set(accountsNamed(command))].filter(
      (account) => isKnownAccountName(account) && isMaterialized(account),
    );
    const schema = this.store.schema;
    const [transaction, [keyResult, spentResult, loaded]] = await this.store.beginPipelined([
      namedStatement(
        `SELECT key_id, agent_id, encode(key_hash, 'hex') AS key_hash, name, max_per_transaction_micros::text,
           max_per_day_micros::text, allowed_payees, allowed_actions, expires_at, revoked_at, version, now() AS now
         FROM ${qualify(schema, 'api_keys')} WHERE key_id = $1 FOR UPDATE`,
        [use.keyId],
      ),
      namedStatement(
        `SELECT coalesce(sum(amount_micros), 0)::text AS spent FROM ${qualify(schema, 'key_spends')}
         WHERE key_id = $1 AND spent_at > now() - ${DAY_WINDOW_SQL}`,
        [use.keyId],
      ),
      this.parts.loadStatement(operationId, named),
    ]);
    try {
      const { slots, accounts, lockable } = this.parts.load(operationId, loaded!.rows);
      const slot = slots.get(operationId)!;
      const row = keyResult!.rows[0] as KeyRow | undefined;
      // A retry of an operation already decided answers its first outcome: it spent then, not now.
      const keyEvents: KeyEvent[] =
        slot.operation.status === 'none'
          ? apiKeyDecider.decide(
              {
                kind: 'spend',
                keyId: use.keyId,
                agentId: command.from,
                operationId,
                action: use.action,
                payeeId: use.payeeId,
                amountMicros: command.amountMicros,
                nowMs: row ? row.now.getTime() : Date.now(),
                spentInWindowMicros: BigInt((spentResult!.rows[0] as { spent: string }).spent),
              },
              keyStateOf(row),
            )
          : [];
      const [outcome] = this.parts.decide({ command, origin }, slots, accounts, lockable);
      // Money moved only if the ledger placed the hold or made the transfer (not a recorded refusal).
      const moved = slot.newEvents.some(
        (event) => event.type === 'hold_placed' || event.type === 'funds_transferred',
      );
      const entries = [
        ...(slot.newEvents.length > 0
          ? [{ streamId: slot.streamId, expectedVersion: slot.version, events: slot.newEvents }]
          : []),
        ...(moved && keyEvents.length > 0
          ? [
              {
                streamId: keyStream(use.keyId),
                expectedVersion: row!.version,
                events: keyEvents.map((event) => ({
                  eventId: randomUUID(),
                  ...encodeKeyEvent(event),
                  metadata: { service: origin.service, commandId: operationId, schemaVersion: 1 },
                })),
              },
            ]
          : []),
      ];
      const append = this.store.prepareAppendMany(entries);
      if (!append) {
        await transaction.rollback();
        return settle(outcome!);
      }
      const [appended] = await transaction
        .commit([append.statement, ...this.store.inlineProjectionStatements(append.pending)])
        .catch((error: unknown) => {
          throw append.failure(error);
        });
      const recorded = append.recorded(appended!.rows as never);
      this.parts.committed(
        slots,
        accounts,
        lockable,
        recorded.filter((event) => event.streamId === slot.streamId),
      );
      return settle(outcome!);
    } catch (error) {
      await transaction.rollback();
      throw error;
    }
  }
}

function settle(outcome: () => OperationReply | Error): OperationReply {
  const answer = outcome();
  if (answer instanceof Error) throw answer;
  return answer;
}

/** The key's state from its locked row (the decider's view); a missing row is an unknown key. */
function keyStateOf(row: KeyRow | undefined): KeyState {
  if (!row) return { status: 'none' };
  return {
    status: row.revoked_at ? 'revoked' : 'active',
    keyId: row.key_id,
    agentId: row.agent_id,
    apiKeyHashHex: row.key_hash,
    mandate: {
      maxPerTransactionMicros: BigInt(row.max_per_transaction_micros),
      maxPerDayMicros: BigInt(row.max_per_day_micros),
      allowedPayees: row.allowed_payees,
      allowedActions: row.allowed_actions as MandateAction[] | null,
      expiresAtMs: row.expires_at.getTime(),
    },
  };
}
