import type { Decision, LoadedBase, PipelineCommand } from './command-pipeline.js';
import type { EventStore } from './event-store.js';
import type { Statement } from './pipeline.js';
import { namedStatement } from './sql.js';
import type { NewEvent, RecordedEvent } from './types.js';

/**
 * A PipelineCommand's load and owed writes as statements, so that `CommandPipeline.execute`
 * (without group commit) runs the command in TWO pipelined round trips instead of one per
 * statement (ADR 0021, "Escrow adopted"):
 *   1. BEGIN, the transaction's `now()` and `loadStatement` (the row under FOR UPDATE, the
 *      command id's earlier events): one write, one wait;
 *   2. decide in JS; then the append (versions checked: a refusal raises), the inline
 *      projections' statements (Projection.statements, given what was loaded and the
 *      transaction's time), `afterAppendStatements` and COMMIT: one write, one wait.
 * A refused decision (the decider throws) or a replay just rolls back. The pipeline's retry
 * policy, replay answers and reply-after-commit are the same as on the other paths; a stream
 * whose events another writer appended meanwhile is a version conflict (retried); a command
 * whose event ids are already in the log is a conflict too, and its retry finds them (replay).
 * Used only when every inline projection of the store offers `statements`.
 */
export interface PipelinedCommandParts<Loaded extends LoadedBase, Event> {
  /** What `load` reads and locks, as one statement; undefined when nothing is to be read (the state is known). */
  loadStatement(): Statement | undefined;
  /** `load`'s answer from the statement's rows ([] when there was no statement). Its version must be a number. */
  loaded(rows: ReadonlyArray<Record<string, unknown>>): Loaded;
  /** What the inline projections fold from for this stream (PendingContext.loaded); `loaded` itself when absent. */
  projectionState?(loaded: Loaded): unknown;
  /**
   * `afterAppend` as statements (they cannot read the append's answer): sent between the
   * append and the COMMIT. Must write exactly what `afterAppend` writes.
   */
  afterAppendStatements?(decision: PendingDecision<Loaded, Event>): Statement[];
}

/** A decision before its append has answered: what was loaded and decided. */
export type PendingDecision<Loaded extends LoadedBase, Event> = Pick<
  Decision<Loaded, Event>,
  'loaded' | 'events' | 'attempts'
>;

/** Sent with BEGIN: the time every event of the transaction is recorded at (the log's default). */
const TRANSACTION_TIME = namedStatement('SELECT now() AS now');

/**
 * One attempt of `command` in two pipelined round trips (see PipelinedCommandParts). Rejects
 * with a VersionConflictError when the append was refused (the caller's retry policy applies);
 * on success the transaction has committed and the store's commit listeners were told.
 */
export async function runPipelinedCommand<Loaded extends LoadedBase, Event>(
  store: EventStore,
  command: PipelineCommand<Loaded, Event, unknown>,
  parts: PipelinedCommandParts<Loaded, Event>,
  attempts: number,
  toNewEvents: (events: readonly Event[]) => NewEvent[],
): Promise<Decision<Loaded, Event>> {
  const load = parts.loadStatement();
  const [transaction, [clock, read]] = await store.beginPipelined(
    load ? [TRANSACTION_TIME, load] : [TRANSACTION_TIME],
  );
  try {
    const transactionTime = (clock!.rows[0] as { now: Date }).now;
    const loaded = parts.loaded((read?.rows ?? []) as Array<Record<string, unknown>>);
    const earlier: RecordedEvent[] =
      command.commandId && loaded.history
        ? loaded.history.filter((event) => event.metadata.commandId === command.commandId)
        : [];
    if (earlier.length > 0) return { loaded, events: [], recorded: earlier, replayed: true, attempts };
    const events = command.decide(loaded);
    const owed = parts.afterAppendStatements?.({ loaded, events, attempts }) ?? [];
    if (events.length === 0) {
      // Nothing to append; what the decision still owes (if anything) commits alone.
      if (owed.length > 0) await transaction.commit(owed);
      return { loaded, events, recorded: [], replayed: false, attempts };
    }
    if (typeof loaded.version !== 'number')
      throw new Error(`pipelined command on ${command.streamId}: the loaded version must be a number`);
    const append = store.prepareAppendMany([
      { streamId: command.streamId, expectedVersion: loaded.version, events: toNewEvents(events) },
    ])!;
    const projections = store.inlineProjectionStatements(append.pending, {
      transactionTime,
      loaded: new Map([[command.streamId, parts.projectionState ? parts.projectionState(loaded) : loaded]]),
    });
    let results;
    try {
      results = await transaction.commit([append.statement, ...projections, ...owed]);
    } catch (error) {
      throw append.failure(error);
    }
    store.committed();
    const recorded = append.recorded(results[0]!.rows as never);
    return { loaded, events, recorded, replayed: false, attempts };
  } finally {
    // A no-op once committed; otherwise (replay, refusal, failure) the locks go.
    await transaction.rollback();
  }
}
