import { randomUUID } from 'node:crypto';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { DomainError, type MandateUse, type OperationReply } from '@pf/contracts';
import {
  eventColumns,
  EVENT_STORE_TABLES,
  fold,
  isVersionConflict,
  namedStatement,
  PG_RAISE_EXCEPTION,
  PipelinedTransaction,
  postgresErrorOf,
  qualify,
  recordedEventFromRow,
  VersionConflictError,
  type EventRow,
  type EventStore,
  type NewEvent,
  type RecordedEvent,
  type Statement,
} from '@pf/event-store';
import { isKnownAccountName, SYSTEM_ACCOUNTS } from '../domain/accounts.js';
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
import { isMaterialized } from '../infrastructure/ledger-projection.js';
import { CONFIG } from '@pf/platform';
import type { CasinoConfig } from '../config.js';
import { LedgerCache, type KnownOperation } from './ledger-cache.js';
import { CASINO_EVENT_STORE } from './tokens.js';
import { MandatedLedger } from './mandated-ledger.js';
import { accountsNamed, operationIdOf } from './ledger-commands.js';

/** Most commands decided and committed in one transaction. */
const MAX_BATCH_SIZE = 64;
/**
 * Batches in flight at once (LEDGER_BATCHES_IN_FLIGHT), each on its own connection: batches on
 * disjoint accounts proceed in parallel; on shared ones the row locks serialise them (one sorted
 * lock statement per batch: never a deadlock). Kept below the pool size so reads and the outbox
 * relay always find a connection. Measured through NATS (bench:ledger, concurrency 16, three
 * alternating pairs): 1 in flight gave 2,493–3,065 holds/s at 447–556 µs of machine CPU per hold,
 * 3 in flight 2,024–2,430 at 670–820 µs — bigger batches, less work per hold.
 */
function batchConcurrency(configured: number, poolMax: number): number {
  return Math.max(1, Math.min(configured, poolMax - 1));
}
/**
 * A batch that would start with fewer commands than this, while no batch is in flight, first
 * waits one event-loop turn (setImmediate): the commands the same poll has already read from
 * NATS join it instead of waiting for the next batch. Measured (bench:ledger, concurrency 16,
 * three alternating pairs): 3,659–3,866 holds/s at 322–341 µs of machine CPU per hold, against
 * 3,172–3,619 at 384–439 without; the latency of a lone command does not move (c1 p50 1.78 vs
 * 1.81 ms).
 */
const GATHER_BELOW = 12;
/** Events one operation stream can hold (placed, then posted or voided): far below this. */
const MAX_OPERATION_EVENTS = 1_000;
/** Version conflicts (another replica wrote the same operation) are retried this often. */
const MAX_CONFLICT_RETRIES = 20;

export interface CommandOrigin {
  /** The service that asked (faucet, escrow, admin): shown in ledger entries. */
  service: string;
  correlationId?: string;
  /** Made with a sub-key: its mandate is checked in the same transaction (ADR 0019). */
  mandate?: MandateUse;
  /** A payment's memo, kept in its events' metadata. */
  memo?: string;
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
 * decide in order, append to all streams in one statement, project, commit. One commit and one
 * or two round trips serve the whole batch; under load batches grow, when idle a command runs
 * alone at once. The result is the same as running the commands one by one in that order: each
 * is decided on the state its predecessors left, and the row locks and stream versions make
 * concurrent batches (in flight here or on other replicas) serialise. The state may come from
 * this process's cache of its own commits instead of a read (LedgerCache); Postgres then checks
 * it under the same locks before anything is written, and a stale guess is decided again.
 */
@Injectable()
export class LedgerService implements OnApplicationShutdown {
  private readonly queue: Pending[] = [];
  private running = 0;
  /** A start is scheduled for the next event-loop turn (GATHER_BELOW). */
  private gathering = false;
  private readonly maxRunning: number;
  /** The batch's load statement, built once: it runs on every batch. */
  private readonly loadSql: string;
  /** The cached batch's check statement, built once. */
  private readonly checkSql: string;
  private readonly cache = new LedgerCache();
  private stopping = false;
  private readonly mandated: MandatedLedger;

  constructor(
    @Inject(CASINO_EVENT_STORE) private readonly store: EventStore,
    @Inject(CONFIG) config: CasinoConfig,
  ) {
    this.maxRunning = batchConcurrency(config.LEDGER_BATCHES_IN_FLIGHT, config.DB_POOL_MAX);
    this.loadSql = ledgerLoadSql(store.schema);
    this.checkSql = ledgerCheckSql(store.schema);
    this.mandated = new MandatedLedger(store, {
      loadStatement: (operationId, accounts) => this.loadStatement([operationStream(operationId)], accounts),
      load: (operationId, rows) => this.load([operationId], rows as LoadRow[]),
      decide: (item, slots, accounts, lockable) =>
        this.decideBatch(
          [{ ...item, resolve: () => undefined, reject: () => undefined }],
          slots,
          accounts,
          lockable,
        ),
      committed: (slots, accounts, lockable, recorded) => this.committed(slots, accounts, lockable, recorded),
    });
  }

  execute(command: LedgerCommand, origin: CommandOrigin): Promise<OperationReply> {
    if (this.stopping)
      return Promise.reject(new DomainError('service_unavailable', 'casino is shutting down'));
    // A sub-key's command runs alone, with its key row locked: see MandatedLedger.
    if (origin.mandate) return this.mandated.run(command, origin);
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
    for (
      let waitedMs = 0;
      (this.running > 0 || this.queue.length > 0 || this.mandated.busy) && waitedMs < 10_000;
      waitedMs += 20
    ) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Starts batches from the queue while fewer than the limit are in flight (a small first one a turn later). */
  private startBatches(): void {
    if (this.gathering) return;
    if (this.running === 0 && this.queue.length > 0 && this.queue.length < GATHER_BELOW) {
      this.gathering = true;
      setImmediate(() => {
        this.gathering = false;
        this.launchBatches();
      });
      return;
    }
    this.launchBatches();
  }

  private launchBatches(): void {
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
        // Only a first attempt may be decided on the cache: a retry always reads the log.
        const settle = await this.commitBatch(batch, attempt === 1);
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
   * Decides and commits the whole batch in one transaction. When the cache knows everything
   * the batch needs, that is ONE pipelined round trip (commitKnown); otherwise two
   * (commitLoaded):
   *   1. BEGIN + one statement reading every operation stream and locking every balance row the
   *      batch touches (sorted: one global lock order, so batches never deadlock);
   *   2. the append to every stream (versions checked: a refusal raises), the projection
   *      (balances and entries, one statement) and COMMIT; the append's answer gives the log
   *      positions for the replies.
   * Returns the function that answers the callers, to be called only after the commit.
   */
  private async commitBatch(batch: readonly Pending[], mayUseCache: boolean): Promise<() => void> {
    const known = mayUseCache ? this.knownState(batch) : undefined;
    if (known) {
      try {
        return await this.commitKnown(batch, known);
      } catch (error) {
        // Stale (another writer moved on) or anything else: forget what the batch relied on;
        // the retry reads the log. A stale guess is a conflict like any other.
        this.cache.forget(known.accounts.keys(), known.slots.keys());
        throw isStaleCache(error)
          ? new VersionConflictError(
              operationStream(known.slots.keys().next().value!),
              'any',
              null,
              'version_mismatch',
            )
          : error;
      }
    }
    return this.commitLoaded(batch);
  }

  /** The batch decided on what the log says, read under the row locks (round trip 1), then written (round trip 2). */
  private async commitLoaded(batch: readonly Pending[]): Promise<() => void> {
    const operationIds = [...new Set(batch.map(({ command }) => operationIdOf(command)))];
    const named = [...new Set(batch.flatMap(({ command }) => accountsNamed(command)))].filter(
      (account) => isKnownAccountName(account) && isMaterialized(account),
    );
    const [transaction, [loaded]] = await this.store.beginPipelined([
      this.loadStatement(operationIds.map(operationStream), named),
    ]);
    try {
      const { slots, accounts, lockable } = this.load(operationIds, loaded!.rows as LoadRow[]);
      const outcomes = this.decideBatch(batch, slots, accounts, lockable);
      const append = this.prepareAppend(slots);
      if (append) {
        // The append, the projection (which finds the new events in the log by id) and the
        // COMMIT in one round trip; a refused append aborts the transaction, so nothing after it counts.
        const [appended] = await transaction
          .commit([append.statement, ...this.store.inlineProjectionStatements(append.pending)])
          .catch((error: unknown) => {
            throw append.failure(error);
          });
        this.committed(slots, accounts, lockable, append.recorded(appended!.rows as never));
      } else {
        // Nothing to write (every command answered from its stream): just let the locks go.
        await transaction.rollback();
      }
      return answers(batch, outcomes);
    } catch (error) {
      await transaction.rollback();
      throw error;
    }
  }

  /**
   * The batch decided on this process's cache, in ONE round trip: BEGIN; lock the balance rows
   * (sorted) and check they still hold what the cache says, else raise; the append (raises if a
   * stream is not at the cached version — a "new" hold whose id exists, say); the projection;
   * COMMIT. Postgres refuses the whole transaction if the guess was wrong.
   */
  private async commitKnown(batch: readonly Pending[], known: KnownState): Promise<() => void> {
    const { slots, accounts } = known;
    const lockable = new Set(accounts.keys());
    const expected = [...known.accounts.entries()]
      .filter(([account]) => isMaterialized(account))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const outcomes = this.decideBatch(batch, slots, accounts, lockable);
    const append = this.prepareAppend(slots);
    if (!append) throw new StaleCacheError('nothing to write');
    const check = namedStatement(this.checkSql, [
      expected.map(([account]) => account),
      expected.map(([, b]) => b.availableMicros.toString()),
      expected.map(([, b]) => b.heldMicros.toString()),
    ]);
    const [, appended] = await PipelinedTransaction.run(this.store.dataSource, [
      check,
      append.statement,
      ...this.store.inlineProjectionStatements(append.pending),
    ]).catch((error: unknown) => {
      throw append.failure(error);
    });
    this.committed(slots, accounts, lockable, append.recorded(appended!.rows as never));
    return answers(batch, outcomes);
  }

  /**
   * The state the batch needs, from the cache alone — or undefined if any of it is not there:
   * each operation known (a hold or transfer may start a new stream at version 0), and every
   * balance row its commands can touch. The balances are copies: deciding changes them.
   */
  private knownState(batch: readonly Pending[]): KnownState | undefined {
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

  private prepareAppend(slots: ReadonlyMap<string, Slot>) {
    return this.store.prepareAppendMany(
      [...slots.values()]
        .filter((slot) => slot.newEvents.length > 0)
        .map((slot) => ({ streamId: slot.streamId, expectedVersion: slot.version, events: slot.newEvents })),
    );
  }

  /** After a commit: tells the relay, records the positions for the replies, and remembers what the batch left. */
  private committed(
    slots: Map<string, Slot>,
    accounts: ReadonlyMap<string, AccountBalance>,
    lockable: ReadonlySet<string>,
    recorded: readonly RecordedEvent[],
  ): void {
    this.store.committed();
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
    batch: readonly Pending[],
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
  private load(
    operationIds: readonly string[],
    rows: readonly LoadRow[],
  ): { slots: Map<string, Slot>; accounts: Map<string, AccountBalance>; lockable: Set<string> } {
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

export type Slot = OperationSlot & { positions: number[] };

interface KnownState {
  slots: Map<string, Slot>;
  /** The balances before the batch (copied from the cache; deciding updates them). */
  accounts: Map<string, AccountBalance>;
}

/** The cache's guess was off: the batch goes back to reading the log. */
class StaleCacheError extends Error {}

const STALE_CACHE_MESSAGE = 'ledger: cached balance is stale for';

function isStaleCache(error: unknown): boolean {
  if (error instanceof StaleCacheError) return true;
  const { code, message } = postgresErrorOf(error);
  return code === PG_RAISE_EXCEPTION && message?.startsWith(STALE_CACHE_MESSAGE) === true;
}

/** The function that answers the batch's callers, to be called once the commit is known. */
function answers(
  batch: readonly Pending[],
  outcomes: ReadonlyArray<() => OperationReply | DomainError | Error>,
): () => void {
  return () => {
    batch.forEach((item, index) => {
      const outcome = outcomes[index]!();
      if (outcome instanceof Error) item.reject(outcome);
      else item.resolve(outcome);
    });
  };
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

export function operationStream(operationId: string): string {
  return `op-${operationId}`;
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
function positionAfter(slot: OperationSlot & { positions: number[] }, eventCount: number): number {
  if (eventCount === 0) return slot.lastPosition ?? 0;
  return slot.positions[eventCount - 1]!;
}

function recordPositions(
  slots: Map<string, OperationSlot & { positions: number[] }>,
  appended: readonly RecordedEvent[],
): void {
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
function toReply(operation: Operation, position: number, partId?: string): OperationReply {
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
