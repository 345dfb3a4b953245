import type { DataSource, QueryRunner } from 'typeorm';
import { IP_WINDOW_SECONDS, type AddressClaims } from '../domain/ip-allowance.js';
import { FAUCET_SCHEMA, FAUCET_TABLES } from './migrations.js';

type Executor = Pick<QueryRunner, 'query'> | DataSource;

const TREASURY = `${FAUCET_SCHEMA}.treasury`;
const CLAIMS = `${FAUCET_SCHEMA}.claims`;

/** Expired address rows deleted per sweep pass. */
const PRUNE_BATCH = 1_000;

export interface LockedTreasury {
  remainingMicros: bigint;
  /** The database's clock: the one clock every replica shares. */
  nowMs: number;
}

/**
 * Locks the treasury row for the rest of the transaction. Every transaction that writes a
 * claim takes it first (after the address lock), so claims serialize here: the budget check
 * and the reservation are atomic, and locks are always taken in the same order.
 */
export async function lockTreasury(runner: QueryRunner): Promise<LockedTreasury> {
  const rows: Array<{ remaining: string; now_ms: string }> = await runner.query(
    `SELECT (funded_micros - reserved_micros)::text AS remaining, (extract(epoch FROM now()) * 1000)::bigint::text AS now_ms
     FROM ${TREASURY} FOR UPDATE`,
  );
  const row = rows[0];
  if (!row) throw new Error('faucet: the treasury row is missing (migrations not applied?)');
  return { remainingMicros: BigInt(row.remaining), nowMs: Number(row.now_ms) };
}

export interface TreasuryTotals {
  fundedMicros: string;
  remainingMicros: string;
  claimedMicros: string;
  claimsCompleted: number;
  claimsPending: number;
}

export async function treasuryTotals(executor: Executor): Promise<TreasuryTotals> {
  const rows: Array<{
    funded: string;
    remaining: string;
    claimed: string;
    completed: number;
    pending: number;
  }> = await executor.query(
    `SELECT funded_micros::text AS funded, (funded_micros - reserved_micros)::text AS remaining, claimed_micros::text AS claimed,
            claims_completed AS completed, claims_pending AS pending
     FROM ${TREASURY}`,
  );
  const row = rows[0]!;
  return {
    fundedMicros: row.funded,
    remainingMicros: row.remaining,
    claimedMicros: row.claimed,
    claimsCompleted: row.completed,
    claimsPending: row.pending,
  };
}

export interface PendingClaimRow {
  claim_id: string;
  agent_id: string;
  amount_micros: string;
  requested_at: Date;
}

/** Pending claims no request is paying out: stalled, or older than the lease (their process died). */
export function claimsToRecover(
  executor: Executor,
  leaseMs: number,
  limit: number,
): Promise<PendingClaimRow[]> {
  return executor.query(
    `SELECT claim_id::text, agent_id, amount_micros::text, requested_at FROM ${CLAIMS}
     WHERE status = 'pending' AND (stalled OR requested_at < now() - $1 * interval '1 millisecond')
     ORDER BY requested_at LIMIT $2`,
    [leaseMs, limit],
  );
}

export async function hasDeposited(executor: Executor, agentId: string): Promise<boolean> {
  const rows: unknown[] = await executor.query(
    `SELECT 1 FROM ${FAUCET_TABLES.depositors} WHERE agent_id = $1`,
    [agentId],
  );
  return rows.length > 0;
}

/** Remembers an agent's first deposit; later ones change nothing. */
export async function recordDepositor(
  runner: QueryRunner,
  agentId: string,
  transferId: string,
  eventId: string,
): Promise<void> {
  await runner.query(
    `INSERT INTO ${FAUCET_TABLES.depositors} (agent_id, first_transfer_id, first_event_id) VALUES ($1, $2, $3)
     ON CONFLICT (agent_id) DO NOTHING`,
    [agentId, transferId, eventId],
  );
}

/** Serializes claims from one address until the transaction ends, so a limit of 1 means 1. */
export async function lockAddress(runner: QueryRunner, clientIp: string): Promise<void> {
  await runner.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [`faucet-ip:${clientIp}`]);
}

/**
 * What the allowance rule (domain/ip-allowance.ts) needs about an address: the claims other
 * agents recorded from it within the window, the oldest one's time, and the database's clock.
 */
export async function addressClaims(
  executor: Executor,
  clientIp: string,
  agentId: string,
): Promise<AddressClaims> {
  const rows: Array<{ n: number; oldest_ms: string | null; now_ms: string }> = await executor.query(
    `SELECT count(*)::int AS n,
            (extract(epoch FROM min(claimed_at)) * 1000)::bigint::text AS oldest_ms,
            (extract(epoch FROM now()) * 1000)::bigint::text AS now_ms
     FROM ${FAUCET_TABLES.ipClaims}
     WHERE client_ip = $1 AND agent_id <> $2 AND claimed_at > now() - $3 * interval '1 second'`,
    [clientIp, agentId, IP_WINDOW_SECONDS],
  );
  const row = rows[0]!;
  return {
    claimsInWindow: row.n,
    oldestClaimAtMs: row.oldest_ms === null ? null : Number(row.oldest_ms),
    nowMs: Number(row.now_ms),
  };
}

export async function recordAddress(
  runner: QueryRunner,
  claimId: string,
  clientIp: string,
  agentId: string,
): Promise<void> {
  await runner.query(
    `INSERT INTO ${FAUCET_TABLES.ipClaims} (claim_id, client_ip, agent_id) VALUES ($1, $2, $3)`,
    [claimId, clientIp, agentId],
  );
}

/** A rejected claim gives its address's allowance back. */
export async function forgetAddress(runner: QueryRunner, claimId: string): Promise<void> {
  await runner.query(`DELETE FROM ${FAUCET_TABLES.ipClaims} WHERE claim_id = $1`, [claimId]);
}

/** Deletes address rows past the window, a bounded batch at a time; returns how many. */
export async function pruneExpiredAddresses(executor: Executor): Promise<number> {
  // TypeORM answers a DELETE with [rows, affected count].
  const [, deleted]: [unknown[], number] = await executor.query(
    `DELETE FROM ${FAUCET_TABLES.ipClaims} WHERE claim_id IN (
       SELECT claim_id FROM ${FAUCET_TABLES.ipClaims} WHERE claimed_at < now() - $1 * interval '1 second' LIMIT ${PRUNE_BATCH}
     )`,
    [IP_WINDOW_SECONDS],
  );
  return deleted;
}
