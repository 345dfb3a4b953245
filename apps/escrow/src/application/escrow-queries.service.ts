import { Inject, Injectable } from '@nestjs/common';
import {
  DomainError,
  ErrorCode,
  ESCROW_ID_PATTERN,
  type EscrowHistoryItem,
  type DeadlinesReply,
  type EscrowListReply,
  type EscrowStatsReply,
  type StatsHistoryCommand,
  type StatsHistoryReply,
  type EscrowView,
  type ListEscrowsCommand,
} from '@pf/contracts';
import type { EventStore, RecordedEvent } from '@pf/event-store';
import { CONFIG } from '@pf/platform';
import { actorOf } from '../domain/escrow.js';
import { decodeEscrowEvent, ESCROW_EVENT_TYPES } from '../infrastructure/escrow-codec.js';
import { EscrowRepository } from '../infrastructure/escrow-repository.js';
import { ESCROW_ROW_COLUMNS, rowToView, type EscrowRow } from '../infrastructure/escrow-row.js';
import type { EscrowConfig } from '../config.js';
import { ESCROW_EVENT_STORE, ESCROW_REPOSITORY } from './tokens.js';

const PARTY_COLUMNS = {
  creator: 'creator_id',
  counterparty: 'counterparty_id',
  evaluator: 'evaluator_id',
} as const;
/** Every status an escrow the API knows can be in: each is counted in stats, zeros included. */
const STATUSES_COUNTED = ['funded', 'completed', 'disputed', 'released', 'refunded', 'split'] as const;

/** The read side: escrows from the inline projection (consistent as soon as a command replies). */
@Injectable()
export class EscrowQueriesService {
  constructor(
    @Inject(ESCROW_EVENT_STORE) private readonly store: EventStore,
    @Inject(ESCROW_REPOSITORY) private readonly repository: EscrowRepository,
    @Inject(CONFIG) private readonly config: EscrowConfig,
  ) {}

  /**
   * The escrow; with its history when the viewer is a party or its evaluator (who judges the
   * deliverable). Rejected escrows never existed.
   */
  async get(escrowId: string, viewerId?: string): Promise<EscrowView> {
    const row = await this.row(escrowId);
    if (!row || row.status === 'rejected') throw new DomainError(ErrorCode.notFound, 'no such escrow');
    const view = rowToView(row);
    const involved = [row.creator_id, row.counterparty_id, row.evaluator_id];
    if (viewerId !== undefined && involved.includes(viewerId)) {
      view.events = historyOf(await this.repository.readStream(escrowId));
    }
    return view;
  }

  async list(command: Required<ListEscrowsCommand>): Promise<EscrowListReply> {
    const party = PARTY_COLUMNS[command.role ?? 'counterparty'];
    const rows: EscrowRow[] = await this.store.dataSource.query(
      `SELECT ${ESCROW_ROW_COLUMNS} FROM ${this.store.schema}.escrows
       WHERE ${party} = $1 AND ($2::text = 'all' AND status <> 'rejected' OR status = $2)
       ORDER BY created_at DESC LIMIT $3`,
      [command.agentId, command.status, command.limit],
    );
    return { escrows: rows.map(rowToView) };
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
    const statusRows: Array<{ status: string; count: string }> = await this.store.dataSource.query(
      `SELECT status, count(*)::text AS count FROM ${this.store.schema}.escrows
       WHERE status NOT IN ('opened', 'rejected') GROUP BY status`,
    );
    return {
      byStatus: {
        ...Object.fromEntries(STATUSES_COUNTED.map((status) => [status, 0])),
        ...Object.fromEntries(statusRows.map((status) => [status.status, Number(status.count)])),
      },
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

  /**
   * Released volume and commission per UTC hour or day, the last `limit` buckets up to the
   * current one. An escrow counts in the bucket of its `released_at` (a release, an auto-release,
   * or a resolution that paid the counterparty, split included): the moment the commission was
   * taken. generate_series makes every bucket a row, so quiet hours are zeros and a chart's time
   * axis has no holes. The series is built in `timestamp` at UTC so a day is always 24 hours,
   * whatever the session's time zone.
   */
  async statsHistory(command: StatsHistoryCommand): Promise<StatsHistoryReply> {
    const step = command.bucket === 'hour' ? '1 hour' : '24 hours';
    const rows: Array<{ start: Date; released: string; volume: string; commission: string }> =
      await this.store.dataSource.query(
        `WITH buckets AS (
           SELECT slot AT TIME ZONE 'UTC' AS start, (slot + $3::interval) AT TIME ZONE 'UTC' AS stop
           FROM generate_series(
             date_trunc($1, now() AT TIME ZONE 'UTC') - ($2::int - 1) * $3::interval,
             date_trunc($1, now() AT TIME ZONE 'UTC'),
             $3::interval
           ) AS slot
         )
         SELECT b.start,
                count(e.escrow_id)::text AS released,
                coalesce(sum(e.amount_micros), 0)::text AS volume,
                coalesce(sum(e.commission_taken_micros), 0)::text AS commission
         FROM buckets b
         LEFT JOIN ${this.store.schema}.escrows e ON e.released_at >= b.start AND e.released_at < b.stop
         GROUP BY b.start ORDER BY b.start`,
        [command.bucket, command.limit, step],
      );
    return {
      bucket: command.bucket,
      buckets: rows.map((row) => ({
        start: row.start.toISOString(),
        releasedCount: Number(row.released),
        volumeMicros: row.volume,
        commissionMicros: row.commission,
      })),
    };
  }

  /**
   * The timeout saga seen from outside: how many deadlines are due and not yet handled, how late
   * the oldest is (by the database's clock, the saga's), and the next ones. One statement, one
   * snapshot.
   */
  async deadlines(limit: number): Promise<DeadlinesReply> {
    const schema = this.store.schema;
    const rows: Array<{
      now: Date;
      overdue: string;
      pending: string;
      lag_ms: string | null;
      escrow_id: string | null;
      due_at: Date | null;
      status: string | null;
      amount_micros: string | null;
    }> = await this.store.dataSource.query(
      `WITH totals AS (
         SELECT now() AS now,
                count(*) FILTER (WHERE due_at <= now())::text AS overdue,
                count(*)::text AS pending,
                floor(extract(epoch FROM now() - min(due_at) FILTER (WHERE due_at <= now())) * 1000)::text AS lag_ms
         FROM ${schema}.deadlines
       ), upcoming AS (
         SELECT d.escrow_id, d.due_at, e.status, e.amount_micros::text AS amount_micros
         FROM ${schema}.deadlines d JOIN ${schema}.escrows e USING (escrow_id)
         ORDER BY d.due_at, d.escrow_id LIMIT $1
       )
       SELECT totals.*, upcoming.* FROM totals LEFT JOIN upcoming ON true ORDER BY upcoming.due_at, upcoming.escrow_id`,
      [limit],
    );
    const totals = rows[0]!;
    return {
      now: totals.now.toISOString(),
      overdueCount: Number(totals.overdue),
      pendingCount: Number(totals.pending),
      lagMs: Number(totals.lag_ms ?? 0),
      next: rows
        .filter((row) => row.escrow_id !== null)
        .map((row) => ({
          escrowId: row.escrow_id!,
          dueAt: row.due_at!.toISOString(),
          status: row.status!,
          amountMicros: row.amount_micros!,
        })),
    };
  }

  private async row(escrowId: string): Promise<EscrowRow | undefined> {
    if (!ESCROW_ID_PATTERN.test(escrowId)) return undefined;
    const rows: EscrowRow[] = await this.store.dataSource.query(
      `SELECT ${ESCROW_ROW_COLUMNS} FROM ${this.store.schema}.escrows WHERE escrow_id = $1`,
      [escrowId],
    );
    return rows[0];
  }
}

function historyOf(history: readonly RecordedEvent[]): EscrowHistoryItem[] {
  return history
    .filter((event) => ESCROW_EVENT_TYPES.has(event.type))
    .map((event) => {
      const decoded = decodeEscrowEvent(event.type, event.data);
      return {
        type: event.type,
        at: event.recordedAt.toISOString(),
        actor: actorOf(decoded),
        // What was handed over, and why the evaluator sent it back: each completion and
        // rejection keeps its own, so the history proves what was delivered when.
        ...((decoded.type === 'completed' || decoded.type === 'milestone_completed') && decoded.deliverable
          ? { deliverable: decoded.deliverable }
          : {}),
        ...(decoded.type === 'evaluation_rejected' || decoded.type === 'evaluator_refunded'
          ? { reason: decoded.reason }
          : {}),
      };
    });
}
