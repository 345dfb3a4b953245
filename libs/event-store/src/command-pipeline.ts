import { randomUUID } from 'node:crypto';
import type { QueryRunner } from 'typeorm';
import { DomainError, ErrorCode, type EventMetadata } from '@pf/contracts';
import { fold, type Decider } from './decider.js';
import { EventStoreErrorCode, isVersionConflict } from './errors.js';
import type { EventStore } from './event-store.js';
import { nameBasedUuid } from './ids.js';
import { runPipelinedCommand, type PipelinedCommandParts } from './pipelined-command.js';
import { postgresErrorOf } from './sql.js';
import type { ExpectedVersion, NewEvent, RecordedEvent } from './types.js';

/**
 * The one write path of every service (ADR 0021): load the state a decision needs, decide with
 * the pure decider, append (the inline projections and outbox rows travel with the append) and
 * whatever else the decision owes in the same transaction, retry on a version conflict with
 * one bounded, jittered policy, answer a repeated command id with its first outcome, reply.
 * Optionally group commit: commands that arrive while a batch is committing wait and are
 * decided together, in one transaction, as the next batch.
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
  private readonly group?: Required<GroupCommitOptions>;
  private readonly queue: Queued[] = [];
  private inFlight = 0;
  private readonly idle = new Set<() => void>();

  constructor(
    readonly store: EventStore,
    options: CommandPipelineOptions = {},
  ) {
    const retry = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.retry = { ...retry, maxAttempts: Math.min(Math.max(Math.floor(retry.maxAttempts), 1), 50) };
    if (options.groupCommit) {
      this.group = {
        maxBatchSize: Math.min(Math.max(options.groupCommit.maxBatchSize ?? 64, 1), 1_000),
        maxBatchesInFlight: Math.min(Math.max(options.groupCommit.maxBatchesInFlight ?? 1, 1), 16),
        maxQueued: Math.min(Math.max(options.groupCommit.maxQueued ?? 10_000, 1), 100_000),
      };
    }
  }

  /** Runs a command in its own transaction, or in the next group-commit batch; its reply. */
  execute<Loaded extends LoadedBase, Event, Result>(
    command: PipelineCommand<Loaded, Event, Result>,
  ): Promise<Result> {
    if (!this.group) return this.executeAlone(command);
    if (this.queue.length >= this.group.maxQueued) {
      return Promise.reject(
        new DomainError(ErrorCode.serviceUnavailable, 'too many commands are waiting; retry shortly', {
          write_may_have_happened: false,
        }),
      );
    }
    return new Promise<Result>((resolve, reject) => {
      this.queue.push({
        command: command as unknown as PipelineCommand<LoadedBase, unknown, unknown>,
        attempts: 1,
        resolve: resolve as (value: unknown) => void,
        reject,
      });
      this.pump();
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
    if (this.inFlight === 0 && this.queue.length === 0) return;
    await new Promise<void>((resolve) => this.idle.add(resolve));
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

  private pump(): void {
    const group = this.group!;
    while (this.inFlight < group.maxBatchesInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, group.maxBatchSize);
      this.inFlight += 1;
      void this.runBatch(batch).finally(() => {
        this.inFlight -= 1;
        this.pump();
        if (this.inFlight === 0 && this.queue.length === 0) {
          for (const resolve of this.idle) resolve();
          this.idle.clear();
        }
      });
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
      for (const { entry } of decided) entry.reject(error);
      for (const { entry, error: own } of failed) entry.reject(own);
      for (const entry of retried) entry.reject(error);
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
      setTimeout(() => {
        this.queue.push(entry);
        this.pump();
      }, delayMs);
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
