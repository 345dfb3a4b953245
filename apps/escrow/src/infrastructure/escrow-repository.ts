import { randomUUID } from 'node:crypto';
import type { QueryRunner } from 'typeorm';
import {
  isVersionConflict,
  nameBasedUuid,
  prepared,
  type EventStore,
  type RecordedEvent,
} from '@pf/event-store';
import { milestonePartOf, type MilestonePart } from '../domain/milestones.js';
import {
  escrowDecider,
  ledgerInstructionOf,
  payoutSplits,
  type EscrowCommand,
  type EscrowEvent,
  type EscrowState,
} from '../domain/escrow.js';
import { decodeEscrowEvent, encodeEscrowEvent, ESCROW_EVENT_SCHEMA_VERSION } from './escrow-codec.js';
import { ESCROW_ROW_COLUMNS, evolveRow, stateFromRow, type EscrowRow } from './escrow-row.js';

/** Version conflicts (two creates with one caller-chosen id) are retried this many times. */
const MAX_CONFLICT_RETRIES = 10;
/** Longest stream an escrow can have: a lifecycle is at most five events. */
const MAX_STREAM_EVENTS = 100;

/** A casino post or void an escrow decision owes; written to the settlement outbox. */
export interface SettlementOrder {
  escrowId: string;
  kind: 'post' | 'void';
  splits: Array<{ to: string; amountMicros: string; reason: string }> | null;
  /**
   * A milestone's part of the hold (docs/adr/0017): posted as a casino partial post under this
   * id, which is also the outbox row's key, so an escrow can owe several parts at once.
   */
  partId?: string;
}

/** The outbox row's key: the escrow id, or a part's id (`<escrow id>:m<n>`, `<escrow id>:deadline`). */
export function settlementKey(order: Pick<SettlementOrder, 'escrowId' | 'partId'>): string {
  return order.partId ?? order.escrowId;
}

/** The order's escrow id and part id back from an outbox key. */
export function fromSettlementKey(key: string): Pick<SettlementOrder, 'escrowId' | 'partId'> {
  const separator = key.indexOf(':');
  return separator < 0 ? { escrowId: key } : { escrowId: key.slice(0, separator), partId: key };
}

export interface Decision {
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
   * The caller writes the settlement itself (`writeSettlements`, one statement for a whole
   * batch) before its transaction commits.
   */
  deferSettlement?: boolean;
}

export function escrowStream(escrowId: string): string {
  return `escrow-${escrowId}`;
}

/**
 * Runs escrow commands: one transaction each, under the escrow row's lock, so that commands on
 * one escrow and the deadline sweeper take turns instead of conflicting. The locked row of the
 * inline projection is the escrow's state (the projection is written in every append's
 * transaction, so it is the fold of the stream): lock and load are one query. Then decide,
 * append with the row's version as the expected version (the projection updates the row and
 * the deadline), and write the settlement outbox row, in the same transaction.
 */
export class EscrowRepository {
  private readonly lockSql: string;
  private readonly replaySql: string;
  private readonly settlementSql: string;

  constructor(
    readonly store: EventStore,
    /** Before this, only the command's own process sends the casino call; then the sweep does. */
    private readonly settlementGraceMs: number,
  ) {
    const schema = store.schema;
    this.lockSql = `SELECT ${ESCROW_ROW_COLUMNS} FROM ${schema}.escrows WHERE escrow_id = $1 FOR UPDATE`;
    this.replaySql = `SELECT type, data FROM ${schema}.events WHERE stream_id = $1 AND metadata->>'commandId' = $2 ORDER BY stream_version`;
    this.settlementSql = `
      INSERT INTO ${schema}.settlements (escrow_id, kind, splits, next_attempt_at)
      SELECT id, kind, splits::jsonb, now() + $4 * interval '1 millisecond'
      FROM unnest($1::text[], $2::text[], $3::text[]) AS s(id, kind, splits)
      ON CONFLICT (escrow_id) DO NOTHING`;
  }

  async execute(escrowId: string, command: EscrowCommand, options: ExecuteOptions = {}): Promise<Decision> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.store.transaction(async (runner) => {
          // A caller-chosen id may race another create: the append's expected version catches it.
          const rows: EscrowRow[] = options.freshId
            ? []
            : await runner.query(prepared(this.lockSql), [escrowId]);
          return this.decideAndAppend(runner, escrowId, rows[0], command, options);
        });
      } catch (error) {
        if (!isVersionConflict(error) || attempt >= MAX_CONFLICT_RETRIES) throw error;
      }
    }
  }

  /** For callers holding the row's lock in their own transaction (the sweeper), with the row. */
  async decideAndAppend(
    runner: QueryRunner,
    escrowId: string,
    row: EscrowRow | undefined,
    command: EscrowCommand,
    options: ExecuteOptions = {},
  ): Promise<Decision> {
    const before = row ? stateFromRow(row) : escrowDecider.initialState();
    if (options.commandId && row) {
      const earlier: Array<{ type: string; data: Record<string, unknown> }> = await runner.query(
        this.replaySql,
        [escrowStream(escrowId), options.commandId],
      );
      if (earlier.length > 0) {
        // The command ran before (its reply was lost): answer with what it did then.
        return {
          before,
          state: before,
          events: earlier.map((event) => decodeEscrowEvent(event.type, event.data)),
          row,
          settlement: null,
          replayed: true,
        };
      }
    }
    const events = escrowDecider.decide(command, before);
    const state = events.reduce(escrowDecider.evolve, before);
    if (events.length === 0) {
      const settlement = await this.compensation(runner, escrowId, command, before);
      return { before, state, events, row, settlement, replayed: false };
    }
    const streamId = escrowStream(escrowId);
    const appended = await this.store.appendInTransaction(
      runner,
      streamId,
      row?.version ?? 0,
      events.map((event, index) => ({
        eventId: options.commandId
          ? nameBasedUuid(`${options.commandId}/${streamId}/${index}`)
          : randomUUID(),
        ...encodeEscrowEvent(event),
        metadata: {
          service: 'escrow',
          schemaVersion: ESCROW_EVENT_SCHEMA_VERSION,
          ...(options.commandId ? { commandId: options.commandId } : {}),
          ...(options.correlationId ? { correlationId: options.correlationId } : {}),
        },
      })),
    );
    const rowAfter = events.reduce<EscrowRow | undefined>((current, event, index) => {
      const recorded = appended.events[index]!;
      return evolveRow(current, event, recorded.recordedAt, recorded.streamVersion);
    }, row);
    const settlement = settlementOf(escrowId, events, state);
    if (settlement && !options.deferSettlement) await this.writeSettlements(runner, [settlement]);
    return { before, state, events, row: rowAfter, settlement, replayed: false };
  }

  /** The escrow's whole stream (for the participants' history). */
  readStream(escrowId: string): Promise<RecordedEvent[]> {
    return this.store.readStream(escrowStream(escrowId), { maxCount: MAX_STREAM_EVENTS });
  }

  /**
   * A hold that succeeded after its escrow was already recorded as rejected (a late reply
   * racing the recovery sweep) must not stay locked: the outbox voids it.
   */
  private async compensation(
    runner: QueryRunner,
    escrowId: string,
    command: EscrowCommand,
    before: EscrowState,
  ): Promise<SettlementOrder | null> {
    if (command.kind !== 'record_hold' || command.outcome !== 'held' || before.status !== 'rejected')
      return null;
    const settlement: SettlementOrder = { escrowId, kind: 'void', splits: null };
    await this.writeSettlements(runner, [settlement]);
    return settlement;
  }

  /** Writes settlement outbox rows, in the caller's transaction, in one statement. */
  async writeSettlements(runner: QueryRunner, settlements: readonly SettlementOrder[]): Promise<void> {
    if (settlements.length === 0) return;
    await runner.query(prepared(this.settlementSql), [
      settlements.map(settlementKey),
      settlements.map((settlement) => settlement.kind),
      settlements.map((settlement) => (settlement.splits ? JSON.stringify(settlement.splits) : null)),
      this.settlementGraceMs,
    ]);
  }
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
