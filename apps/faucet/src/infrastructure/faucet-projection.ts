import type { QueryRunner } from 'typeorm';
import type { Projection, ProjectionTarget, RecordedEvent } from '@pf/event-store';
import type { ClaimEvent } from '../domain/claim.js';
import { CLAIM_EVENT_TYPES, decodeClaimEvent, decodeTreasuryEvent } from './faucet-codec.js';

/**
 * The faucet's inline projection, updated in the append's transaction:
 * - `treasury`, one row: funded, reserved (pending + completed claims) and claimed amounts,
 *   and claim counters (stats are public: they must not count rows per request).
 *   Claims lock it first (`FOR UPDATE`), so the budget check and the reservation are atomic
 *   and every claim transaction takes its locks in the same order.
 * - `claims`: one row per claim with its status, for stats and the recovery sweep.
 * The database repeats the decider's invariants: reserved never exceeds funded, and an agent
 * has at most one claim that is not rejected.
 */
export const faucetProjection: Projection = {
  name: 'faucet_claims',
  tables: ['treasury', 'claims'],
  createTables: (target) => [
    `CREATE TABLE ${target.table('treasury')} (
      id boolean PRIMARY KEY DEFAULT true CHECK (id),
      funded_micros bigint NOT NULL DEFAULT 0,
      reserved_micros bigint NOT NULL DEFAULT 0,
      claimed_micros bigint NOT NULL DEFAULT 0,
      claims_pending integer NOT NULL DEFAULT 0 CHECK (claims_pending >= 0),
      claims_completed integer NOT NULL DEFAULT 0 CHECK (claims_completed >= 0),
      CHECK (0 <= claimed_micros AND claimed_micros <= reserved_micros AND reserved_micros <= funded_micros)
    )`,
    `INSERT INTO ${target.table('treasury')} DEFAULT VALUES`,
    `CREATE TABLE ${target.table('claims')} (
      claim_id uuid PRIMARY KEY,
      agent_id text NOT NULL,
      amount_micros bigint NOT NULL CHECK (amount_micros > 0),
      status text NOT NULL CHECK (status IN ('pending', 'completed', 'rejected')),
      stalled boolean NOT NULL DEFAULT false,
      requested_at timestamptz NOT NULL,
      completed_at timestamptz NULL,
      position bigint NOT NULL
    )`,
    `CREATE UNIQUE INDEX ON ${target.table('claims')} (agent_id) WHERE status <> 'rejected'`,
    `CREATE INDEX ON ${target.table('claims')} (requested_at) WHERE status = 'pending'`,
  ],
  apply: async (runner, events, target) => {
    for (const event of events) {
      if (event.type === 'treasury_funded') {
        const funded = decodeTreasuryEvent(event.type, event.data);
        await runner.query(`UPDATE ${target.table('treasury')} SET funded_micros = funded_micros + $1`, [
          funded.amountMicros.toString(),
        ]);
      } else if (CLAIM_EVENT_TYPES.has(event.type)) {
        await applyClaimEvent(runner, decodeClaimEvent(event.type, event.data), event, target);
      }
    }
  },
};

/** One statement per event: the claim row and the treasury row change together. */
async function applyClaimEvent(
  runner: QueryRunner,
  event: ClaimEvent,
  recorded: RecordedEvent,
  target: ProjectionTarget,
): Promise<void> {
  const claims = target.table('claims');
  const treasury = target.table('treasury');
  switch (event.type) {
    case 'claim_requested':
      await runner.query(
        `WITH claim AS (
           INSERT INTO ${claims} (claim_id, agent_id, amount_micros, status, requested_at, position)
           VALUES ($1, $2, $3, 'pending', $4, $5)
         )
         UPDATE ${treasury} SET reserved_micros = reserved_micros + $3, claims_pending = claims_pending + 1`,
        [
          event.claimId,
          event.agentId,
          event.amountMicros.toString(),
          event.requestedAt,
          recorded.globalPosition,
        ],
      );
      return;
    case 'claimed':
      await runner.query(
        `WITH claim AS (
           UPDATE ${claims} SET status = 'completed', completed_at = $2 WHERE claim_id = $1 AND status = 'pending' RETURNING amount_micros
         )
         UPDATE ${treasury} SET claimed_micros = claimed_micros + (SELECT amount_micros FROM claim),
           claims_pending = claims_pending - 1, claims_completed = claims_completed + 1
         WHERE EXISTS (SELECT 1 FROM claim)`,
        [event.claimId, event.claimedAt],
      );
      return;
    case 'claim_transfer_failed':
      await runner.query(`UPDATE ${claims} SET stalled = true WHERE claim_id = $1`, [event.claimId]);
      return;
    case 'claim_rejected':
      await runner.query(
        `WITH claim AS (
           UPDATE ${claims} SET status = 'rejected', completed_at = $2 WHERE claim_id = $1 AND status = 'pending' RETURNING amount_micros
         )
         UPDATE ${treasury} SET reserved_micros = reserved_micros - (SELECT amount_micros FROM claim),
           claims_pending = claims_pending - 1
         WHERE EXISTS (SELECT 1 FROM claim)`,
        [event.claimId, event.rejectedAt],
      );
      return;
  }
}
