/**
 * The faucet's ops entry: `node dist/apps/faucet/src/ops.js replay|verify [options]`, run by the
 * `ops` CLI (apps/ops) as a child process. It knows the faucet's projection and states its
 * claims as facts, so the CLI can match them one to one with casino's treasury transfers.
 */
import { runServiceOps, streamQuery, type ServiceOpsContext, type VerifyFact } from '@pf/ops-kit';
import { faucetProjection } from './infrastructure/faucet-projection.js';
import { FAUCET_SCHEMA } from './infrastructure/migrations.js';

interface ClaimRow {
  claim_id: string;
  agent_id: string;
  amount_micros: string;
  last_type: string;
  at: Date;
}

const STATUS_BY_LAST_EVENT: Record<string, 'pending' | 'completed' | 'rejected'> = {
  claim_requested: 'pending',
  claimed: 'completed',
  claim_rejected: 'rejected',
};

/**
 * Each claim's status from the log (its last status event; `claim_transfer_failed` changes
 * none). The casino transfer of a claim has the claim's id as its transfer id.
 */
async function faucetFacts(
  context: ServiceOpsContext,
  emit: (fact: VerifyFact) => Promise<void>,
): Promise<void> {
  await streamQuery<ClaimRow>(
    context.dataSource,
    `SELECT DISTINCT ON (data->>'claimId') data->>'claimId' AS claim_id, data->>'agentId' AS agent_id,
            data->>'amountMicros' AS amount_micros, type AS last_type, recorded_at AS at
     FROM ${FAUCET_SCHEMA}.events
     WHERE type IN ('claim_requested', 'claimed', 'claim_rejected')
     ORDER BY data->>'claimId', global_position DESC`,
    [],
    (row) =>
      emit({
        kind: 'faucet_claim',
        claimId: row.claim_id,
        transferId: row.claim_id,
        agentId: row.agent_id,
        amountMicros: row.amount_micros,
        status: STATUS_BY_LAST_EVENT[row.last_type] ?? 'pending',
        at: row.at.toISOString(),
      }),
  );
}

await runServiceOps({ service: FAUCET_SCHEMA, projections: [faucetProjection], facts: faucetFacts });
