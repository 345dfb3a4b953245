/**
 * The market service's ops entry: `node dist/apps/market/src/ops.js replay|verify [options]`, run
 * by the `ops` CLI (apps/ops). It knows the market projection (for replay) and states, for the
 * cross-checks, which escrow each awarded bid has and which jobs were cancelled.
 */
import { runServiceOps, streamQuery, type ServiceOpsContext, type VerifyFact } from '@pf/ops-kit';
import { marketProjection } from './infrastructure/market-projection.js';
import { MARKET_SCHEMA } from './infrastructure/migrations.js';
import { reputationProjection } from './infrastructure/reputation-projection.js';

interface AwardRow {
  job_id: string;
  escrow_id: string;
  bid_id: string;
  job_status: string;
  recorded_at: Date;
}

/**
 * From the log: every escrow of an award that was recorded as funded (`job_awarded`), with the
 * job's current status; the CLI matches them with escrow's own facts.
 */
async function marketFacts(
  context: ServiceOpsContext,
  emit: (fact: VerifyFact) => Promise<void>,
): Promise<void> {
  const events = `${MARKET_SCHEMA}.events`;
  await streamQuery<AwardRow>(
    context.dataSource,
    `SELECT awarded.data->>'jobId' AS job_id, award->>'escrowId' AS escrow_id, award->>'bidId' AS bid_id, jobs.status AS job_status, awarded.recorded_at
     FROM ${events} awarded CROSS JOIN LATERAL jsonb_array_elements(awarded.data->'awards') AS award
     JOIN ${MARKET_SCHEMA}.jobs jobs ON jobs.job_id = awarded.data->>'jobId'
     WHERE awarded.type = 'job_awarded'`,
    [],
    (row) =>
      emit({
        kind: 'market_award',
        jobId: row.job_id,
        escrowId: row.escrow_id,
        bidId: row.bid_id,
        jobStatus: row.job_status,
        at: row.recorded_at.toISOString(),
      }),
  );
}

await runServiceOps({
  service: MARKET_SCHEMA,
  projections: [marketProjection, reputationProjection],
  facts: marketFacts,
});
