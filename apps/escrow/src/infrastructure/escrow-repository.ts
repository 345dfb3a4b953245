import { randomUUID } from 'node:crypto';
import type { QueryRunner } from 'typeorm';
import { fold, isVersionConflict, nameBasedUuid, type EventStore, type RecordedEvent } from '@pf/event-store';
import {
  escrowDecider,
  ledgerInstructionOf,
  payoutSplits,
  type EscrowCommand,
  type EscrowEvent,
  type EscrowState,
} from '../domain/escrow.js';
import { decodeEscrowEvent, encodeEscrowEvent, ESCROW_EVENT_SCHEMA_VERSION } from './escrow-codec.js';

/** Version conflicts (two creates with one caller-chosen id) are retried this many times. */
const MAX_CONFLICT_RETRIES = 10;
/** Longest stream an escrow can have: a lifecycle is at most five events. */
const MAX_STREAM_EVENTS = 100;

/** A casino post or void an escrow decision owes; written to the settlement outbox. */
export interface SettlementOrder {
  escrowId: string;
  kind: 'post' | 'void';
  splits: Array<{ to: string; amountMicros: string; reason: string }> | null;
}

export interface Decision {
  before: EscrowState;
  state: EscrowState;
  /** The events this command produced, or the earlier ones when it was a replay. */
  events: EscrowEvent[];
  /** The whole stream after the command, as recorded (for histories and timestamps). */
  history: RecordedEvent[];
  settlement: SettlementOrder | null;
  /** The same command id ran before: nothing new was decided. */
  replayed: boolean;
}

export interface ExecuteOptions {
  commandId?: string;
  correlationId?: string;
}

export function escrowStream(escrowId: string): string {
  return `escrow-${escrowId}`;
}

/**
 * Runs escrow commands: one transaction each, under the escrow row's lock, so that commands on
 * one escrow and the deadline sweeper take turns instead of conflicting. Decide, append with
 * the expected version (the inline projection updates the row and the deadline), and write the
 * settlement outbox row, all in the same transaction.
 */
export class EscrowRepository {
  private readonly lockSql: string;
  private readonly settlementSql: string;

  constructor(
    readonly store: EventStore,
    /** Before this, only the command's own process sends the casino call; then the sweep does. */
    private readonly settlementGraceMs: number,
  ) {
    this.lockSql = `SELECT 1 FROM ${store.schema}.escrows WHERE escrow_id = $1 FOR UPDATE`;
    this.settlementSql = `
      INSERT INTO ${store.schema}.settlements (escrow_id, kind, splits, next_attempt_at)
      VALUES ($1, $2, $3, now() + $4 * interval '1 millisecond')
      ON CONFLICT (escrow_id) DO NOTHING`;
  }

  async execute(escrowId: string, command: EscrowCommand, options: ExecuteOptions = {}): Promise<Decision> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.store.transaction(async (runner) => {
          // An escrow that was never opened has no row: nothing to lock, and `open` races are
          // caught by the append's expected version instead.
          if (command.kind !== 'open') await runner.query(this.lockSql, [escrowId]);
          const history = await this.readStream(runner, escrowId);
          return this.decideAndAppend(runner, escrowId, history, command, options);
        });
      } catch (error) {
        if (!isVersionConflict(error) || attempt >= MAX_CONFLICT_RETRIES) throw error;
      }
    }
  }

  /**
   * For callers that already hold the row locks in their own transaction (the sweeper), with
   * the stream they read in it.
   */
  async decideAndAppend(
    runner: QueryRunner,
    escrowId: string,
    history: RecordedEvent[],
    command: EscrowCommand,
    options: ExecuteOptions = {},
  ): Promise<Decision> {
    const past = history.map(decode);
    const before = fold(escrowDecider, past);
    const earlier = options.commandId ? history.filter((event) => event.metadata.commandId === options.commandId) : [];
    if (earlier.length > 0) {
      return { before, state: before, events: earlier.map(decode), history, settlement: null, replayed: true };
    }
    const events = escrowDecider.decide(command, before);
    const state = events.reduce(escrowDecider.evolve, before);
    if (events.length === 0) {
      const settlement = await this.compensation(runner, escrowId, command, before);
      return { before, state, events, history, settlement, replayed: false };
    }
    const streamId = escrowStream(escrowId);
    const appended = await this.store.appendInTransaction(
      runner,
      streamId,
      history.length,
      events.map((event, index) => ({
        eventId: options.commandId ? nameBasedUuid(`${options.commandId}/${streamId}/${index}`) : randomUUID(),
        ...encodeEscrowEvent(event),
        metadata: {
          service: 'escrow',
          schemaVersion: ESCROW_EVENT_SCHEMA_VERSION,
          ...(options.commandId ? { commandId: options.commandId } : {}),
          ...(options.correlationId ? { correlationId: options.correlationId } : {}),
        },
      })),
    );
    const settlement = settlementOf(escrowId, events, state);
    if (settlement) await this.writeSettlement(runner, settlement);
    return { before, state, events, history: [...history, ...appended.events], settlement, replayed: false };
  }

  readStream(runner: QueryRunner | undefined, escrowId: string): Promise<RecordedEvent[]> {
    return this.store.readStream(escrowStream(escrowId), { runner, maxCount: MAX_STREAM_EVENTS });
  }

  /** Streams of several escrows in one query, each in version order. */
  async readStreams(runner: QueryRunner, escrowIds: readonly string[]): Promise<Map<string, RecordedEvent[]>> {
    const rows: Array<{
      global_position: string;
      transaction_id: string;
      stream_id: string;
      stream_version: number;
      event_id: string;
      type: string;
      data: Record<string, unknown>;
      metadata: Record<string, unknown>;
      recorded_at: Date;
    }> = await runner.query(
      `SELECT global_position::text AS global_position, transaction_id::text AS transaction_id, stream_id, stream_version,
         event_id::text AS event_id, type, data, metadata, recorded_at
       FROM ${this.store.schema}.events WHERE stream_id = ANY($1::text[]) ORDER BY stream_id, stream_version`,
      [escrowIds.map(escrowStream)],
    );
    const streams = new Map<string, RecordedEvent[]>(escrowIds.map((id) => [id, []]));
    for (const row of rows) {
      streams.get(row.stream_id.slice('escrow-'.length))?.push({
        globalPosition: Number(row.global_position),
        transactionId: row.transaction_id,
        streamId: row.stream_id,
        streamVersion: row.stream_version,
        eventId: row.event_id,
        type: row.type,
        data: row.data,
        metadata: row.metadata,
        recordedAt: row.recorded_at,
      });
    }
    return streams;
  }

  /**
   * A hold that succeeded after its escrow was already recorded as rejected (a late reply
   * racing the recovery sweep) must not stay locked: the outbox voids it.
   */
  private async compensation(runner: QueryRunner, escrowId: string, command: EscrowCommand, before: EscrowState): Promise<SettlementOrder | null> {
    if (command.kind !== 'record_hold' || command.outcome !== 'held' || before.status !== 'rejected') return null;
    const settlement: SettlementOrder = { escrowId, kind: 'void', splits: null };
    await this.writeSettlement(runner, settlement);
    return settlement;
  }

  private async writeSettlement(runner: QueryRunner, settlement: SettlementOrder): Promise<void> {
    await runner.query(this.settlementSql, [settlement.escrowId, settlement.kind, settlement.splits ? JSON.stringify(settlement.splits) : null, this.settlementGraceMs]);
  }
}

function decode(event: RecordedEvent): EscrowEvent {
  return decodeEscrowEvent(event.type, event.data);
}

function settlementOf(escrowId: string, events: readonly EscrowEvent[], state: EscrowState): SettlementOrder | null {
  for (const event of events) {
    const instruction = ledgerInstructionOf(event);
    if (!instruction) continue;
    if (state.status === 'none') throw new Error('a settlement for an escrow without state');
    if (instruction.kind === 'void') return { escrowId, kind: 'void', splits: null };
    const splits = payoutSplits(state, instruction.payout).map((split) => ({ ...split, amountMicros: split.amountMicros.toString() }));
    return { escrowId, kind: 'post', splits };
  }
  return null;
}
