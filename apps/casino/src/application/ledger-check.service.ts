import { Inject, Injectable } from '@nestjs/common';
import type { QueryRunner } from 'typeorm';
import type { LedgerCheckReport } from '@pf/contracts';
import type { EventStore } from '@pf/event-store';
import { isAgentAccount, isMaterialized, mayGoNegative, SystemAccount } from '../domain/accounts.js';
import { postingsOf, type LedgerEvent } from '../domain/ledger.js';
import { decodeLedgerEvent, LEDGER_EVENT_TYPES } from '../infrastructure/ledger-codec.js';
import { CASINO_EVENT_STORE } from './tokens.js';

const BATCH_SIZE = 5_000;
/** Violations listed in one report; the count says how many more there were. */
const MAX_VIOLATIONS_LISTED = 100;

type Violation = LedgerCheckReport['violations'][number];

interface Balance {
  availableMicros: bigint;
  heldMicros: bigint;
}

/**
 * Recomputes every balance from the log and checks it against the projection, in one
 * REPEATABLE READ snapshot (log and projection seen at the same instant, even under load):
 * each event's postings sum to zero, all accounts sum to zero, no account that may not go
 * negative does, balance rows and entry sums equal the log's, and the escrow holding account
 * equals the live holds.
 */
@Injectable()
export class LedgerCheckService {
  constructor(@Inject(CASINO_EVENT_STORE) private readonly store: EventStore) {}

  async check(): Promise<LedgerCheckReport> {
    const runner = this.store.dataSource.createQueryRunner();
    try {
      await runner.startTransaction('REPEATABLE READ');
      try {
        return await this.checkInSnapshot(runner);
      } finally {
        await runner.rollbackTransaction();
      }
    } finally {
      await runner.release();
    }
  }

  private async checkInSnapshot(runner: QueryRunner): Promise<LedgerCheckReport> {
    const violations: Violation[] = [];
    const report = (violation: Violation) => violations.push(violation);
    const { balances, liveHolds, eventsChecked } = await this.replay(runner, report);

    const total = [...balances.values()].reduce((sum, balance) => sum + balance.availableMicros, 0n);
    if (total !== 0n)
      report({
        kind: 'books_unbalanced',
        actual: total.toString(),
        expected: '0',
        detail: 'the sum of all accounts is not zero',
      });
    for (const [account, balance] of balances) {
      if (mayGoNegative(account) || account === SystemAccount.escrowHolding) continue;
      if (balance.availableMicros < 0n || balance.heldMicros < 0n)
        report({
          kind: 'negative_balance',
          account,
          actual: balance.availableMicros.toString(),
          detail: 'balance below zero',
        });
    }
    const liveHeld = [...liveHolds.values()].reduce((sum, amount) => sum + amount, 0n);
    const holding = balances.get(SystemAccount.escrowHolding)?.availableMicros ?? 0n;
    if (holding !== liveHeld)
      report({
        kind: 'holding_mismatch',
        account: SystemAccount.escrowHolding,
        expected: liveHeld.toString(),
        actual: holding.toString(),
        detail: 'escrow holding differs from the live holds',
      });

    await this.compareProjection(runner, balances, report);
    return {
      ok: violations.length === 0,
      eventsChecked,
      accountsChecked: balances.size,
      totalMicros: total.toString(),
      violations: violations.slice(0, MAX_VIOLATIONS_LISTED),
    };
  }

  private async replay(runner: QueryRunner, report: (violation: Violation) => void) {
    const balances = new Map<string, Balance>();
    const liveHolds = new Map<string, bigint>();
    let afterPosition = '0';
    let eventsChecked = 0;
    for (;;) {
      // Alias the text form: ORDER BY an output column named global_position would sort text.
      const rows: Array<{ position: string; type: string; data: Record<string, unknown> }> =
        await runner.query(
          `SELECT global_position::text AS position, type, data FROM ${this.store.schema}.events
         WHERE global_position > $1::bigint ORDER BY events.global_position LIMIT ${BATCH_SIZE}`,
          [afterPosition],
        );
      if (rows.length === 0) break;
      for (const row of rows) {
        eventsChecked += 1;
        if (row.type === 'agent_registered') {
          const agentId = String(row.data.agentId);
          if (!balances.has(agentId)) balances.set(agentId, { availableMicros: 0n, heldMicros: 0n });
        }
        if (!LEDGER_EVENT_TYPES.has(row.type)) continue;
        const event = decodeLedgerEvent(row.type, row.data);
        applyEvent(event, balances, liveHolds, row.position, report);
      }
      afterPosition = rows.at(-1)!.position;
    }
    return { balances, liveHolds, eventsChecked };
  }

  private async compareProjection(
    runner: QueryRunner,
    balances: Map<string, Balance>,
    report: (violation: Violation) => void,
  ): Promise<void> {
    const rows: Array<{ account_id: string; available_micros: string; held_micros: string }> =
      await runner.query(
        `SELECT account_id, available_micros, held_micros FROM ${this.store.schema}.accounts`,
      );
    const seen = new Set<string>();
    for (const row of rows) {
      seen.add(row.account_id);
      const expected = balances.get(row.account_id) ?? { availableMicros: 0n, heldMicros: 0n };
      if (
        BigInt(row.available_micros) !== expected.availableMicros ||
        BigInt(row.held_micros) !== expected.heldMicros
      ) {
        report({
          kind: 'projection_mismatch',
          account: row.account_id,
          expected: `${expected.availableMicros}/${expected.heldMicros}`,
          actual: `${row.available_micros}/${row.held_micros}`,
          detail: 'balance row (available/held) differs from the log',
        });
      }
    }
    for (const account of balances.keys()) {
      if (isMaterialized(account) && !seen.has(account))
        report({ kind: 'projection_missing', account, detail: 'no balance row for an account in the log' });
    }
    const sums: Array<{ account_id: string; available: string }> = await runner.query(
      `SELECT account_id, sum(amount_micros)::text AS available FROM ${this.store.schema}.ledger_entries GROUP BY account_id`,
    );
    for (const row of sums) {
      const expected = balances.get(row.account_id)?.availableMicros ?? 0n;
      if (BigInt(row.available) !== expected) {
        report({
          kind: 'entries_mismatch',
          account: row.account_id,
          expected: expected.toString(),
          actual: row.available,
          detail: 'ledger entries do not sum to the balance from the log',
        });
      }
    }
  }
}

function applyEvent(
  event: LedgerEvent,
  balances: Map<string, Balance>,
  liveHolds: Map<string, bigint>,
  position: string,
  report: (violation: Violation) => void,
): void {
  const postings = postingsOf(event);
  const sum = postings.reduce((total, posting) => total + posting.availableDeltaMicros, 0n);
  if (sum !== 0n)
    report({
      kind: 'unbalanced_event',
      actual: sum.toString(),
      detail: `event at position ${position} (${event.type}) does not sum to zero`,
    });
  for (const posting of postings) {
    const balance = balances.get(posting.account) ?? { availableMicros: 0n, heldMicros: 0n };
    balance.availableMicros += posting.availableDeltaMicros;
    balance.heldMicros += posting.heldDeltaMicros;
    balances.set(posting.account, balance);
    if (isAgentAccount(posting.account) && (balance.availableMicros < 0n || balance.heldMicros < 0n)) {
      report({
        kind: 'negative_after_event',
        account: posting.account,
        actual: balance.availableMicros.toString(),
        detail: `below zero after position ${position}`,
      });
    }
  }
  // A live hold counts what it still holds: parts paid out of it, or a final part's rest given
  // back, leave escrow holding; a full post or void settles what is left.
  if (event.type === 'hold_placed') liveHolds.set(event.holdId, event.amountMicros);
  if (event.type === 'hold_part_posted') {
    const leftMicros = (liveHolds.get(event.holdId) ?? 0n) - event.amountMicros - event.releasedMicros;
    if (leftMicros > 0n) liveHolds.set(event.holdId, leftMicros);
    else liveHolds.delete(event.holdId);
  }
  if (event.type === 'hold_posted' || event.type === 'hold_voided') liveHolds.delete(event.holdId);
}
