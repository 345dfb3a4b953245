import {
  streamQuery,
  type ServiceCheckReport,
  type ServiceOpsContext,
  type VerifyFact,
  type Violation,
} from '@pf/ops-kit';
import { EventStore } from '@pf/event-store';
import { LedgerCheckService } from '../application/ledger-check.service.js';
import { SystemAccount } from '../domain/accounts.js';
import { CASINO_SCHEMA } from './migrations.js';

/**
 * The casino's own invariants, recomputed from its log by the same checker `check_ledger`
 * runs: each event sums to zero, all accounts sum to zero, no agent (nor the treasury) below
 * zero, the escrow holding account equals the live holds, balance rows and entries agree with
 * the log.
 */
export async function casinoChecks(context: ServiceOpsContext): Promise<ServiceCheckReport> {
  const checker = new LedgerCheckService(
    new EventStore({ dataSource: context.dataSource, schema: CASINO_SCHEMA }),
  );
  const report = await checker.check();
  return {
    eventsChecked: report.eventsChecked,
    violations: report.violations.map(({ kind, account, expected, actual, detail }): Violation => ({
      check: kind,
      ids: account ? { account } : ({} as Record<string, string>),
      detail,
      ...(expected !== undefined ? { expected } : {}),
      ...(actual !== undefined ? { actual } : {}),
    })),
  };
}

interface FactRow {
  id: string;
  account: string;
  amount: string;
  service: string;
  at: Date;
}

/**
 * Facts for the cross-service checks: the live holds (placed, neither posted nor voided, and
 * not settled by its parts) with what they still hold, and every transfer out of the faucet
 * treasury. A hold with parts posted (docs/adr/0017) is live for the rest: its amount here is
 * the placement less each part and any rest a final part gave back.
 */
export async function casinoFacts(
  context: ServiceOpsContext,
  emit: (fact: VerifyFact) => Promise<void>,
): Promise<void> {
  const events = `${CASINO_SCHEMA}.events`;
  await streamQuery<FactRow>(
    context.dataSource,
    `SELECT h.data->>'holdId' AS id, h.data->>'from' AS account,
            ((h.data->>'amountMicros')::bigint - coalesce(parts.settled, 0))::text AS amount,
            coalesce(h.metadata->>'service', 'casino') AS service, coalesce(parts.last_at, h.recorded_at) AS at
     FROM ${events} h
     LEFT JOIN LATERAL (
       SELECT sum((p.data->>'amountMicros')::bigint + coalesce((p.data->>'releasedMicros')::bigint, 0)) AS settled,
              max(p.recorded_at) AS last_at
       FROM ${events} p WHERE p.stream_id = h.stream_id AND p.type = 'hold_part_posted'
     ) AS parts ON true
     WHERE h.type = 'hold_placed'
       AND NOT EXISTS (SELECT 1 FROM ${events} later WHERE later.stream_id = h.stream_id
                       AND later.stream_version > h.stream_version AND later.type <> 'hold_part_posted')
       AND (h.data->>'amountMicros')::bigint > coalesce(parts.settled, 0)`,
    [],
    (row) =>
      emit({
        kind: 'live_hold',
        holdId: row.id,
        from: row.account,
        amountMicros: row.amount,
        service: row.service,
        at: row.at.toISOString(),
      }),
  );
  await streamQuery<FactRow>(
    context.dataSource,
    `SELECT data->>'transferId' AS id, data->>'to' AS account, data->>'amountMicros' AS amount,
            coalesce(metadata->>'service', 'casino') AS service, recorded_at AS at
     FROM ${events} WHERE type = 'funds_transferred' AND data->>'from' = $1`,
    [SystemAccount.faucetTreasury],
    (row) =>
      emit({
        kind: 'faucet_transfer',
        transferId: row.id,
        to: row.account,
        amountMicros: row.amount,
        at: row.at.toISOString(),
      }),
  );
}
