import { Inject, Injectable } from '@nestjs/common';
import type { QueryRunner } from 'typeorm';
import { DomainError } from '@pf/contracts';
import {
  CommandPipeline,
  type Decision,
  type LoadedBase,
  type PipelineCommand,
  type PipelinedCommandParts,
  type RecordedEvent,
} from '@pf/event-store';
import { CONFIG } from '@pf/platform';
import type { EscrowConfig } from '../config.js';
import {
  escrowDecider,
  ledgerInstructionOf,
  payoutSplits,
  type EscrowCommand,
  type EscrowEvent,
  type EscrowState,
} from '../domain/escrow.js';
import { milestonePartOf, type MilestonePart } from '../domain/milestones.js';
import { decodeEscrowEvent, encodeEscrowEvent, schemaVersionOf } from '../infrastructure/escrow-codec.js';
import { escrowStream, EscrowRepository, type SettlementOrder } from '../infrastructure/escrow-repository.js';
import { rowAfter, stateFromRow, type EscrowRow } from '../infrastructure/escrow-row.js';
import { ESCROW_REPOSITORY } from './tokens.js';

export interface EscrowDecision {
  before: EscrowState;
  state: EscrowState;
  /** The events this command produced, or the earlier ones when it was a replay. */
  events: EscrowEvent[];
  /** The escrow's read-model row after the command (undefined: the escrow does not exist). */
  row: EscrowRow | undefined;
  settlement: SettlementOrder | null;
  /** The same command id ran before: nothing new was decided. */
  replayed: boolean;
}

export interface ExecuteOptions {
  commandId?: string;
  correlationId?: string;
  /** The escrow id was just drawn at random: no row can exist, so there is nothing to lock or read. */
  freshId?: boolean;
  /**
   * The row this process has just written (the create's, for its hold outcome): the first
   * attempt decides on it without locking, and the append's expected version catches anybody
   * (the recovery sweep) who wrote meanwhile; the retry then locks and reads.
   */
  knownRow?: EscrowRow;
}

/** What an escrow command decides on: the row (locked, or just written) and its state. */
interface EscrowLoaded extends LoadedBase {
  row: EscrowRow | undefined;
  before: EscrowState;
}

/**
 * The escrow's write side on the shared CommandPipeline (ADR 0021): each command is a
 * `PipelineCommand` — load = the escrow row under FOR UPDATE (with the command id's earlier
 * events in the same statement), decide = `escrowDecider`, append (the inline projection writes
 * the row and the deadline with it), afterAppend = the settlement outbox row the decision owes
 * (or the void of a late hold), reply after the commit. Requests go through `execute` (one
 * retry policy, optional group commit: ESCROW_GROUP_COMMIT_BATCHES); the sweeper decides inside
 * its own transaction with `decideIn`. Without group commit a command takes two pipelined round
 * trips (PipelinedCommandParts): BEGIN + the lock statement, then the append, the projection's
 * upsert (escrowProjection.statements), the settlement and COMMIT.
 */
@Injectable()
export class EscrowCommands {
  private readonly pipeline: CommandPipeline;

  constructor(
    @Inject(ESCROW_REPOSITORY) private readonly repository: EscrowRepository,
    @Inject(CONFIG) config: Pick<EscrowConfig, 'ESCROW_GROUP_COMMIT_BATCHES'>,
  ) {
    const batches = config.ESCROW_GROUP_COMMIT_BATCHES;
    this.pipeline = new CommandPipeline(repository.store, {
      groupCommit: batches > 0 ? { maxBatchesInFlight: batches } : undefined,
    });
  }

  async execute(
    escrowId: string,
    command: EscrowCommand,
    options: ExecuteOptions = {},
  ): Promise<EscrowDecision> {
    let known = options.knownRow;
    const load = async (runner: QueryRunner): Promise<EscrowLoaded> => {
      // A caller-chosen id may race another create: the append's expected version catches it.
      if (options.freshId) return loaded(undefined, []);
      const row = known;
      known = undefined; // only the first attempt: a retry locks and reads
      if (row) {
        this.repository.remember(runner, row);
        return loaded(row, []);
      }
      const locked = await this.repository.lock(runner, escrowId, options.commandId);
      return loaded(locked.row, locked.earlier);
    };
    // The same load as statements (round trip 1 of the pipelined path): what the first
    // attempt reads, decided when it is sent.
    let read: 'lock' | EscrowRow | undefined;
    const pipelined: PipelinedCommandParts<EscrowLoaded, EscrowEvent> = {
      loadStatement: () => {
        if (options.freshId) read = undefined;
        else if (known) {
          read = known;
          known = undefined;
        } else read = 'lock';
        return read === 'lock' ? this.repository.lockStatement(escrowId, options.commandId) : undefined;
      },
      loaded: (rows) => {
        if (read !== 'lock') return loaded(read, []);
        const locked = this.repository.lockedFrom(rows);
        return loaded(locked.row, locked.earlier);
      },
      // The inline projection folds the row from the one loaded (PendingContext).
      projectionState: (state) => state.row,
      afterAppendStatements: (decision) => {
        const settlement = owedBy(escrowId, command, decision);
        return settlement ? [this.repository.settlementStatement([settlement])] : [];
      },
    };
    const spec = {
      ...this.spec(escrowId, command, options, load, (runner, order) =>
        this.repository.writeSettlements(runner, [order]),
      ),
      pipelined,
    };
    try {
      return await this.pipeline.execute(spec);
    } catch (error) {
      // A repeat that waited for the first run's lock read the log before that run committed:
      // the decider refuses what is already done. Answer it as the replay it is.
      if (!(error instanceof DomainError) || !options.commandId) throw error;
      const earlier = await this.repository.earlierRun(escrowId, options.commandId);
      if (earlier.earlier.length === 0 || !earlier.row) throw error;
      return replayOf(earlier.row, earlier.earlier);
    }
  }

  /**
   * For the sweeper, inside its transaction, on a row it claimed (locked): decides and appends;
   * the settlement owed is handed to `owe` (the sweeper writes a batch's in one statement).
   */
  async decideIn(
    runner: QueryRunner,
    row: EscrowRow,
    command: EscrowCommand,
    owe: (order: SettlementOrder) => void,
  ): Promise<EscrowDecision> {
    const spec = this.spec(
      row.escrow_id,
      command,
      {},
      async (inner) => {
        this.repository.remember(inner, row);
        return loaded(row, []);
      },
      async (_runner, order) => owe(order),
    );
    return spec.reply(await this.pipeline.decideIn(runner, spec));
  }

  private spec(
    escrowId: string,
    command: EscrowCommand,
    options: ExecuteOptions,
    load: (runner: QueryRunner) => Promise<EscrowLoaded>,
    writeSettlement: (runner: QueryRunner, order: SettlementOrder) => Promise<void>,
  ): PipelineCommand<EscrowLoaded, EscrowEvent, EscrowDecision> {
    return {
      streamId: escrowStream(escrowId),
      // Event ids derive from the command id, so a retried command is recognised by the store.
      commandId: options.commandId,
      metadata: {
        service: 'escrow',
        ...(options.correlationId ? { correlationId: options.correlationId } : {}),
      },
      load,
      decide: (loaded) => escrowDecider.decide(command, loaded.before),
      encode: (event) => ({
        ...encodeEscrowEvent(event),
        metadata: { schemaVersion: schemaVersionOf(event) },
      }),
      afterAppend: async (runner, decision) => {
        const settlement = owedBy(escrowId, command, decision);
        if (settlement) await writeSettlement(runner, settlement);
      },
      reply: (decision) => {
        const { loaded } = decision;
        if (decision.replayed) return replayOf(loaded.row, decision.recorded, loaded.before);
        const events = [...decision.events];
        return {
          before: loaded.before,
          state: events.reduce(escrowDecider.evolve, loaded.before),
          events,
          row: rowAfter(
            loaded.row,
            decision.recorded.map((recorded, index) => ({
              event: events[index]!,
              recordedAt: recorded.recordedAt,
              streamVersion: recorded.streamVersion,
            })),
          ),
          settlement: owedBy(escrowId, command, decision),
          replayed: false,
        };
      },
    };
  }
}

function loaded(row: EscrowRow | undefined, earlier: RecordedEvent[]): EscrowLoaded {
  return {
    version: row?.version ?? 0,
    // The pipeline answers a command id found here from its first run.
    history: earlier,
    row,
    before: row ? stateFromRow(row) : escrowDecider.initialState(),
  };
}

/** The command ran before (its reply was lost): answer with what it did then. */
function replayOf(
  row: EscrowRow | undefined,
  earlier: readonly RecordedEvent[],
  before: EscrowState = row ? stateFromRow(row) : escrowDecider.initialState(),
): EscrowDecision {
  return {
    before,
    state: before,
    events: earlier.map((event) => decodeEscrowEvent(event.type, event.data)),
    row,
    settlement: null,
    replayed: true,
  };
}

/** The settlement a decision owes: its events' post or void, or a late hold's compensation. */
function owedBy(
  escrowId: string,
  command: EscrowCommand,
  decision: Pick<Decision<EscrowLoaded, EscrowEvent>, 'loaded' | 'events'>,
): SettlementOrder | null {
  const before = decision.loaded.before;
  if (decision.events.length === 0) return compensation(escrowId, command, before);
  return settlementOf(escrowId, decision.events, decision.events.reduce(escrowDecider.evolve, before));
}

/**
 * A hold that succeeded after its escrow was already recorded as rejected (a late reply
 * racing the recovery sweep) must not stay locked: the outbox voids it.
 */
function compensation(escrowId: string, command: EscrowCommand, before: EscrowState): SettlementOrder | null {
  if (command.kind !== 'record_hold' || command.outcome !== 'held' || before.status !== 'rejected')
    return null;
  return { escrowId, kind: 'void', splits: null };
}

function settlementOf(
  escrowId: string,
  events: readonly EscrowEvent[],
  state: EscrowState,
): SettlementOrder | null {
  const part = milestonePartOf(escrowId, events);
  if (part) {
    if (state.status === 'none') throw new Error('a settlement for an escrow without state');
    return { escrowId, kind: 'post', splits: partSplits(state, part), partId: part.partId };
  }
  for (const event of events) {
    const instruction = ledgerInstructionOf(event);
    if (!instruction) continue;
    if (state.status === 'none') throw new Error('a settlement for an escrow without state');
    if (instruction.kind === 'void') return { escrowId, kind: 'void', splits: null };
    const splits = payoutSplits(state, instruction.payout).map((split) => ({
      ...split,
      amountMicros: split.amountMicros.toString(),
    }));
    return { escrowId, kind: 'post', splits };
  }
  return null;
}

/**
 * The casino splits of a milestone part: each released milestone's payout (worker, house,
 * referrer, evaluator), and the refunded milestones back to the creator as a `refund` split.
 * Splits to the same account for the same reason are added up; the sum is the part's amount.
 */
function partSplits(
  state: Exclude<EscrowState, { status: 'none' }>,
  part: MilestonePart,
): NonNullable<SettlementOrder['splits']> {
  const merged = new Map<string, { to: string; amountMicros: bigint; reason: string }>();
  const add = (to: string, amountMicros: bigint, reason: string) => {
    if (amountMicros <= 0n) return;
    const key = `${reason} ${to}`;
    const existing = merged.get(key);
    if (existing) existing.amountMicros += amountMicros;
    else merged.set(key, { to, amountMicros, reason });
  };
  for (const payout of part.payouts)
    for (const split of payoutSplits(state, payout)) add(split.to, split.amountMicros, split.reason);
  add(state.creatorId, part.refundMicros, 'refund');
  return [...merged.values()].map((split) => ({ ...split, amountMicros: split.amountMicros.toString() }));
}
