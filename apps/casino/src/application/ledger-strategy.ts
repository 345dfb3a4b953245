import { randomUUID } from 'node:crypto';
import type { DomainError, OperationReply } from '@pf/contracts';
import {
  eventColumns,
  EVENT_STORE_TABLES,
  fold,
  isVersionConflict,
  namedStatement,
  PG_RAISE_EXCEPTION,
  postgresErrorOf,
  qualify,
  recordedEventFromRow,
  type BatchDecision,
  type BatchOutcome,
  type BatchReader,
  type BatchStrategy,
  type EventRow,
  type EventStore,
  type LoadedBatch,
  type NewEvent,
  type RecordedEvent,
  type Statement,
} from '@pf/event-store';
import { isKnownAccountName, isMaterialized, SYSTEM_ACCOUNTS } from '../domain/accounts.js';
import {
  insufficient,
  ledgerDecider,
  remainingOf,
  type AccountBalance,
  type PostedPart,
  type LedgerCommand,
  type LedgerEvent,
  type LedgerState,
  type Operation,
} from '../domain/ledger.js';
import { decodeLedgerEvent, encodeLedgerEvent } from '../infrastructure/ledger-codec.js';
import { LedgerCache, type KnownOperation } from './ledger-cache.js';
import { accountsNamed, operationIdOf, operationStream, type CommandOrigin } from './ledger-commands.js';
import {
  decideMandate,
  mandateAppend,
  mandateStatements,
  readMandate,
  type MandateLoaded,
} from './mandated-ledger.js';

/** Events one operation stream can hold (placed, then posted or voided): far below this. */
const MAX_OPERATION_EVENTS = 1_000;

/** One ledger command as the pipeline queues it. */
export interface LedgerItem {
  command: LedgerCommand;
  origin: CommandOrigin;
}

interface OperationSlot {
  streamId: string;
  version: number;
  lastPosition: number | null;
  operation: Operation;
  newEvents: NewEvent[];
}

export type Slot = OperationSlot & { positions: number[] };

/** What a ledger batch is decided on: the operation streams, the balances, and which rows are locked. */
export interface LedgerBatchState {
  slots: Map<string, Slot>;
  /** The balances before the batch (deciding updates them). */
  accounts: Map<string, AccountBalance>;
  /** The balance rows locked for the batch (a guess: the ones the check locks). */
  lockable: Set<string>;
  /** A sub-key's command (a batch of one): its key row, locked, and its spends in the window. */
  mandate?: MandateLoaded;
}

/**
 * The ledger's batch strategy for the CommandPipeline (ADR 0008, 0021): the commands of a batch
 * decided one after the other against the loaded state and written in ONE transaction — read
 * every operation stream, lock every touched balance row (one sorted statement, so batches
 * never deadlock), decide in order, append to all streams in one statement, project, commit.
 * The result is the same as running the commands one by one in that order: each is decided on
 * the state its predecessors left, and the row locks and stream versions make concurrent batches
 * (in flight here or on other replicas) serialise.
 *
 * The first loader is this process's cache of its own commits (LedgerCache): when it knows
 * everything the batch needs, the batch is ONE pipelined round trip — BEGIN; lock the balance
 * rows (sorted) and check they still hold what the cache says, else raise; the append (raises if
 * a stream is not at the cached version); the projection; COMMIT. Postgres refuses the whole
 * transaction if the guess was wrong, and the pipeline decides the batch again on a read. The
 * read is two round trips: BEGIN + one statement reading every operation stream and locking every
 * balance row the batch touches; then the append, the projection and COMMIT.
 *
 * A sub-key's command (ADR 0019) runs as a batch of one that also locks its key's row and reads
 * its spends: the mandate and the ledger decide in the same transaction (see mandated-ledger.ts).
 */
export class LedgerBatchStrategy implements BatchStrategy<LedgerItem, LedgerBatchState, OperationReply> {
  /** The batch's load statement, built once: it runs on every batch that is not a cache hit. */
  private readonly loadSql: string;
  /** The cached batch's check statement, built once. */
  private readonly checkSql: string;
  private readonly cache = new LedgerCache();

  constructor(private readonly store: EventStore) {
    this.loadSql = ledgerLoadSql(store.schema);
    this.checkSql = ledgerCheckSql(store.schema);
  }

  async loadBatch(
    items: readonly LedgerItem[],
    reader: BatchReader,
    attempt: number,
  ): Promise<LoadedBatch<LedgerBatchState>> {
    const mandate = items[0]?.origin.mandate;
    if (mandate) {
      if (items.length !== 1) throw new Error('a mandated ledger command runs alone');
      const operationId = operationIdOf(items[0]!.command);
      const [keyResult, spentResult, loaded] = await reader.send([
        ...mandateStatements(this.store.schema, mandate.keyId),
        this.loadStatement([operationStream(operationId)], lockableNamed(items)),
      ]);
      return {
        state: {
          ...this.load([operationId], loaded!.rows as LoadRow[]),
          mandate: readMandate(keyResult!.rows, spentResult!.rows),
        },
      };
    }
    // Only a first attempt may be decided on the cache: a retry always reads the log.
    const known = attempt === 1 ? this.knownState(items) : undefined;
    if (known) {
      const expected = [...known.accounts.entries()]
        .filter(([account]) => isMaterialized(account))
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return {
        state: { ...known, lockable: new Set(known.accounts.keys()) },
        check: [
          namedStatement(this.checkSql, [
            expected.map(([account]) => account),
            expected.map(([, b]) => b.availableMicros.toString()),
            expected.map(([, b]) => b.heldMicros.toString()),
          ]),
        ],
        // Stale (another writer moved on) or anything else: forget what the batch relied on.
        guessFailed: (error) => {
          this.cache.forget(known.accounts.keys(), known.slots.keys());
          return isStaleCache(error) || isVersionConflict(error);
        },
      };
    }
    const operationIds = [...new Set(items.map(({ command }) => operationIdOf(command)))];
    const [loaded] = await reader.send([
      this.loadStatement(operationIds.map(operationStream), lockableNamed(items)),
    ]);
    return { state: this.load(operationIds, loaded!.rows as LoadRow[]) };
  }

  decide(items: readonly LedgerItem[], state: LedgerBatchState): BatchDecision<OperationReply> {
    const { slots, accounts, lockable } = state;
    if (state.mandate) {
      const item = items[0]!;
      const slot = slots.get(operationIdOf(item.command))!;
      // A retry of an operation already decided answers its first outcome: it spent then, not now.
      const keyEvents = slot.operation.status === 'none' ? decideMandate(item, state.mandate) : [];
      const outcomes = this.decideBatch(items, slots, accounts, lockable);
      // Money moved only if the ledger placed the hold or made the transfer (not a recorded refusal).
      const moved = slot.newEvents.some(
        (event) => event.type === 'hold_placed' || event.type === 'funds_transferred',
      );
      return {
        appends: [
          ...appendsOf(slots),
          ...(moved && keyEvents.length > 0 ? [mandateAppend(state.mandate, keyEvents, item)] : []),
        ],
        committed: (recorded) => {
          if (recorded.length > 0)
            this.committed(
              state,
              recorded.filter((event) => event.streamId === slot.streamId),
            );
          return outcomes.map(settle);
        },
      };
    }
    const outcomes = this.decideBatch(items, slots, accounts, lockable);
    return {
      appends: appendsOf(slots),
      committed: (recorded) => {
        if (recorded.length > 0) this.committed(state, recorded);
        return outcomes.map(settle);
      },
    };
  }

  /**
   * The state the batch needs, from the cache alone — or undefined if any of it is not there:
   * each operation known (a hold or transfer may start a new stream at version 0), and every
   * balance row its commands can touch. The balances are copies: deciding changes them.
   */
  private knownState(batch: readonly LedgerItem[]): Omit<LedgerBatchState, 'lockable'> | undefined {
    const slots = new Map<string, Slot>();
    const touched = new Set<string>();
    for (const { command } of batch) {
      const operationId = operationIdOf(command);
      let slot = slots.get(operationId);
      if (!slot) {
        const known = this.cache.operation(operationId);
        if (!known && command.kind !== 'hold' && command.kind !== 'transfer') return undefined;
        slot = {
          streamId: operationStream(operationId),
          version: known?.version ?? 0,
          lastPosition: known?.lastPosition ?? null,
          operation: known?.operation ?? { status: 'none' },
          newEvents: [],
          positions: [],
        };
        slots.set(operationId, slot);
      }
      for (const account of accountsTouched(command, slot.operation)) touched.add(account);
      for (const account of accountsNamed(command)) touched.add(account);
    }
    const accounts = new Map<string, AccountBalance>();
    for (const account of SYSTEM_ACCOUNTS)
      if (!isMaterialized(account)) accounts.set(account, { availableMicros: 0n, heldMicros: 0n });
    for (const account of touched) {
      if (!isKnownAccountName(account) || !isMaterialized(account)) continue;
      const balance = this.cache.balance(account);
      if (!balance) return undefined;
      accounts.set(account, { ...balance });
    }
    return { slots, accounts };
  }

  /** After a commit: records the positions for the replies, and remembers what the batch left. */
  private committed(
    { slots, accounts, lockable }: LedgerBatchState,
    recorded: readonly RecordedEvent[],
  ): void {
    recordPositions(slots, recorded);
    const balances = new Map(
      [...accounts].filter(([account]) => lockable.has(account) && isMaterialized(account)),
    );
    const operations = new Map(
      [...slots].map(([operationId, slot]): [string, KnownOperation] => [
        operationId,
        {
          version: slot.version + slot.newEvents.length,
          lastPosition: slot.positions.at(-1) ?? slot.lastPosition,
          operation: slot.operation,
        },
      ]),
    );
    this.cache.remember(balances, operations, recorded.at(-1)?.globalPosition ?? 0);
  }

  /** Decides each command in order on the state its predecessors left; the answers, to give after the commit. */
  private decideBatch(
    batch: readonly LedgerItem[],
    slots: Map<string, Slot>,
    accounts: Map<string, AccountBalance>,
    lockable: ReadonlySet<string>,
  ): Array<() => OperationReply | DomainError | Error> {
    const outcomes: Array<() => OperationReply | DomainError | Error> = [];
    for (const { command, origin } of batch) {
      const slot = slots.get(operationIdOf(command))!;
      // Every balance row a command can touch was locked by the load statement; anything else is a bug here.
      const unlocked = accountsTouched(command, slot.operation).filter(
        (account) => isKnownAccountName(account) && isMaterialized(account) && !lockable.has(account),
      );
      if (unlocked.length > 0)
        throw new Error(`ledger batch: ${unlocked.join(', ')} not locked before deciding`);
      let events: LedgerEvent[];
      try {
        events = ledgerDecider.decide(command, { operation: slot.operation, accounts });
      } catch (error) {
        outcomes.push(() => error as Error);
        continue;
      }
      const next = events.reduce<LedgerState>((state, event) => ledgerDecider.evolve(state, event), {
        operation: slot.operation,
        accounts,
      });
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
      const partId = command.kind === 'post' ? command.partId : undefined;
      outcomes.push(() => toReply(operation, positionAfter(slot, eventCount), partId));
    }
    return outcomes;
  }

  private loadStatement(streamIds: readonly string[], accounts: readonly string[]): Statement {
    return namedStatement(this.loadSql, [streamIds, accounts]);
  }

  /** The slots (stream state per operation), the locked balances, and which accounts the load could lock. */
  private load(operationIds: readonly string[], rows: readonly LoadRow[]): LedgerBatchState {
    const histories = new Map<string, RecordedEvent[]>(operationIds.map((id) => [operationStream(id), []]));
    const accounts = new Map<string, AccountBalance>();
    const lockable = new Set<string>();
    for (const row of rows) {
      if (row.kind === 'event') histories.get(row.stream_id)?.push(recordedEventFromRow(row));
      else if (row.kind === 'account')
        accounts.set(row.account_id!, {
          availableMicros: BigInt(row.available_micros!),
          heldMicros: BigInt(row.held_micros!),
        });
      else for (const account of row.wanted ?? []) if (account !== null) lockable.add(account);
    }
    // System accounts without a balance row take part with zero; unknown ones stay absent (the decider refuses them).
    for (const account of SYSTEM_ACCOUNTS)
      if (!isMaterialized(account)) accounts.set(account, { availableMicros: 0n, heldMicros: 0n });
    const slots = new Map(
      operationIds.map((operationId): [string, Slot] => {
        const history = histories.get(operationStream(operationId))!;
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
    return { slots, accounts, lockable };
  }
}

/** The accounts the commands name that have a balance row to lock. */
function lockableNamed(items: readonly LedgerItem[]): string[] {
  return [...new Set(items.flatMap(({ command }) => accountsNamed(command)))].filter(
    (account) => isKnownAccountName(account) && isMaterialized(account),
  );
}

/** The appends a decided batch owes: each operation stream with new events, at its loaded version. */
function appendsOf(slots: ReadonlyMap<string, Slot>) {
  return [...slots.values()]
    .filter((slot) => slot.newEvents.length > 0)
    .map((slot) => ({ streamId: slot.streamId, expectedVersion: slot.version, events: slot.newEvents }));
}

/** A command's answer once committed: its reply, or the refusal to reject it with. */
function settle(outcome: () => OperationReply | Error): BatchOutcome<OperationReply> {
  try {
    const answer = outcome();
    return answer instanceof Error ? { error: answer } : { reply: answer };
  } catch (error) {
    return { error };
  }
}

const STALE_CACHE_MESSAGE = 'ledger: cached balance is stale for';

function isStaleCache(error: unknown): boolean {
  const { code, message } = postgresErrorOf(error);
  return code === PG_RAISE_EXCEPTION && message?.startsWith(STALE_CACHE_MESSAGE) === true;
}

/**
 * The cached batch's first statement ($1 account ids in sorted order, $2/$3 their available and
 * held amounts as cached): locks each balance row in that order and raises unless every one
 * still holds exactly those amounts. Lookups through LATERAL ... LIMIT, as in the load statement.
 */
export function ledgerCheckSql(schema: string): string {
  return `
      WITH expected AS (
        SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[]) WITH ORDINALITY AS x(account_id, available, held, ord)
      ),
      locked AS (
        SELECT x.account_id, a.available_micros = x.available AND a.held_micros = x.held AS same
        FROM expected AS x
        CROSS JOIN LATERAL (
          SELECT available_micros, held_micros FROM ${qualify(schema, 'accounts')}
          WHERE account_id = x.account_id LIMIT 1 FOR UPDATE
        ) AS a
      )
      SELECT CASE
        WHEN (SELECT count(*) FILTER (WHERE same) FROM locked) = (SELECT count(*) FROM expected) THEN true
        ELSE ${qualify(schema, 'event_store_fail')}('${STALE_CACHE_MESSAGE} '
          || coalesce((SELECT string_agg(account_id, ', ') FROM expected WHERE account_id NOT IN (SELECT account_id FROM locked WHERE same)), '?'))
      END AS ok`;
}

type LoadRow = EventRow & {
  kind: 'event' | 'account' | 'wanted';
  account_id: string | null;
  available_micros: string | null;
  held_micros: string | null;
  wanted: Array<string | null> | null;
};

/**
 * The ledger batch's first statement ($1 operation stream ids, $2 account ids the commands
 * name): the operation streams (by stream, in version order) and the balance rows of those
 * accounts plus the owners of the holds in those streams, locked in account order. Lookups go
 * through LATERAL ... LIMIT so a plan cached while the tables were small never turns into a scan.
 */
export function ledgerLoadSql(schema: string): string {
  return `
      WITH history AS (
        SELECT h.* FROM (SELECT DISTINCT unnest($1::text[]) AS stream_id) AS s
        CROSS JOIN LATERAL (
          SELECT ${eventColumns('e')} FROM ${qualify(schema, EVENT_STORE_TABLES.events)} AS e
          WHERE e.stream_id = s.stream_id ORDER BY e.stream_version LIMIT ${MAX_OPERATION_EVENTS}
        ) AS h
      ),
      wanted AS (
        SELECT unnest($2::text[]) AS account_id
        UNION
        SELECT data->>'from' FROM history WHERE data ? 'from'
      ),
      locked AS (
        SELECT a.account_id, a.available_micros, a.held_micros
        FROM (SELECT account_id FROM wanted WHERE account_id IS NOT NULL ORDER BY account_id) AS w
        CROSS JOIN LATERAL (
          SELECT account_id, available_micros, held_micros FROM ${qualify(schema, 'accounts')}
          WHERE account_id = w.account_id LIMIT 1 FOR UPDATE
        ) AS a
      )
      SELECT 'event' AS kind, h.global_position, h.transaction_id, h.stream_id, h.stream_version, h.event_id, h.type, h.data, h.metadata, h.recorded_at,
        NULL::text AS account_id, NULL::text AS available_micros, NULL::text AS held_micros, NULL::text[] AS wanted
      FROM history AS h
      UNION ALL
      SELECT 'account', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, account_id, available_micros::text, held_micros::text, NULL FROM locked
      UNION ALL
      SELECT 'wanted', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, array_agg(account_id) FROM wanted`;
}

function decode(event: RecordedEvent): LedgerEvent {
  return decodeLedgerEvent(event.type, event.data);
}

function toNewEvent(event: LedgerEvent, command: LedgerCommand, origin: CommandOrigin): NewEvent {
  return {
    eventId: randomUUID(),
    ...encodeLedgerEvent(event),
    metadata: {
      service: origin.service,
      commandId: operationIdOf(command),
      correlationId: origin.correlationId,
      schemaVersion: 1,
      ...(origin.mandate ? { keyId: origin.mandate.keyId } : {}),
      ...(origin.memo ? { memo: origin.memo } : {}),
    },
  };
}

/** The log position of the slot's event number `eventCount` of this batch (or its last stored one). */
function positionAfter(slot: Slot, eventCount: number): number {
  if (eventCount === 0) return slot.lastPosition ?? 0;
  return slot.positions[eventCount - 1]!;
}

function recordPositions(slots: Map<string, Slot>, appended: readonly RecordedEvent[]): void {
  const byStream = new Map([...slots.values()].map((slot) => [slot.streamId, slot]));
  for (const event of appended) byStream.get(event.streamId)!.positions.push(event.globalPosition);
}

/** The accounts a command reads or writes: the ones it names, and for a post or void the hold's owner. */
function accountsTouched(command: LedgerCommand, operation: Operation): string[] {
  if (command.kind === 'transfer' || command.kind === 'hold') return accountsNamed(command);
  // A post or void of no hold (or of a transfer's id) touches nothing: the decider refuses it.
  return operation.status === 'none' || operation.status === 'transferred'
    ? []
    : [operation.from, ...accountsNamed(command)];
}

/** The reply: the operation's outcome, or for a partial post that part's (the same on every retry). */
export function toReply(operation: Operation, position: number, partId?: string): OperationReply {
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
    default: {
      const part =
        partId !== undefined && operation.status !== 'rejected' ? operation.parts?.get(partId) : undefined;
      if (part) return partReply(operation as Extract<Operation, { parts?: unknown }>, part, position);
      return {
        operationId: operation.holdId,
        kind: 'hold',
        status: operation.status,
        from: operation.from,
        amountMicros: operation.amountMicros.toString(),
        ...(operation.status !== 'rejected' && operation.splits
          ? {
              splits: operation.splits.map((split) => ({
                to: split.to,
                amountMicros: split.amountMicros.toString(),
              })),
            }
          : {}),
        ...(operation.status !== 'rejected' && operation.parts
          ? { remainingMicros: remainingOf(operation).toString() }
          : {}),
        position,
      };
    }
  }
}

function partReply(
  hold: Extract<Operation, { parts?: unknown }>,
  part: PostedPart,
  position: number,
): OperationReply {
  return {
    operationId: hold.holdId,
    kind: 'hold',
    // The hold as this part left it: a retry after later parts gets the same answer.
    status: part.remainingAfterMicros === 0n ? 'posted' : 'held',
    from: hold.from,
    amountMicros: hold.amountMicros.toString(),
    splits: part.splits.map((split) => ({ to: split.to, amountMicros: split.amountMicros.toString() })),
    part: {
      partId: part.partId,
      amountMicros: part.amountMicros.toString(),
      final: part.final,
      remainingMicros: part.remainingAfterMicros.toString(),
    },
    position,
  };
}
