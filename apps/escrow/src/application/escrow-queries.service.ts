import { Inject, Injectable } from '@nestjs/common';
import {
  DomainError,
  ErrorCode,
  ESCROW_ID_PATTERN,
  type EscrowHistoryItem,
  type EscrowListReply,
  type EscrowPayoutView,
  type EscrowStatsReply,
  type EscrowStatus,
  type EscrowView,
  type ListEscrowsCommand,
} from '@pf/contracts';
import type { EventStore, RecordedEvent } from '@pf/event-store';
import { CONFIG } from '@pf/platform';
import { actorOf, promisedCommission } from '../domain/escrow.js';
import { decodeEscrowEvent, ESCROW_EVENT_TYPES } from '../infrastructure/escrow-codec.js';
import { EscrowRepository } from '../infrastructure/escrow-repository.js';
import type { EscrowConfig } from '../config.js';
import { ESCROW_EVENT_STORE, ESCROW_REPOSITORY } from './tokens.js';

interface EscrowRow {
  escrow_id: string;
  status: EscrowStatus;
  creator_id: string;
  counterparty_id: string;
  amount_micros: string;
  commission_bps: number;
  description: string;
  result_summary: string | null;
  dispute_reason: string | null;
  timeout_ms: string;
  created_at: Date;
  auto_release_at: Date | null;
  completed_at: Date | null;
  released_at: Date | null;
  refunded_at: Date | null;
  disputed_at: Date | null;
  resolved_at: Date | null;
  payout: EscrowPayoutView | null;
}

const COLUMNS = `escrow_id, status, creator_id, counterparty_id, amount_micros, commission_bps, description, result_summary, dispute_reason,
  timeout_ms, created_at, auto_release_at, completed_at, released_at, refunded_at, disputed_at, resolved_at, payout`;

/** The read side: escrows from the inline projection (consistent as soon as a command replies). */
@Injectable()
export class EscrowQueriesService {
  constructor(
    @Inject(ESCROW_EVENT_STORE) private readonly store: EventStore,
    @Inject(ESCROW_REPOSITORY) private readonly repository: EscrowRepository,
    @Inject(CONFIG) private readonly config: EscrowConfig,
  ) {}

  /** The escrow; with its history when the viewer is a party. Rejected escrows never existed. */
  async get(escrowId: string, viewerId?: string): Promise<EscrowView> {
    const row = await this.row(escrowId);
    if (!row || row.status === 'rejected') throw new DomainError(ErrorCode.notFound, 'no such escrow');
    const view = toView(row);
    if (viewerId !== undefined && (viewerId === row.creator_id || viewerId === row.counterparty_id)) {
      view.events = historyOf(await this.repository.readStream(undefined, escrowId));
    }
    return view;
  }

  /** After a command: the row as the command left it, with its history. */
  async afterCommand(escrowId: string, history: readonly RecordedEvent[]): Promise<EscrowView> {
    const row = await this.row(escrowId);
    if (!row) throw new Error(`escrow ${escrowId} has no read-model row after a command`);
    return { ...toView(row), events: historyOf(history) };
  }

  async list(command: Required<ListEscrowsCommand>): Promise<EscrowListReply> {
    const party = command.role === 'creator' ? 'creator_id' : 'counterparty_id';
    const rows: EscrowRow[] = await this.store.dataSource.query(
      `SELECT ${COLUMNS} FROM ${this.store.schema}.escrows
       WHERE ${party} = $1 AND ($2::text = 'all' AND status <> 'rejected' OR status = $2)
       ORDER BY created_at DESC LIMIT $3`,
      [command.agentId, command.status, command.limit],
    );
    return { escrows: rows.map(toView) };
  }

  /**
   * Totals over every escrow that was funded. An aggregate query rather than a counter row:
   * a counter every command updates would serialize all escrow commands on one row lock.
   */
  async stats(): Promise<EscrowStatsReply> {
    const rows: Array<Record<string, string>> = await this.store.dataSource.query(
      `SELECT count(*) AS created,
         count(*) FILTER (WHERE status = 'released') AS released,
         count(*) FILTER (WHERE status = 'refunded') AS refunded,
         count(*) FILTER (WHERE disputed_at IS NOT NULL) AS disputed,
         count(*) FILTER (WHERE status = 'split') AS split,
         coalesce(sum(amount_micros), 0)::text AS volume,
         coalesce(sum(commission_taken_micros), 0)::text AS commission
       FROM ${this.store.schema}.escrows WHERE status NOT IN ('opened', 'rejected')`,
    );
    const row = rows[0]!;
    return {
      totalCreated: Number(row.created),
      totalReleased: Number(row.released),
      totalRefunded: Number(row.refunded),
      totalDisputed: Number(row.disputed),
      totalSplit: Number(row.split),
      totalVolumeMicros: row.volume!,
      totalCommissionMicros: row.commission!,
      commissionBps: this.config.ESCROW_COMMISSION_BPS,
    };
  }

  private async row(escrowId: string): Promise<EscrowRow | undefined> {
    if (!ESCROW_ID_PATTERN.test(escrowId)) return undefined;
    const rows: EscrowRow[] = await this.store.dataSource.query(`SELECT ${COLUMNS} FROM ${this.store.schema}.escrows WHERE escrow_id = $1`, [escrowId]);
    return rows[0];
  }
}

function toView(row: EscrowRow): EscrowView {
  const amountMicros = BigInt(row.amount_micros);
  const commissionMicros = promisedCommission(amountMicros, row.commission_bps);
  return {
    escrowId: row.escrow_id,
    status: row.status,
    creatorId: row.creator_id,
    counterpartyId: row.counterparty_id,
    amountMicros: row.amount_micros,
    commissionBps: row.commission_bps,
    commissionMicros: commissionMicros.toString(),
    netToCounterpartyMicros: (amountMicros - commissionMicros).toString(),
    description: row.description,
    resultSummary: row.result_summary,
    disputeReason: row.dispute_reason,
    timeoutMs: Number(row.timeout_ms),
    createdAt: row.created_at.toISOString(),
    autoReleaseAt: iso(row.auto_release_at),
    completedAt: iso(row.completed_at),
    releasedAt: iso(row.released_at),
    refundedAt: iso(row.refunded_at),
    disputedAt: iso(row.disputed_at),
    resolvedAt: iso(row.resolved_at),
    payout: row.payout,
  };
}

function historyOf(history: readonly RecordedEvent[]): EscrowHistoryItem[] {
  return history
    .filter((event) => ESCROW_EVENT_TYPES.has(event.type))
    .map((event) => ({ type: event.type, at: event.recordedAt.toISOString(), actor: actorOf(decodeEscrowEvent(event.type, event.data)) }));
}

function iso(value: Date | null): string | null {
  return value ? value.toISOString() : null;
}
