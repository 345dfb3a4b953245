import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { QueryRunner } from 'typeorm';
import { DomainError, ErrorCode, isDependencyFailure, type EventMetadata } from '@pf/contracts';
import { fold, type Decider } from './decider.js';
import { EventStoreErrorCode, isVersionConflict } from './errors.js';
import type { EventStore } from './event-store.js';
import { nameBasedUuid } from './ids.js';
import { PipelinedTransaction, type Statement } from './pipeline.js';
import { runPipelinedCommand, type PipelinedCommandParts } from './pipelined-command.js';
import { postgresErrorOf } from './sql.js';
import type { ExpectedVersion, NewEvent, RecordedEvent } from './types.js';

/**
 * The one write path of every service (ADR 0021): load the state a decision needs, decide with
 * the pure decider, append (the inline projections and outbox rows travel with the append) and
 * whatever else the decision owes in the same transaction, retry on a version conflict with
 * one bounded, jittered policy, answer a repeated command id with its first outcome, reply.
 * Optionally group commit: commands that arrive while a batch is committing wait and are
 * decided together, in one transaction, as the next batch. Or a batch strategy (`batchWriter`):
 * the batch decided as a whole and written in one pipelined round trip (ADR 0008).
 */

/** One retry policy for every writer: bounded attempts, full-jitter exponential pauses. */
export interface RetryPolicy {
  /** Attempts in all, the first included (1 to 50). */
  maxAttempts: number;
  /** Ceiling of the first pause; it doubles per attempt up to `maxDelayMs`. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 10, baseDelayMs: 2, maxDelayMs: 100 };

/**
 * The pause before attempt `attempt + 1`: uniformly random below a ceiling that doubles per
 * attempt ("full jitter"), so writers that collided once do not collide again in lockstep.
 */
export function retryDelayMs(
  policy: RetryPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const ceilingMs = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(attempt - 1, 0));
  return random() * ceilingMs;
}

/** What a loader found: the decider's input and the stream version the decision builds on. */
export interface LoadedBase {
  /** The stream's current version: the append's expected version ('any' for streams without one writer's order). */
  version: ExpectedVersion;
  /** The stream's events, when the loader folded them: a repeated command id is answered from them. */
  history?: readonly RecordedEvent[];
}

export interface Decision<Loaded extends LoadedBase, Event> {
  loaded: Loaded;
  /** What `decide` returned; empty for a replay or a no-op. */
  events: readonly Event[];
  /** The events as stored: the new ones, or on a replay those the first run appended. */
  recorded: readonly RecordedEvent[];
  /** The command id had run before (its reply was lost): nothing new was written. */
  replayed: boolean;
  /** 1 unless version conflicts were retried. */
  attempts: number;
}

/** One command as the pipeline runs it; every function but `reply` runs inside the transaction. */
export interface PipelineCommand<Loaded extends LoadedBase, Event, Result> {
  streamId: string;
  /**
   * The caller-chosen command id: event ids derive from it (a retry whose first try committed is
   * recognised by the store), and a loader that returns the history answers it from there.
   */
  commandId?: string;
  metadata?: EventMetadata;
  /** Loads the state: folds the stream, locks the projection row, or checks a cache. */
  load(runner: QueryRunner): Promise<Loaded>;
  /** The pure decision; throws a DomainError to refuse (then nothing is written). */
  decide(loaded: Loaded): readonly Event[];
  /** The stored form; `metadata`, when given, adds to the command's (e.g. a per-event schema version). */
  encode(event: Event): { type: string; data: Record<string, unknown>; metadata?: EventMetadata };
  /** Writes the decision owes besides its events (outbox rows, side tables), same transaction. */
  afterAppend?(runner: QueryRunner, decision: Decision<Loaded, Event>): Promise<void>;
  /** The answer, once the transaction has committed. */
  reply(decision: Decision<Loaded, Event>): Result;
  /** Load and afterAppend as statements: `execute` without group commit then takes two round trips (pipelined-command.ts). */
  pipelined?: PipelinedCommandParts<Loaded, Event>;
}

export interface GroupCommitOptions {
  /** Commands decided in one transaction at most (default 64). */
  maxBatchSize?: number;
  /** Batches committing at once (default 1: everything arriving meanwhile joins the next). */
  maxBatchesInFlight?: number;
  /** Commands waiting at most; beyond it a command is refused at once (default 10,000). */
  maxQueued?: number;
}

export interface CommandPipelineOptions {
  retry?: Partial<RetryPolicy>;
  /** Group commit; off (one transaction per command) when absent. */
  groupCommit?: GroupCommitOptions;
}

export interface PipelineStats {
  /** Transactions committed by group commit, and the commands they held. */
  batches: number;
  batchedCommands: number;
  /** Sizes of the most recent batches (at most 100), oldest first. */
  recentBatchSizes: number[];
  /** Commands retried after a version conflict or deadlock. */
  retries: number;
}

interface Queued {
  command: PipelineCommand<LoadedBase, unknown, unknown>;
  attempts: number;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/** Deadlocks and serialization failures undo the transaction: like a version conflict, retry. */
const RETRYABLE_SQLSTATES = new Set(['40P01', '40001']);
const SAVEPOINT = 'pf_pipeline_command';
const RECENT_BATCHES = 100;

export function isRetryableWriteConflict(error: unknown): boolean {
  if (isVersionConflict(error)) return true;
  const code = postgresErrorOf(error).code;
  return code !== undefined && RETRYABLE_SQLSTATES.has(code);
}

export class CommandPipeline {
  readonly stats: PipelineStats = { batches: 0, batchedCommands: 0, recentBatchSizes: [], retries: 0 };
  private readonly retry: RetryPolicy;
  private readonly queue?: CommandQueue<Queued>;
  private readonly writers: Array<{ drain(): Promise<void> }> = [];

  constructor(
    readonly store: EventStore,
    options: CommandPipelineOptions = {},
  ) {
    const retry = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.retry = { ...retry, maxAttempts: Math.min(Math.max(Math.floor(retry.maxAttempts), 1), 50) };
    if (options.groupCommit)
      this.queue = new CommandQueue(queueOptions(options.groupCommit), (batch) => this.runBatch(batch));
  }

  /**
   * A writer whose batches `strategy` loads and decides as a whole, written in one pipelined
   * round trip (two when it has to read first). Same retry policy as this pipeline's commands.
   */
  batchWriter<Command, State, Reply>(
    strategy: BatchStrategy<Command, State, Reply>,
    options: BatchWriterOptions = {},
  ): BatchWriter<Command, Reply> {
    const writer = new BatchWriter<Command, Reply>(
      this.store,
      this.retry,
      strategy as BatchStrategy<Command, unknown, Reply>,
      options,
    );
    this.writers.push(writer);
    return writer;
  }

  /** Runs a command in its own transaction, or in the next group-commit batch; its reply. */
  execute<Loaded extends LoadedBase, Event, Result>(
    command: PipelineCommand<Loaded, Event, Result>,
  ): Promise<Result> {
    const queue = this.queue;
    if (!queue) return this.executeAlone(command);
    return new Promise<Result>((resolve, reject) => {
      queue.push(
        {
          command: command as unknown as PipelineCommand<LoadedBase, unknown, unknown>,
          attempts: 1,
          resolve: resolve as (value: unknown) => void,
          reject,
        },
        reject,
      );
    });
  }

  /**
   * Load, decide, append and the owed writes inside the caller's transaction (an inbox handler,
   * a sweeper). No retry here: a conflict leaves the caller's transaction to roll back.
   */
  async decideIn<Loaded extends LoadedBase, Event>(
    runner: QueryRunner,
    command: PipelineCommand<Loaded, Event, unknown>,
    attempts = 1,
  ): Promise<Decision<Loaded, Event>> {
    const loaded = await command.load(runner);
    const earlier =
      command.commandId && loaded.history
        ? loaded.history.filter((event) => event.metadata.commandId === command.commandId)
        : [];
    if (earlier.length > 0) return { loaded, events: [], recorded: earlier, replayed: true, attempts };
    const events = command.decide(loaded);
    let recorded: readonly RecordedEvent[] = [];
    let replayed = false;
    if (events.length > 0) {
      const appended = await this.store.appendInTransaction(
        runner,
        command.streamId,
        loaded.version,
        toNewEvents(command, events),
      );
      recorded = appended.events;
      replayed = appended.idempotentReplay;
    }
    const decision: Decision<Loaded, Event> = { loaded, events, recorded, replayed, attempts };
    if (command.afterAppend && !replayed) await command.afterAppend(runner, decision);
    return decision;
  }

  /** Resolves once no batch is committing and none is waiting (for a clean shutdown). */
  async drain(): Promise<void> {
    await Promise.all([this.queue?.drain(), ...this.writers.map((writer) => writer.drain())]);
  }

  private async executeAlone<Loaded extends LoadedBase, Event, Result>(
    command: PipelineCommand<Loaded, Event, Result>,
  ): Promise<Result> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        const parts = command.pipelined;
        const decision =
          parts && this.store.pipelinesInlineProjections
            ? await runPipelinedCommand(this.store, command, parts, attempt, (events) =>
                toNewEvents(command, events),
              )
            : await this.store.transaction((runner) => this.decideIn(runner, command, attempt));
        return command.reply(decision);
      } catch (error) {
        if (!isRetryableWriteConflict(error) || attempt >= this.retry.maxAttempts) throw error;
        this.stats.retries += 1;
        await sleep(retryDelayMs(this.retry, attempt));
      }
    }
  }

  /**
   * One transaction for the whole batch; each command inside its own savepoint, so a command
   * that fails (refused, conflicting, or failing in SQL) is undone alone and the others commit.
   * Replies go out only after the COMMIT. A conflicting command goes to a later batch.
   */
  private async runBatch(batch: Queued[]): Promise<void> {
    const decided: Array<{ entry: Queued; decision: Decision<LoadedBase, unknown> }> = [];
    const failed: Array<{ entry: Queued; error: unknown }> = [];
    const retried: Queued[] = [];
    try {
      await this.store.transaction(async (runner) => {
        for (const entry of batch) {
          await runner.query(`SAVEPOINT ${SAVEPOINT}`);
          try {
            decided.push({ entry, decision: await this.decideIn(runner, entry.command, entry.attempts) });
            await runner.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
          } catch (error) {
            await runner.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`);
            await runner.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
            if (isRetryableWriteConflict(error) && entry.attempts < this.retry.maxAttempts)
              retried.push(entry);
            else failed.push({ entry, error });
          }
        }
      });
    } catch (error) {
      // The COMMIT (or the connection) failed: whether anything was written is unknown to the
      // commands that had been decided, exactly as for a single command whose COMMIT failed.
      // A command undone in its savepoint keeps its own error; every other one of the batch
      // (decided, to retry, or not reached when the connection broke) gets the batch's.
      const own = new Map(failed.map(({ entry, error: its }) => [entry, its]));
      for (const entry of batch) entry.reject(own.has(entry) ? own.get(entry) : error);
      return;
    }
    this.stats.batches += 1;
    this.stats.batchedCommands += decided.length;
    this.stats.recentBatchSizes.push(batch.length);
    if (this.stats.recentBatchSizes.length > RECENT_BATCHES) this.stats.recentBatchSizes.shift();
    for (const { entry, decision } of decided) {
      try {
        entry.resolve(entry.command.reply(decision));
      } catch (error) {
        entry.reject(error);
      }
    }
    for (const { entry, error } of failed) entry.reject(error);
    for (const entry of retried) {
      this.stats.retries += 1;
      const delayMs = retryDelayMs(this.retry, entry.attempts);
      entry.attempts += 1;
      this.queue!.pushAfter(entry, delayMs);
    }
  }
}

/** The queue in front of batches: bounded, a batch per free slot, a small first batch gathered for one turn. */
interface QueueOptions {
  maxBatchSize: number;
  maxBatchesInFlight: number;
  maxQueued: number;
  gatherBelow: number;
  busyMessage: string;
}

function queueOptions(
  options: GroupCommitOptions & { gatherBelow?: number; busyMessage?: string },
): QueueOptions {
  return {
    maxBatchSize: Math.min(Math.max(options.maxBatchSize ?? 64, 1), 1_000),
    maxBatchesInFlight: Math.min(Math.max(options.maxBatchesInFlight ?? 1, 1), 16),
    maxQueued: Math.min(Math.max(options.maxQueued ?? 10_000, 1), 100_000),
    gatherBelow: Math.min(Math.max(options.gatherBelow ?? 0, 0), 1_000),
    busyMessage: options.busyMessage ?? 'too many commands are waiting; retry shortly',
  };
}

/**
 * Commands waiting for a batch. While fewer than `maxBatchesInFlight` batches run, the next
 * batch (up to `maxBatchSize`) starts; everything arriving meanwhile waits and joins a later one,
 * so batches grow with the load. A batch that would start with fewer than `gatherBelow` commands
 * while none is in flight first waits one event-loop turn (setImmediate): the commands the same
 * poll has already read join it. Beyond `maxQueued` waiting commands a command is refused at once.
 */
class CommandQueue<Entry> {
  private readonly waiting: Entry[] = [];
  private inFlight = 0;
  /** Entries waiting out a retry pause before they rejoin the queue. */
  private pausing = 0;
  private gathering = false;
  private readonly idle = new Set<() => void>();

  constructor(
    private readonly options: QueueOptions,
    private readonly run: (batch: Entry[]) => Promise<void>,
  ) {}

  /** Queues `entry`, or refuses it through `refuse` when the queue is full. */
  push(entry: Entry, refuse: (error: unknown) => void): void {
    if (this.waiting.length >= this.options.maxQueued) {
      refuse(
        new DomainError(ErrorCode.serviceUnavailable, this.options.busyMessage, {
          write_may_have_happened: false,
        }),
      );
      return;
    }
    this.waiting.push(entry);
    this.start();
  }

  /** Queues `entry` again after a retry pause (never refused: it was accepted once). */
  pushAfter(entry: Entry, delayMs: number): void {
    this.pausing += 1;
    setTimeout(() => {
      this.pausing -= 1;
      this.waiting.push(entry);
      this.start();
    }, delayMs);
  }

  /** Resolves once nothing waits, pauses or runs. */
  async drain(): Promise<void> {
    if (this.isIdle()) return;
    await new Promise<void>((resolve) => this.idle.add(resolve));
  }

  private isIdle(): boolean {
    return this.inFlight === 0 && this.waiting.length === 0 && this.pausing === 0;
  }

  private start(): void {
    if (this.gathering) return;
    if (this.inFlight === 0 && this.waiting.length > 0 && this.waiting.length < this.options.gatherBelow) {
      this.gathering = true;
      setImmediate(() => {
        this.gathering = false;
        this.launch();
      });
      return;
    }
    this.launch();
  }

  private launch(): void {
    while (this.inFlight < this.options.maxBatchesInFlight && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.options.maxBatchSize);
      this.inFlight += 1;
      void this.run(batch).finally(() => {
        this.inFlight -= 1;
        this.start();
        if (this.isIdle()) {
          for (const resolve of this.idle) resolve();
          this.idle.clear();
        }
      });
    }
  }
}

/** The transaction a batch loader reads in: BEGIN travels with the first statements sent. */
export interface BatchReader {
  /** Sends `statements` in the batch's transaction, in one round trip; their results. */
  send(statements: readonly Statement[]): Promise<pg.QueryResult[]>;
}

/** What a batch loader found. */
export interface LoadedBatch<State> {
  state: State;
  /**
   * Set when the state is a guess (a cache) and the loader read nothing: statements sent first,
   * in the round trip that writes, which lock what the decision relied on and raise if the
   * guess was off. The whole batch then is ONE round trip: BEGIN, check, append, projections, COMMIT.
   */
  check?: readonly Statement[];
  /**
   * Called when an attempt decided on the guess failed in any way (forget what it relied on);
   * true when the failure means the guess was stale: the batch is then decided again at once,
   * on a read (`attempt` > 1), without a retry pause (a stale guess is not contention).
   */
  guessFailed?(error: unknown): boolean;
}

/** One command's answer from a committed batch: its reply, or the error to reject it with (a refusal). */
export type BatchOutcome<Reply> = { reply: Reply } | { error: unknown };

/** A batch decided as a whole: what to write, and (after the COMMIT) each command's answer. */
export interface BatchDecision<Reply> {
  /** One entry per stream, at the version the decision built on; the pipeline appends them with the inline projections. */
  appends: ReadonlyArray<{ streamId: string; expectedVersion: number; events: readonly NewEvent[] }>;
  /** Further writes the decision owes, sent after the projections in the same round trip. */
  statements?: readonly Statement[];
  /**
   * Called once the batch committed (or, when there was nothing to append, rolled back its
   * locks), with the appended events in append order: the commands' answers, in batch order.
   */
  committed(recorded: readonly RecordedEvent[]): ReadonlyArray<BatchOutcome<Reply>>;
}

/**
 * How a writer's batches are loaded and decided (ADR 0008, 0021). The pipeline owns the
 * queue, the batch size, the batches in flight, the transaction, the retries and the replies.
 */
export interface BatchStrategy<Command, State, Reply> {
  /**
   * The state the whole batch needs: from a guess (return `check`, send nothing), or read in
   * the batch's transaction through `reader`, taking the row locks the decision relies on.
   * `attempt` is 1 on the first try; a loader must not trust a guess on a later one.
   */
  loadBatch(commands: readonly Command[], reader: BatchReader, attempt: number): Promise<LoadedBatch<State>>;
  /** The pure decision over the batch, each command on the state its predecessors left. */
  decide(commands: readonly Command[], state: State): BatchDecision<Reply>;
}

export interface BatchWriterOptions {
  /** Commands decided in one batch at most (default 64). */
  maxBatchSize?: number;
  /** Batches committing at once, each on its own connection (default 1). */
  maxBatchesInFlight?: number;
  /** Commands waiting at most; beyond it a command is refused with 503 (default 10,000). */
  maxQueued?: number;
  /** A batch smaller than this, while none is in flight, first waits one event-loop turn (default 0: never). */
  gatherBelow?: number;
  /** The refusal's message when the queue is full. */
  busyMessage?: string;
}

interface BatchEntry<Command, Reply> {
  command: Command;
  resolve(reply: Reply): void;
  reject(error: unknown): void;
}

/** A decision on a guess that writes nothing was never checked: it is decided again on a read. */
class UncheckedGuessError extends Error {
  constructor() {
    super('a batch decided on a guess wrote nothing, so nothing checked the guess');
  }
}

/** The write round trip failed on the connection: its COMMIT may have gone through. */
class CommitOutcomeUnknownError extends Error {
  constructor(override readonly cause: unknown) {
    super('the connection failed while the batch committed: it may have been written');
  }
}

/** An attempt decided on a stale guess: retried at once on a read. */
class StaleGuessError extends Error {
  constructor(override readonly cause: unknown) {
    super('the batch was decided on a stale guess');
  }
}

/**
 * Commands decided a batch at a time by a BatchStrategy, written in one pipelined round trip
 * (two when the state has to be read first). A batch that fails on a version conflict, a
 * deadlock or a serialization failure is decided again (reloaded) under the pipeline's retry
 * policy; a batch that fails otherwise, or runs out of attempts, is split and each command
 * retried alone, so one bad command fails alone. Replies go out only after the COMMIT. A batch
 * whose connection failed with its COMMIT on the way is never decided again (it may have been
 * written): each command gets that failure (503, the write may have happened).
 */
export class BatchWriter<Command, Reply> {
  readonly stats: PipelineStats = { batches: 0, batchedCommands: 0, recentBatchSizes: [], retries: 0 };
  private readonly queue: CommandQueue<BatchEntry<Command, Reply>>;

  constructor(
    private readonly store: EventStore,
    private readonly retry: RetryPolicy,
    private readonly strategy: BatchStrategy<Command, unknown, Reply>,
    options: BatchWriterOptions,
  ) {
    this.queue = new CommandQueue(queueOptions(options), (batch) =>
      this.runBatch(batch).catch((error: unknown) => batch.forEach((entry) => entry.reject(error))),
    );
  }

  execute(command: Command): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => this.queue.push({ command, resolve, reject }, reject));
  }

  /** Resolves once no batch is committing and none is waiting. */
  drain(): Promise<void> {
    return this.queue.drain();
  }

  private async runBatch(batch: ReadonlyArray<BatchEntry<Command, Reply>>): Promise<void> {
    const commands = batch.map((entry) => entry.command);
    let settle: (() => ReadonlyArray<BatchOutcome<Reply>>) | undefined;
    let failure: unknown;
    for (let attempt = 1; settle === undefined; attempt += 1) {
      try {
        settle = await this.attempt(commands, attempt);
      } catch (error) {
        if (error instanceof CommitOutcomeUnknownError) {
          // Never decided and written again (that could write it twice), never answered as
          // refused: every command is told the dependency failed and the write may have happened.
          this.store.committed();
          for (const entry of batch) entry.reject(error.cause);
          return;
        }
        if (attempt >= this.retry.maxAttempts) {
          failure = error instanceof StaleGuessError ? error.cause : error;
          break;
        }
        if (error instanceof StaleGuessError) {
          this.stats.retries += 1;
          continue;
        }
        if (!isRetryableWriteConflict(error)) {
          failure = error;
          break;
        }
        this.stats.retries += 1;
        await sleep(retryDelayMs(this.retry, attempt));
      }
    }
    if (settle === undefined) {
      if (batch.length === 1) return batch[0]!.reject(failure);
      // Find the culprit: each command alone, so one bad command fails alone.
      for (const entry of batch) await this.runBatch([entry]);
      return;
    }
    this.stats.batches += 1;
    this.stats.batchedCommands += batch.length;
    this.stats.recentBatchSizes.push(batch.length);
    if (this.stats.recentBatchSizes.length > RECENT_BATCHES) this.stats.recentBatchSizes.shift();
    const outcomes = settle();
    batch.forEach((entry, index) => {
      const outcome = outcomes[index];
      if (outcome === undefined) entry.reject(new Error('the batch strategy gave no answer for a command'));
      else if ('reply' in outcome) entry.resolve(outcome.reply);
      else entry.reject(outcome.error);
    });
  }

  /**
   * One try: load (nothing, or BEGIN + the loader's statements), decide, then the append, the
   * projections, the owed statements and COMMIT in one round trip (with the guess's check in
   * front when nothing was read). Returns the answers, to compute once committed.
   */
  private async attempt(
    commands: readonly Command[],
    attempt: number,
  ): Promise<() => ReadonlyArray<BatchOutcome<Reply>>> {
    let transaction: PipelinedTransaction | undefined;
    const reader: BatchReader = {
      send: async (statements) => {
        if (transaction) return transaction.send(statements);
        const [opened, results] = await this.store.beginPipelined(statements);
        transaction = opened;
        return results;
      },
    };
    let guess: LoadedBatch<unknown> | undefined;
    try {
      const loaded = await this.strategy.loadBatch(commands, reader, attempt);
      // A guess: the loader read nothing and gave the statements that check it.
      const check = transaction === undefined ? loaded.check : undefined;
      if (check) guess = loaded;
      const decision = this.strategy.decide(commands, loaded.state);
      const append = this.store.prepareAppendMany(decision.appends);
      if (!append) {
        if (check) throw new UncheckedGuessError();
        await transaction?.rollback();
        return () => decision.committed([]);
      }
      const statements = [
        ...(check ?? []),
        append.statement,
        ...this.store.inlineProjectionStatements(append.pending),
        ...(decision.statements ?? []),
      ];
      let results: pg.QueryResult[];
      try {
        results = transaction
          ? await transaction.commit(statements)
          : await PipelinedTransaction.run(this.store.dataSource, statements);
      } catch (error) {
        // The connection broke with the COMMIT on its way: it may have committed.
        if (isDependencyFailure(error)) throw new CommitOutcomeUnknownError(error);
        throw append.failure(error);
      }
      const recorded = append.recorded(results[check?.length ?? 0]!.rows as never);
      this.store.committed();
      return () => decision.committed(recorded);
    } catch (error) {
      await (transaction as PipelinedTransaction | undefined)?.rollback();
      const cause = error instanceof CommitOutcomeUnknownError ? error.cause : error;
      const stale = guess?.guessFailed?.(cause) === true || error instanceof UncheckedGuessError;
      if (error instanceof CommitOutcomeUnknownError) throw error;
      if (guess && stale) throw new StaleGuessError(error);
      throw error;
    }
  }
}

/**
 * A loader that folds the stream inside the transaction: the state is the decider's fold, the
 * version the stream's length, and the history answers a repeated command id. Refuses streams
 * longer than `maxEvents` (they need a snapshot: a projection row to lock instead).
 */
export async function loadByFolding<Event, State>(
  store: EventStore,
  runner: QueryRunner,
  streamId: string,
  decider: Pick<Decider<unknown, Event, State>, 'initialState' | 'evolve'>,
  decode: (recorded: RecordedEvent) => Event,
  maxEvents = 10_000,
): Promise<{ state: State; version: number; history: RecordedEvent[] }> {
  const history = await store.readStream(streamId, { runner, maxCount: Math.min(maxEvents + 1, 10_000) });
  if (history.length > maxEvents) {
    throw new DomainError(
      EventStoreErrorCode.streamTooLong,
      `stream ${streamId} has more than ${maxEvents} events`,
      {
        streamId,
      },
    );
  }
  return { state: fold(decider, history.map(decode)), version: history.length, history };
}

function toNewEvents<Event>(
  command: PipelineCommand<LoadedBase, Event, unknown>,
  events: readonly Event[],
): NewEvent[] {
  const metadata: EventMetadata | undefined = command.commandId
    ? { ...command.metadata, commandId: command.commandId }
    : command.metadata;
  return events.map((event, index) => {
    const { metadata: own, ...encoded } = command.encode(event);
    const merged = own ? { ...metadata, ...own } : metadata;
    return {
      ...encoded,
      eventId: command.commandId
        ? nameBasedUuid(`${command.commandId}/${command.streamId}/${index}`)
        : randomUUID(),
      ...(merged ? { metadata: merged } : {}),
    };
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
