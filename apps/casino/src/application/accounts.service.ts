import { Inject, Injectable } from '@nestjs/common';
import {
  casinoErrors,
  DomainError,
  type AccountView,
  type ActivityView,
  type LedgerPage,
  type ReferralStatsView,
} from '@pf/contracts';
import type { EventStore } from '@pf/event-store';
import type { AccountRow } from '../infrastructure/ledger-projection.js';
import { CASINO_EVENT_STORE } from './tokens.js';

interface EntryRow {
  entry_id: string;
  type: string;
  amount_micros: string;
  held_delta_micros: string;
  balance_after_micros: string | null;
  reason: string;
  service: string;
  operation_id: string;
  counterparty: string | null;
  at: Date;
}

/** Read side of the ledger: balances and entries, straight from the inline projection. */
@Injectable()
export class AccountsService {
  constructor(@Inject(CASINO_EVENT_STORE) private readonly store: EventStore) {}

  async account(agentId: string, recentLimit: number): Promise<AccountView> {
    const rows: AccountRow[] = await this.store.dataSource.query(
      `SELECT * FROM ${this.store.schema}.accounts WHERE account_id = $1`,
      [agentId],
    );
    const row = rows[0];
    if (!row) throw new DomainError(casinoErrors.agentNotFound, `no agent ${agentId}`);
    const recent = recentLimit > 0 ? await this.entries(agentId, recentLimit) : [];
    return {
      agentId,
      availableMicros: row.available_micros,
      heldMicros: row.held_micros,
      lifetime: {
        depositedMicros: row.deposited_micros,
        withdrawnMicros: row.withdrawn_micros,
        escrowedMicros: row.escrowed_micros,
        earnedMicros: row.earned_micros,
        feesMicros: row.fees_micros,
      },
      recentActivity: recent.map(toActivity),
    };
  }

  /** Newest first; the cursor is the last entry id of the previous page (keyset paging). */
  async ledger(agentId: string, limit: number, cursor?: string): Promise<LedgerPage> {
    await this.requireAgent(agentId);
    const rows = await this.entries(agentId, limit + 1, cursor);
    const page = rows.slice(0, limit);
    return { entries: page.map(toActivity), nextCursor: rows.length > limit ? page.at(-1)!.entry_id : null };
  }

  async referralStats(agentId: string): Promise<ReferralStatsView> {
    const rows: Array<{ referral_code: string; referred: string; earned: string }> =
      await this.store.dataSource.query(
        `SELECT a.referral_code,
              (SELECT count(*) FROM ${this.store.schema}.agents r WHERE r.referred_by = a.agent_id) AS referred,
              acc.referral_earned_micros AS earned
       FROM ${this.store.schema}.agents a JOIN ${this.store.schema}.accounts acc ON acc.account_id = a.agent_id
       WHERE a.agent_id = $1`,
        [agentId],
      );
    const row = rows[0];
    if (!row) throw new DomainError(casinoErrors.agentNotFound, `no agent ${agentId}`);
    return {
      agentId,
      referralCode: row.referral_code,
      referredAgents: Number(row.referred),
      commissionEarnedMicros: row.earned,
    };
  }

  async availableMicros(account: string): Promise<string> {
    const rows: Array<{ available_micros: string }> = await this.store.dataSource.query(
      `SELECT available_micros FROM ${this.store.schema}.accounts WHERE account_id = $1`,
      [account],
    );
    if (!rows[0]) throw new DomainError(casinoErrors.accountNotFound, `no account ${account}`);
    return rows[0].available_micros;
  }

  private async requireAgent(agentId: string): Promise<void> {
    const rows: unknown[] = await this.store.dataSource.query(
      `SELECT 1 FROM ${this.store.schema}.agents WHERE agent_id = $1`,
      [agentId],
    );
    if (rows.length === 0) throw new DomainError(casinoErrors.agentNotFound, `no agent ${agentId}`);
  }

  private entries(agentId: string, limit: number, beforeEntryId?: string): Promise<EntryRow[]> {
    return this.store.dataSource.query(
      `SELECT entry_id::text, type, amount_micros, held_delta_micros, balance_after_micros, reason, service, operation_id, counterparty, at
       FROM ${this.store.schema}.ledger_entries
       WHERE account_id = $1 AND ($2::bigint IS NULL OR entry_id < $2::bigint)
       ORDER BY entry_id DESC LIMIT $3`,
      [agentId, beforeEntryId ?? null, limit],
    );
  }
}

function toActivity(row: EntryRow): ActivityView {
  return {
    type: row.type,
    amountMicros: row.amount_micros,
    balanceAfterMicros: row.balance_after_micros ?? '0',
    reason: row.reason,
    service: row.service,
    operationId: row.operation_id,
    counterparty: row.counterparty,
    at: row.at.toISOString(),
  };
}
