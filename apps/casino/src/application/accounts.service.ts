import { Inject, Injectable } from '@nestjs/common';
import {
  casinoErrors,
  DomainError,
  type AccountBalanceView,
  type AccountsListReply,
  type AccountView,
  type ActivityView,
  type LedgerPage,
  type ReferralStatsView,
} from '@pf/contracts';
import type { EventStore } from '@pf/event-store';
import type { AccountRow } from '../infrastructure/ledger-projection.js';
import { SystemAccount } from '../domain/accounts.js';
import { CASINO_EVENT_STORE } from './tokens.js';

/** System accounts without a balance row: their balance is the sum of their ledger entries. */
const ENTRY_BALANCE_ACCOUNTS: readonly string[] = [
  SystemAccount.world,
  SystemAccount.houseRevenue,
  SystemAccount.escrowHolding,
];

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

  /**
   * Operators' overview: the system accounts, the `limit` largest agent accounts (available +
   * held) and, over every account, the books' sum and the agents' held total. One statement, so
   * every figure comes from one snapshot (the projection is written with the log, so the sum is
   * exactly zero in any snapshot). World, house revenue and escrow holding have no balance row
   * (ledger-projection.ts): their balance is the sum of their entries.
   */
  async listAccounts(limit: number): Promise<AccountsListReply> {
    const schema = this.store.schema;
    const rows: Array<{
      account_id: string | null;
      available_micros: string;
      held_micros: string;
      is_agent: boolean;
      agent_count: string;
      sum_micros: string;
      held_sum_micros: string;
    }> = await this.store.dataSource.query(
      `WITH collectors AS (
         SELECT c.account_id,
                coalesce((SELECT sum(e.amount_micros) FROM ${schema}.ledger_entries e WHERE e.account_id = c.account_id), 0)::bigint AS available_micros,
                0::bigint AS held_micros,
                false AS is_agent
         FROM unnest($2::text[]) AS c(account_id)
       ), stored AS (
         SELECT account_id, available_micros, held_micros, account_id LIKE 'ag\\_%' AS is_agent
         FROM ${schema}.accounts
       ), totals AS (
         SELECT (SELECT count(*) FROM stored WHERE is_agent)::text AS agent_count,
                ((SELECT coalesce(sum(available_micros), 0) FROM stored)
                  + (SELECT coalesce(sum(available_micros), 0) FROM collectors))::text AS sum_micros,
                (SELECT coalesce(sum(held_micros), 0) FROM stored WHERE is_agent)::text AS held_sum_micros
       ), shown AS (
         SELECT * FROM collectors
         UNION ALL
         SELECT * FROM stored WHERE NOT is_agent
         UNION ALL
         (SELECT * FROM stored WHERE is_agent ORDER BY available_micros + held_micros DESC, account_id LIMIT $1)
       )
       SELECT shown.account_id, shown.available_micros::text AS available_micros,
              shown.held_micros::text AS held_micros, shown.is_agent,
              totals.agent_count, totals.sum_micros, totals.held_sum_micros
       FROM totals LEFT JOIN shown ON true`,
      [limit, ENTRY_BALANCE_ACCOUNTS],
    );
    const totals = rows[0];
    const accounts: AccountBalanceView[] = rows
      .filter((row): row is typeof row & { account_id: string } => row.account_id !== null)
      .map((row) => ({
        account: row.account_id,
        kind: row.is_agent ? 'agent' : 'system',
        availableMicros: row.available_micros,
        heldMicros: row.held_micros,
      }));
    return {
      accounts,
      agentCount: Number(totals?.agent_count ?? 0),
      sumMicros: totals?.sum_micros ?? '0',
      heldMicros: totals?.held_sum_micros ?? '0',
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
