import { DomainError, ErrorCode, type EventMetadata } from '@pf/contracts';
import type pg from 'pg';
import type { DataSource, QueryRunner } from 'typeorm';
import { PipelinedTransaction, type Statement } from './pipeline.js';
import { EventStoreErrorCode, VersionConflictError } from './errors.js';
import { EVENT_STORE_TABLES } from './migrations.js';
import {
  projectionTarget,
  type PendingContext,
  type Projection,
  type ProjectionTarget,
} from './projection.js';
import {
  namedStatement,
  PG_RAISE_EXCEPTION,
  PG_UNIQUE_VIOLATION,
  postgresErrorOf,
  prepared,
  qualify,
} from './sql.js';
import {
  LOG_START,
  type AppendResult,
  type ExpectedVersion,
  type LogPosition,
  type NewEvent,
  type PendingEvent,
  type RecordedEvent,
} from './types.js';

export interface EventStoreOptions {
  dataSource: DataSource;
  /** The owning service's schema (casino, faucet, escrow, gateway). */
  schema: string;
  /**
   * Projections updated in the same transaction as every append (state commands check, such
   * as balances). Registered here, not per call, so no append can bypass them.
   */
  inlineProjections?: readonly Projection[];
  /** How often `append` retries an `any`-version append that lost a race; default 5. */
  anyVersionRetries?: number;
}

export interface ReadStreamOptions {
  fromVersion?: number;
  /** At most this many events (default and max 10,000); page with `fromVersion`. */
  maxCount?: number;
  runner?: QueryRunner;
}

export interface ReadAllOptions {
  /** Events strictly after this place; default the start of the log. */
  after?: LogPosition;
  /** Batch size, at most 10,000. */
  limit: number;
  runner?: QueryRunner;
}

type Executor = Pick<QueryRunner, 'query'> | DataSource;

export const MAX_EVENTS_PER_APPEND = 1_000;
export const MAX_READ_BATCH = 10_000;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** A single NATS subject token, so `<service>.events.<type>` stays a well-formed subject. */
const EVENT_TYPE_PATTERN = /^[A-Za-z0-9_-]{1,100}$/;
const STREAM_ID_MAX_LENGTH = 200;

interface AppendRow {
  source: 'inserted' | 'existing' | 'head';
  global_position: string | null;
  stream_version: number;
  event_id: string | null;
  transaction_id: string | null;
  recorded_at: Date | null;
  stream_id: string | null;
}

/** A row of the appendMany statement's answer. */
export interface AppendManyRow {
  global_position: string;
  stream_id: string;
  stream_version: number;
  event_id: string;
  transaction_id: string;
  recorded_at: Date;
  ord: number;
}

export interface EventRow {
  global_position: string;
  transaction_id: string;
  stream_id: string;
  stream_version: number;
  event_id: string;
  type: string;
  data: Record<string, unknown>;
  metadata: EventMetadata;
  recorded_at: Date;
}

/**
 * The append-only event log of one service schema, with optimistic concurrency per stream,
 * idempotent appends (by event id), an outbox row per event in the same transaction, inline
 * projections, and a gap-free reader of the whole log.
 */
export class EventStore {
  readonly schema: string;
  readonly dataSource: DataSource;
  readonly liveTarget: ProjectionTarget;
  private readonly inlineProjections: readonly Projection[];
  private readonly anyVersionRetries: number;
  private readonly sql: ReturnType<typeof buildSql>;
  private readonly committedListeners = new Set<() => void>();
  /** Runners of `transaction()` calls that appended, so listeners hear of the commit. */
  private readonly appendedIn = new WeakSet<QueryRunner>();

  constructor(options: EventStoreOptions) {
    this.schema = options.schema;
    this.dataSource = options.dataSource;
    this.liveTarget = projectionTarget(options.schema);
    this.inlineProjections = options.inlineProjections ?? [];
    this.anyVersionRetries = Math.min(Math.max(options.anyVersionRetries ?? 5, 0), 50);
    this.sql = buildSql(options.schema);
  }

  /**
   * Appends in its own transaction. Without inline projections that is one statement (events,
   * outbox rows and the version check together; a single statement is atomic), so one round
   * trip; with inline projections it is `transaction(appendInTransaction)`.
   * A race that `'any'` cannot lose (another writer took the next version) is retried here.
   */
  async append(
    streamId: string,
    expectedVersion: ExpectedVersion,
    events: readonly NewEvent[],
  ): Promise<AppendResult> {
    const encoded = encodeEvents(streamId, expectedVersion, events);
    if (encoded === undefined) return this.emptyAppend(streamId);
    // One retry for any race: it returns the originals if the racing writer was our own
    // retry, or the precise version mismatch otherwise. 'any' may race several times.
    const maxAttempts = 1 + (expectedVersion === 'any' ? Math.max(this.anyVersionRetries, 1) : 1);
    for (let attempt = 1; ; attempt += 1) {
      try {
        const result =
          this.inlineProjections.length > 0
            ? await this.transaction((runner) =>
                this.appendEncoded(runner, streamId, expectedVersion, events, encoded),
              )
            : await this.appendEncoded(this.dataSource, streamId, expectedVersion, events, encoded);
        if (this.inlineProjections.length === 0 && !result.idempotentReplay) this.notifyCommitted();
        return result;
      } catch (error) {
        if (!(error instanceof VersionConflictError) || error.reason !== 'concurrent_append') throw error;
        // The racing writer may have been this very append (a retry racing its original):
        // then the ids are in the log and the answer is the originals.
        const replay = await this.replayIfPresent(this.dataSource, streamId, events, encoded);
        if (replay) return replay;
        if (attempt >= maxAttempts) throw error;
        // Writers that collided once collide again if they retry in lockstep: a short jittered
        // pause (at most 2^attempt ms) spreads them (seen under load with four 'any' writers).
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 2 ** attempt));
      }
    }
  }

  /**
   * Appends inside the caller's transaction (READ COMMITTED, see `transaction`), together with
   * the inline projections and whatever else the caller writes. On a conflict the transaction
   * is unusable: roll it back, reload, decide again.
   */
  async appendInTransaction(
    runner: QueryRunner,
    streamId: string,
    expectedVersion: ExpectedVersion,
    events: readonly NewEvent[],
  ): Promise<AppendResult> {
    if (!runner.isTransactionActive)
      throw new Error('appendInTransaction needs a runner inside a transaction');
    const encoded = encodeEvents(streamId, expectedVersion, events);
    if (encoded === undefined) return this.emptyAppend(streamId, runner);
    return this.appendEncoded(runner, streamId, expectedVersion, events, encoded);
  }

  /**
   * Runs `fn` in one READ COMMITTED transaction and commits. READ COMMITTED on purpose: each
   * statement sees the latest commits, so the append's version check and the unique
   * (stream_id, stream_version) index detect a concurrent writer as a version conflict the
   * caller retries, while unrelated streams never conflict. Stricter levels would add
   * serialization failures on unrelated rows and give the append a stale view of the stream.
   * The level is the connection's default (Postgres's own, and pinned per connection by
   * `createDataSource` in libs/platform), so the transaction starts with one statement:
   * TypeORM sends a separate SET TRANSACTION for an explicit level, and on these machines every
   * round trip is a syscall that costs more CPU than the statement.
   */
  async transaction<T>(fn: (runner: QueryRunner) => Promise<T>): Promise<T> {
    const runner = this.dataSource.createQueryRunner();
    try {
      await runner.startTransaction();
      let result: T;
      try {
        result = await fn(runner);
        await runner.commitTransaction();
      } catch (error) {
        if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
        throw error;
      }
      if (this.appendedIn.has(runner)) {
        this.appendedIn.delete(runner);
        this.notifyCommitted();
      }
      return result;
    } finally {
      await runner.release();
    }
  }

  /** The events of one stream in version order, at most `maxCount` of them. */
  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    const fromVersion = options.fromVersion ?? 1;
    const maxCount = boundedLimit(options.maxCount ?? MAX_READ_BATCH);
    const rows: EventRow[] = await executorOf(this.dataSource, options.runner).query(
      prepared(this.sql.readStream),
      [streamId, fromVersion, maxCount],
    );
    return rows.map(recordedEventFromRow);
  }

  /**
   * The next batch of the whole log after `after`, in (transaction id, position) order, only
   * from transactions older than every transaction still running (the snapshot's xmin).
   * Positions are taken at insert, not at commit: a reader following positions alone would
   * pass a position whose transaction commits later and skip it for good. Following the
   * writer's transaction id and stopping at xmin, the set of rows before the reader's place
   * can no longer change, so checkpoints never skip. Per stream the order is the version
   * order (the append refuses a transaction older than the stream's last writer).
   * A long-running writing transaction anywhere in the cluster holds readers back until it
   * ends; that is the price of never skipping, so keep writing transactions short.
   */
  async readAll(options: ReadAllOptions): Promise<RecordedEvent[]> {
    const after = options.after ?? LOG_START;
    const rows: EventRow[] = await executorOf(this.dataSource, options.runner).query(
      prepared(this.sql.readAll),
      [after.transactionId, after.globalPosition, boundedLimit(options.limit)],
    );
    return rows.map(recordedEventFromRow);
  }

  /**
   * The events of several streams in one statement, grouped by stream in version order.
   * For batch deciders that load every aggregate a batch touches at once.
   */
  async readStreams(
    streamIds: readonly string[],
    options: { runner?: QueryRunner } = {},
  ): Promise<Map<string, RecordedEvent[]>> {
    const byStream = new Map<string, RecordedEvent[]>(streamIds.map((id) => [id, []]));
    if (streamIds.length === 0) return byStream;
    if (streamIds.length > MAX_EVENTS_PER_APPEND)
      invalid(`at most ${MAX_EVENTS_PER_APPEND} streams per read`);
    const rows: EventRow[] = await executorOf(this.dataSource, options.runner).query(
      prepared(this.sql.readStreams),
      [streamIds, MAX_READ_BATCH],
    );
    for (const row of rows) byStream.get(row.stream_id)?.push(recordedEventFromRow(row));
    return byStream;
  }

  /**
   * Appends to several streams in one statement inside the caller's transaction, each with its
   * own expected version (a number: batches decide on loaded state), then runs the inline
   * projections once over all of them in order. Any stream off its expected version (or
   * written by a younger transaction) fails the whole batch with a VersionConflictError:
   * roll back, reload, decide again. Event ids must be new (batches use fresh UUIDs).
   */
  async appendManyInTransaction(
    runner: QueryRunner,
    batch: ReadonlyArray<{ streamId: string; expectedVersion: number; events: readonly NewEvent[] }>,
  ): Promise<RecordedEvent[]> {
    if (!runner.isTransactionActive)
      throw new Error('appendManyInTransaction needs a runner inside a transaction');
    const append = this.prepareAppendMany(batch);
    if (!append) return [];
    let rows: AppendManyRow[];
    try {
      rows = await runner.query(prepared(append.statement.text), append.statement.values);
    } catch (error) {
      throw append.failure(error);
    }
    const recorded = append.recorded(rows);
    for (const projection of this.inlineProjections)
      await projection.apply(runner, recorded, this.liveTarget);
    this.appendedIn.add(runner);
    return recorded;
  }

  /**
   * appendManyInTransaction in parts, for transactions driven by pipelined round trips: the
   * statement to send, what its rows mean (the recorded events, or a VersionConflictError),
   * and how to read a failure (a reused event id is a conflict). Undefined when there is
   * nothing to append. The caller applies the inline projections (`inlineProjectionStatements`)
   * and, after its commit, calls `committed()`.
   */
  prepareAppendMany(
    batch: ReadonlyArray<{ streamId: string; expectedVersion: number; events: readonly NewEvent[] }>,
  ):
    | {
        statement: Statement;
        /** The events in append order, for statements pipelined after the append (inlineProjectionStatements). */
        pending: PendingEvent[];
        recorded(rows: readonly AppendManyRow[]): RecordedEvent[];
        failure(error: unknown): unknown;
      }
    | undefined {
    const input: Array<ValidatedEvent & { stream_id: string; expected: number; ord: number }> = [];
    const seenStreams = new Set<string>();
    for (const { streamId, expectedVersion, events } of batch) {
      if (seenStreams.has(streamId)) invalid(`stream ${streamId} appears twice in one batch`);
      seenStreams.add(streamId);
      const validated = validateEvents(streamId, expectedVersion, events);
      if (validated === undefined) continue;
      for (const row of validated.rows)
        input.push({ ...row, stream_id: streamId, expected: expectedVersion, ord: input.length });
    }
    if (input.length === 0) return undefined;
    if (input.length > MAX_EVENTS_PER_APPEND)
      invalid(`at most ${MAX_EVENTS_PER_APPEND} events per append, got ${input.length}`);
    // Encoded once for the whole batch; read back once, so the events handed on carry their data
    // exactly as a reader will get it from the log (bigints as strings).
    const json = toJson(input);
    const rows = JSON.parse(json) as Array<Record<string, unknown>>;
    return {
      // A reused event id fails on the unique index (no ANY(array) probe here: it would make
      // Postgres re-plan the statement on every call).
      statement: namedStatement(this.sql.appendMany, [json]),
      pending: rows.map((row) => ({
        streamId: row.stream_id as string,
        eventId: row.event_id as string,
        type: row.type as string,
        data: row.data as Record<string, unknown>,
        metadata: (row.metadata ?? {}) as EventMetadata,
      })),
      failure: (error) => {
        const { code, message } = postgresErrorOf(error);
        if (code === PG_UNIQUE_VIOLATION)
          return new VersionConflictError(batch[0]!.streamId, 'any', null, 'concurrent_append');
        if (code === PG_RAISE_EXCEPTION && message?.startsWith(VERSION_CONFLICT_MESSAGE)) {
          return new VersionConflictError(
            message.slice(VERSION_CONFLICT_MESSAGE.length + 1),
            'any',
            null,
            'version_mismatch',
          );
        }
        return error;
      },
      recorded: (inserted) => {
        if (inserted.length !== rows.length) {
          throw new VersionConflictError(
            batch.map((entry) => entry.streamId).join(','),
            'any',
            null,
            'version_mismatch',
          );
        }
        return [...inserted]
          .sort((a, b) => a.ord - b.ord)
          .map((row): RecordedEvent => {
            const input = rows[row.ord]!;
            return {
              globalPosition: toPosition(row.global_position),
              transactionId: row.transaction_id,
              streamId: row.stream_id,
              streamVersion: row.stream_version,
              eventId: row.event_id,
              type: input.type as string,
              data: input.data as Record<string, unknown>,
              metadata: (input.metadata ?? {}) as EventMetadata,
              recordedAt: row.recorded_at,
            };
          });
      },
    };
  }

  /**
   * The inline projections' work for `events` — appended earlier in this transaction, their
   * answer not read yet — as statements that need no answer to be built, so the append, they
   * and the COMMIT can travel in one round trip. Every inline projection must offer `statements`.
   */
  inlineProjectionStatements(events: readonly PendingEvent[], context?: PendingContext): Statement[] {
    return this.inlineProjections.flatMap((projection) => {
      if (!projection.statements)
        throw new Error(`projection ${projection.name} cannot be pipelined (no statements())`);
      return projection.statements(events, this.liveTarget, context);
    });
  }

  /** Whether every inline projection offers `statements` (inlineProjectionStatements works). */
  get pipelinesInlineProjections(): boolean {
    return this.inlineProjections.every((projection) => projection.statements !== undefined);
  }

  /** Starts a pipelined transaction on this store's database (see PipelinedTransaction). */
  beginPipelined(statements: readonly Statement[]): Promise<[PipelinedTransaction, pg.QueryResult[]]> {
    return PipelinedTransaction.begin(this.dataSource, statements);
  }

  /** Tells the commit listeners (the outbox relay) that a transaction driven outside `transaction()` appended and committed. */
  committed(): void {
    this.notifyCommitted();
  }

  /** Listens for commits that appended events (in this process); returns the unsubscribe. */
  onCommitted(listener: () => void): () => void {
    this.committedListeners.add(listener);
    return () => this.committedListeners.delete(listener);
  }

  private notifyCommitted(): void {
    for (const listener of this.committedListeners) listener();
  }

  private async emptyAppend(streamId: string, runner?: QueryRunner): Promise<AppendResult> {
    const rows: Array<{ version: number }> = await executorOf(this.dataSource, runner).query(
      this.sql.streamVersion,
      [streamId],
    );
    return { events: [], streamVersion: rows[0]?.version ?? 0, idempotentReplay: false };
  }

  /**
   * The originals when this batch's event ids are already in the log (an idempotent retry);
   * undefined when none is; `event_id_reused` when only some are, or in another stream.
   */
  private async replayIfPresent(
    executor: Executor,
    streamId: string,
    events: readonly NewEvent[],
    encoded: EncodedBatch,
  ): Promise<AppendResult | undefined> {
    const existing: AppendRow[] = await executor.query(this.sql.existingEvents, [encoded.eventIds, streamId]);
    const head = existing.find((row) => row.source === 'head')!;
    const found = existing.filter((row) => row.source === 'existing');
    return found.length === 0 ? undefined : idempotentReplay(streamId, events, found, head, encoded);
  }

  private async appendEncoded(
    executor: Executor,
    streamId: string,
    expectedVersion: ExpectedVersion,
    events: readonly NewEvent[],
    encoded: EncodedBatch,
  ): Promise<AppendResult> {
    let rows: AppendRow[];
    try {
      const expected = expectedVersion === 'any' ? null : expectedVersion;
      const { single } = encoded;
      rows = single
        ? await executor.query(prepared(this.sql.appendOne), [
            streamId,
            encoded.eventIds[0],
            expected,
            single.type,
            single.data,
            single.metadata,
          ])
        : await executor.query(prepared(this.sql.append), [
            streamId,
            encoded.json,
            encoded.eventIds[0],
            expected,
          ]);
    } catch (error) {
      const { code } = postgresErrorOf(error);
      if (code === PG_UNIQUE_VIOLATION)
        throw new VersionConflictError(streamId, expectedVersion, null, 'concurrent_append');
      throw error;
    }
    const result = rows.some((row) => row.source === 'existing')
      ? await this.replayIfPresent(executor, streamId, events, encoded)
      : interpretAppend(streamId, expectedVersion, events, rows, encoded);
    if (result === undefined) throw new Error(`event ${encoded.eventIds[0]} vanished from the log`);
    if (!result.idempotentReplay && executor !== this.dataSource) {
      const runner = executor as QueryRunner;
      for (const projection of this.inlineProjections)
        await projection.apply(runner, result.events, this.liveTarget);
      this.appendedIn.add(runner);
    }
    return result;
  }
}

interface EncodedBatch {
  /** The events as one JSON parameter; empty when `single` is set. */
  json: string;
  eventIds: string[];
  /** A one-event batch as plain parameters, for the leaner one-event statement. */
  single?: { type: string; data: string; metadata: string };
}

/** The data of each event exactly as a reader will get it back (bigints as strings). */
function storedData(encoded: EncodedBatch): Array<Record<string, unknown>> {
  if (encoded.single) return [JSON.parse(encoded.single.data) as Record<string, unknown>];
  return (JSON.parse(encoded.json) as Array<{ data: Record<string, unknown> }>).map((row) => row.data);
}

interface ValidatedEvent {
  n: number;
  event_id: string;
  type: string;
  data: Record<string, unknown>;
  metadata: EventMetadata;
}

/** Validates a batch and encodes it as one JSON parameter (or, for one event, as plain ones); undefined for an empty batch. */
function encodeEvents(
  streamId: string,
  expectedVersion: ExpectedVersion,
  events: readonly NewEvent[],
): EncodedBatch | undefined {
  const validated = validateEvents(streamId, expectedVersion, events);
  if (validated === undefined) return undefined;
  const { rows, eventIds } = validated;
  const only = rows.length === 1 ? rows[0]! : undefined;
  // Only what the statement will use is encoded: the one-event statement takes plain parameters.
  return only
    ? {
        json: '',
        eventIds,
        single: { type: only.type, data: toJson(only.data), metadata: toJson(only.metadata) },
      }
    : { json: toJson(rows), eventIds };
}

/** Checks a batch of events for one stream; their rows as the append statements take them, or undefined for none. */
function validateEvents(
  streamId: string,
  expectedVersion: ExpectedVersion,
  events: readonly NewEvent[],
): { rows: ValidatedEvent[]; eventIds: string[] } | undefined {
  if (streamId.length === 0 || streamId.length > STREAM_ID_MAX_LENGTH)
    invalid(`stream id must have 1 to ${STREAM_ID_MAX_LENGTH} characters`);
  if (expectedVersion !== 'any' && !(Number.isSafeInteger(expectedVersion) && expectedVersion >= 0)) {
    invalid(`expected version must be 'any' or an integer >= 0, got ${String(expectedVersion)}`);
  }
  if (events.length === 0) return undefined;
  if (events.length > MAX_EVENTS_PER_APPEND)
    invalid(`at most ${MAX_EVENTS_PER_APPEND} events per append, got ${events.length}`);
  const eventIds: string[] = [];
  const seen = new Set<string>();
  const rows = events.map((event, index) => {
    if (!UUID_PATTERN.test(event.eventId))
      invalid(`event id must be a UUID, got ${JSON.stringify(event.eventId)}`);
    const eventId = event.eventId.toLowerCase();
    if (seen.has(eventId)) invalid(`event id ${eventId} appears twice in one append`);
    seen.add(eventId);
    eventIds.push(eventId);
    if (!EVENT_TYPE_PATTERN.test(event.type))
      invalid(`event type must match ${EVENT_TYPE_PATTERN}, got ${JSON.stringify(event.type)}`);
    if (typeof event.data !== 'object' || event.data === null)
      invalid(`event data must be a JSON object (${event.type})`);
    validateMetadata(event);
    return {
      n: index + 1,
      event_id: eventId,
      type: event.type,
      data: event.data,
      metadata: event.metadata ?? {},
    };
  });
  return { rows, eventIds };
}

/** JSON without a replacer (twice as fast) unless the value holds a bigint. */
function toJson(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    return JSON.stringify(value, bigintAsString);
  }
}

/** The relay builds envelopes from these fields in SQL: a bad value must fail here, not there. */
function validateMetadata(event: NewEvent): void {
  const metadata = event.metadata;
  if (metadata === undefined) return;
  const schemaVersion = metadata.schemaVersion;
  if (
    schemaVersion !== undefined &&
    !(Number.isSafeInteger(schemaVersion) && schemaVersion >= 1 && schemaVersion <= 1_000_000)
  ) {
    invalid(`metadata.schemaVersion must be a positive integer (${event.type})`);
  }
  for (const key of ['correlationId', 'causationId', 'commandId'] as const) {
    if (metadata[key] !== undefined && typeof metadata[key] !== 'string')
      invalid(`metadata.${key} must be a string (${event.type})`);
  }
}

function bigintAsString(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

function interpretAppend(
  streamId: string,
  expectedVersion: ExpectedVersion,
  events: readonly NewEvent[],
  rows: readonly AppendRow[],
  encoded: EncodedBatch,
): AppendResult {
  const head = rows.find((row) => row.source === 'head')!;
  const inserted = rows.filter((row) => row.source === 'inserted');
  if (inserted.length === events.length) {
    return {
      events: recordedFrom(streamId, events, inserted, encoded),
      streamVersion: head.stream_version + events.length,
      idempotentReplay: false,
    };
  }
  if (inserted.length !== 0)
    throw new Error(`append to ${streamId} inserted ${inserted.length} of ${events.length} events`);
  if (expectedVersion !== 'any' && head.stream_version !== expectedVersion) {
    throw new VersionConflictError(streamId, expectedVersion, head.stream_version, 'version_mismatch');
  }
  // Version matched, yet nothing was inserted: the stream's last writer is a younger
  // transaction than ours. Appending would put this stream's events out of order for
  // readers that follow transaction ids; a retry in a new transaction succeeds.
  throw new VersionConflictError(streamId, expectedVersion, head.stream_version, 'transaction_order');
}

/** Every event id is already in the log, in this stream: the append happened before. */
function idempotentReplay(
  streamId: string,
  events: readonly NewEvent[],
  existing: readonly AppendRow[],
  head: AppendRow,
  encoded: EncodedBatch,
): AppendResult {
  const byId = new Map(existing.map((row) => [row.event_id!, row]));
  const originals = events.map((event) => byId.get(event.eventId.toLowerCase()));
  if (originals.some((row) => row === undefined || row.stream_id !== streamId)) {
    throw new DomainError(
      EventStoreErrorCode.eventIdReused,
      `some event ids of this append to ${streamId} are already in the log, but not all of them or in another stream`,
      { streamId, eventIds: existing.map((row) => row.event_id) },
    );
  }
  return {
    events: recordedFrom(streamId, events, originals as AppendRow[], encoded),
    streamVersion: head.stream_version,
    idempotentReplay: true,
  };
}

function recordedFrom(
  streamId: string,
  events: readonly NewEvent[],
  rows: readonly AppendRow[],
  encoded: EncodedBatch,
): RecordedEvent[] {
  const data = storedData(encoded);
  return events.map((event, index) => {
    const row = rows[index]!;
    return {
      globalPosition: toPosition(row.global_position!),
      transactionId: row.transaction_id!,
      streamId,
      streamVersion: row.stream_version,
      eventId: row.event_id!,
      type: event.type,
      data: data[index]!,
      metadata: event.metadata ?? {},
      recordedAt: row.recorded_at!,
    };
  });
}

/**
 * The event columns as the store reads them, for statements that read the log alongside other
 * tables (e.g. a batch's streams and its row locks in one statement); `alias` names the events
 * table in the caller's FROM. Rows come back through `recordedEventFromRow`.
 */
export function eventColumns(alias: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(alias)) throw new Error(`unsafe alias ${alias}`);
  return `${alias}.global_position::text AS global_position, ${alias}.transaction_id::text AS transaction_id, ${alias}.stream_id,
    ${alias}.stream_version, ${alias}.event_id::text AS event_id, ${alias}.type, ${alias}.data, ${alias}.metadata, ${alias}.recorded_at`;
}

export function recordedEventFromRow(row: EventRow): RecordedEvent {
  return {
    globalPosition: toPosition(row.global_position),
    transactionId: row.transaction_id,
    streamId: row.stream_id,
    streamVersion: row.stream_version,
    eventId: row.event_id,
    type: row.type,
    data: row.data,
    metadata: row.metadata,
    recordedAt: row.recorded_at,
  };
}

function toPosition(text: string): number {
  const position = Number(text);
  if (!Number.isSafeInteger(position))
    throw new Error(`global position ${text} exceeds the safe integer range`);
  return position;
}

function boundedLimit(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_READ_BATCH) {
    invalid(`read limit must be an integer from 1 to ${MAX_READ_BATCH}, got ${limit}`);
  }
  return limit;
}

function executorOf(dataSource: DataSource, runner: QueryRunner | undefined): Executor {
  return runner ?? dataSource;
}

function invalid(message: string): never {
  throw new DomainError(ErrorCode.invalidRequest, message);
}

/** How appendMany's refusal reads (raised by event_store_fail): failure() maps it to a VersionConflictError. */
const VERSION_CONFLICT_MESSAGE = 'event store: version conflict on';

/** The statements of one schema, built once: fully qualified names, no search_path. */
function buildSql(schema: string) {
  const events = qualify(schema, EVENT_STORE_TABLES.events);
  const outbox = qualify(schema, EVENT_STORE_TABLES.outbox);
  const schemaFail = qualify(schema, 'event_store_fail');
  // Output names equal column names, so every ORDER BY below must qualify with `e.`: a bare
  // name would sort by the text output column ('10' < '8').
  const columns = eventColumns('e');
  // The parts the one-stream appends (append, appendOne) share; $1 is the stream in both.
  const oneStream = {
    // The first id only: a scalar keeps the plan generic (cached); ANY(array) would make
    // Postgres re-plan the statement on every call. A hit is resolved by existingEvents.
    existing: (eventIdParam: string) => `existing AS (
        SELECT global_position, stream_id, stream_version, event_id, transaction_id, recorded_at
        FROM ${events} WHERE event_id = ${eventIdParam}::uuid
      )`,
    head: `head AS (
        SELECT coalesce(last.stream_version, 0) AS version, last.transaction_id AS last_transaction_id
        FROM (SELECT 1) AS one
        LEFT JOIN LATERAL (
          SELECT stream_version, transaction_id FROM ${events}
          WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1
        ) AS last ON true
      )`,
    outboxedAndAnswer: `outboxed AS (
        INSERT INTO ${outbox} (global_position) SELECT global_position FROM inserted
      )
      SELECT 'inserted' AS source, global_position::text AS global_position, stream_version, event_id::text AS event_id,
        transaction_id::text AS transaction_id, recorded_at, NULL::text AS stream_id
      FROM inserted
      UNION ALL
      SELECT 'existing', global_position::text, stream_version, event_id::text, transaction_id::text, recorded_at, stream_id
      FROM existing
      UNION ALL
      SELECT 'head', NULL, version, NULL, last_transaction_id::text, NULL, NULL FROM head`,
  };
  return {
    // One statement, one round trip: duplicate check, head of the stream, the insert guarded
    // by the expected version and the writer order, and the outbox rows. Concurrent writers
    // of one stream meet at the unique (stream_id, stream_version) index.
    append: `
      WITH input AS (
        SELECT * FROM jsonb_to_recordset($2::jsonb) AS i(n int, event_id uuid, type text, data jsonb, metadata jsonb)
      ),
      ${oneStream.existing('$3')},
      ${oneStream.head},
      inserted AS (
        INSERT INTO ${events} (stream_id, stream_version, event_id, type, data, metadata)
        SELECT $1, head.version + input.n, input.event_id, input.type, input.data, input.metadata
        FROM input CROSS JOIN head
        WHERE NOT EXISTS (SELECT 1 FROM existing)
          AND ($4::int IS NULL OR head.version = $4::int)
          AND (head.last_transaction_id IS NULL OR head.last_transaction_id <= pg_current_xact_id())
        ORDER BY input.n
        RETURNING global_position, stream_version, event_id, transaction_id, recorded_at
      ),
      ${oneStream.outboxedAndAnswer}`,
    // The same for one event (most appends), with plain parameters: no recordset to unpack.
    appendOne: `
      WITH ${oneStream.existing('$2')},
      ${oneStream.head},
      inserted AS (
        INSERT INTO ${events} (stream_id, stream_version, event_id, type, data, metadata)
        SELECT $1, head.version + 1, $2::uuid, $4, $5::jsonb, $6::jsonb
        FROM head
        WHERE NOT EXISTS (SELECT 1 FROM existing)
          AND ($3::int IS NULL OR head.version = $3::int)
          AND (head.last_transaction_id IS NULL OR head.last_transaction_id <= pg_current_xact_id())
        RETURNING global_position, stream_version, event_id, transaction_id, recorded_at
      ),
      ${oneStream.outboxedAndAnswer}`,
    streamVersion: `SELECT coalesce(max(stream_version), 0) AS version FROM ${events} WHERE stream_id = $1`,
    // The rare path after a hit on the first id, or after a unique violation.
    existingEvents: `
      SELECT 'existing' AS source, global_position::text AS global_position, stream_version, event_id::text AS event_id,
        transaction_id::text AS transaction_id, recorded_at, stream_id
      FROM ${events} WHERE event_id = ANY($1::uuid[])
      UNION ALL
      SELECT 'head', NULL, coalesce(max(stream_version), 0), NULL, NULL, NULL, NULL FROM ${events} WHERE stream_id = $2`,
    readStream: `
      SELECT ${columns} FROM ${events} AS e
      WHERE e.stream_id = $1 AND e.stream_version >= $2
      ORDER BY e.stream_version LIMIT $3`,
    // Several streams in one statement: each input row carries its stream and expected
    // version; nothing is inserted unless every stream is at its expected version and was last
    // written by an older transaction. Event ids are fresh UUIDs; the unique index guards them.
    appendMany: `
      WITH input AS (
        SELECT * FROM jsonb_to_recordset($1::jsonb)
          AS i(ord int, stream_id text, expected int, n int, event_id uuid, type text, data jsonb, metadata jsonb)
      ),
      heads AS (
        SELECT s.stream_id, s.expected, coalesce(last.stream_version, 0) AS version, last.transaction_id AS last_transaction_id
        FROM (SELECT DISTINCT stream_id, expected FROM input) AS s
        LEFT JOIN LATERAL (
          SELECT stream_version, transaction_id FROM ${events}
          WHERE stream_id = s.stream_id ORDER BY stream_version DESC LIMIT 1
        ) AS last ON true
      ),
      refused AS (
        SELECT stream_id FROM heads
        WHERE version <> expected OR (last_transaction_id IS NOT NULL AND last_transaction_id > pg_current_xact_id())
      ),
      inserted AS (
        INSERT INTO ${events} (stream_id, stream_version, event_id, type, data, metadata)
        SELECT input.stream_id, heads.version + input.n, input.event_id, input.type, input.data, input.metadata
        FROM input JOIN heads USING (stream_id)
        -- A refusal raises (aborting the transaction) rather than inserting nothing: the
        -- statements pipelined after this one, and the COMMIT, must not go through without it.
        WHERE CASE WHEN EXISTS (SELECT 1 FROM refused)
          THEN ${schemaFail}('${VERSION_CONFLICT_MESSAGE} ' || (SELECT string_agg(stream_id, ', ') FROM refused))
          ELSE true END
        ORDER BY input.ord
        RETURNING global_position, stream_id, stream_version, event_id, transaction_id, recorded_at
      ),
      outboxed AS (
        INSERT INTO ${outbox} (global_position) SELECT global_position FROM inserted
      )
      SELECT inserted.global_position::text AS global_position, inserted.stream_id, inserted.stream_version,
        inserted.event_id::text AS event_id, inserted.transaction_id::text AS transaction_id, inserted.recorded_at, input.ord
      FROM inserted JOIN input ON input.event_id = inserted.event_id`,
    readStreams: `
      SELECT ${columns} FROM ${events} AS e
      WHERE e.stream_id = ANY($1::text[])
      ORDER BY e.stream_id, e.stream_version LIMIT $2`,
    readAll: `
      SELECT ${columns} FROM ${events} AS e
      WHERE (e.transaction_id, e.global_position) > ($1::xid8, $2::bigint)
        AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
      ORDER BY e.transaction_id, e.global_position
      LIMIT $3`,
  };
}
