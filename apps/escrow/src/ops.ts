/**
 * The escrow service's ops entry: `node dist/apps/escrow/src/ops.js replay|verify [options]`, run
 * by the `ops` CLI (apps/ops) as a child process. It knows the escrow projection and states which
 * escrows must have their money locked in casino right now, so the CLI can match them one to one
 * with casino's live holds.
 */
import { runServiceOps, streamQuery, type ServiceOpsContext, type VerifyFact } from '@pf/ops-kit';
import { escrowProjection } from './infrastructure/escrow-projection.js';
import { ESCROW_SCHEMA } from './infrastructure/migrations.js';

/**
 * Last events after which the escrow's hold must be live (funded, then completed or disputed
 * until settled), with the status each names. An evaluator's rejection makes the escrow funded
 * again, and one half of a cancel by agreement moves no money (docs/adr/0016).
 */
const LOCKED_AFTER: Readonly<Record<string, string>> = {
  funded: 'funded',
  completed: 'completed',
  disputed: 'disputed',
  evaluation_rejected: 'funded',
  cancel_requested: 'awaiting_cancel_consent',
  cancel_consented: 'awaiting_cancel_request',
  // Milestones (docs/adr/0017): funded while any is open; the hold keeps what is not yet released.
  milestone_completed: 'funded',
  milestone_released: 'funded',
};

interface EscrowRow {
  escrow_id: string;
  status: string;
  hold_id: string | null;
  amount_micros: string | null;
  at: Date;
}

interface SettlementRow {
  escrow_id: string;
  kind: string;
  created_at: Date;
}

/**
 * From the log: each escrow's current status (its stream's last event) and the hold its
 * funding named. From the settlements table: decisions casino has not confirmed yet (their
 * holds may be live or already gone; that is the settlement's job, not a violation).
 */
async function escrowFacts(
  context: ServiceOpsContext,
  emit: (fact: VerifyFact) => Promise<void>,
): Promise<void> {
  const events = `${ESCROW_SCHEMA}.events`;
  await streamQuery<EscrowRow>(
    context.dataSource,
    `SELECT last.data->>'escrowId' AS escrow_id, last.type AS status, funded.data->>'holdId' AS hold_id,
            ((funded.data->>'amountMicros')::bigint - coalesce((SELECT sum((r.data->>'amountMicros')::bigint) FROM ${events} r
              WHERE r.stream_id = last.stream_id AND r.type = 'milestone_released'), 0))::text AS amount_micros,
            last.recorded_at AS at
     FROM ${events} last
     LEFT JOIN ${events} funded ON funded.stream_id = last.stream_id AND funded.type = 'funded'
     WHERE last.type = ANY($1::text[])
       AND NOT EXISTS (SELECT 1 FROM ${events} later WHERE later.stream_id = last.stream_id AND later.stream_version > last.stream_version)`,
    [Object.keys(LOCKED_AFTER)],
    async (row) => {
      const status = LOCKED_AFTER[row.status];
      if (status === undefined) return;
      await emit({
        kind: 'locked_escrow',
        escrowId: row.escrow_id,
        holdId: row.hold_id ?? row.escrow_id,
        status,
        amountMicros: row.amount_micros ?? '?',
        at: row.at.toISOString(),
      });
    },
  );
  await jobEscrowFacts(context, emit);
  const settlements = await context.dataSource.query(
    `SELECT to_regclass('${ESCROW_SCHEMA}.settlements') IS NOT NULL AS found`,
  );
  if (!(settlements as Array<{ found: boolean }>)[0]?.found) return;
  await streamQuery<SettlementRow>(
    context.dataSource,
    `SELECT escrow_id, kind, created_at FROM ${ESCROW_SCHEMA}.settlements`,
    [],
    (row) =>
      emit({
        kind: 'settling_escrow',
        // A milestone's part is keyed `<escrow id>:m<n>` / `<escrow id>:deadline`; its hold is the escrow's.
        escrowId: row.escrow_id.split(':')[0]!,
        holdId: row.escrow_id.split(':')[0]!,
        settlement: row.kind,
        at: row.created_at.toISOString(),
      }),
  );
}

/** Escrows the market opened for jobs, with their current status (the stream's last event). */
async function jobEscrowFacts(
  context: ServiceOpsContext,
  emit: (fact: VerifyFact) => Promise<void>,
): Promise<void> {
  const events = `${ESCROW_SCHEMA}.events`;
  await streamQuery<{ escrow_id: string; job_id: string; status: string; at: Date }>(
    context.dataSource,
    `SELECT opened.data->>'escrowId' AS escrow_id, opened.data->>'jobId' AS job_id, last.type AS status, last.recorded_at AS at
     FROM ${events} opened
     JOIN LATERAL (SELECT type, recorded_at FROM ${events} l WHERE l.stream_id = opened.stream_id ORDER BY stream_version DESC LIMIT 1) last ON true
     WHERE opened.type = 'opened' AND opened.data ? 'jobId'`,
    [],
    async (row) => {
      if (row.status === 'rejected') return;
      const status = row.status === 'cancelled' || row.status === 'declined' ? 'refunded' : row.status;
      await emit({
        kind: 'job_escrow',
        escrowId: row.escrow_id,
        jobId: row.job_id,
        status,
        at: row.at.toISOString(),
      });
    },
  );
}

await runServiceOps({ service: ESCROW_SCHEMA, projections: [escrowProjection], facts: escrowFacts });
