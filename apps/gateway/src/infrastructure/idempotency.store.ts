import type { DataSource } from 'typeorm';
import type { IdempotencySeal, StoredResponse } from './idempotency-seal.js';

export type Claim =
  | { outcome: 'claimed' }
  | ({ outcome: 'replay' } & StoredResponse)
  | { outcome: 'in_progress' }
  | { outcome: 'reused' };

interface RecordRow {
  request_digest: Buffer;
  state: string;
  response_sealed: Buffer | null;
}

/**
 * Idempotency records in Postgres (gateway schema). The first request with a key claims it
 * with a lease; its response is stored when it finishes. A request that died without finishing
 * leaves a lease that expires, after which a retry may run again (the services' commands are
 * idempotent on their own ids, so a second run cannot double-apply).
 *
 * Nothing is kept in clear (ADR 0009): rows are found by the seal's record id, requests compared
 * by a keyed digest and responses stored sealed; only the holder of the Idempotency-Key opens them.
 */
export class IdempotencyStore {
  constructor(
    private readonly dataSource: DataSource,
    private readonly leaseMs: number,
  ) {}

  async claim(seal: IdempotencySeal, requestDigest: Buffer): Promise<Claim> {
    // A concurrent first request may commit between our INSERT's conflict check and our read;
    // the read is then retried in a new statement (a new snapshot). Bounded: a key can only
    // flip between "claimed by someone" and "released" a few times in a row.
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const claimed: unknown[] = await this.dataSource.query(
        `INSERT INTO gateway.idempotency_records (record_id, request_digest, state, lease_until)
         VALUES ($1, $2, 'in_progress', now() + make_interval(secs => $3::double precision / 1000))
         ON CONFLICT (record_id) DO UPDATE
           SET lease_until = EXCLUDED.lease_until, created_at = now()
           WHERE gateway.idempotency_records.state = 'in_progress'
             AND gateway.idempotency_records.lease_until < now()
             AND gateway.idempotency_records.request_digest = EXCLUDED.request_digest
         RETURNING 1`,
        [seal.recordId, requestDigest, this.leaseMs],
      );
      if (claimed.length > 0) return { outcome: 'claimed' };
      const rows: RecordRow[] = await this.dataSource.query(
        `SELECT request_digest, state, response_sealed FROM gateway.idempotency_records WHERE record_id = $1`,
        [seal.recordId],
      );
      const row = rows[0];
      if (!row) continue;
      if (!row.request_digest.equals(requestDigest)) return { outcome: 'reused' };
      if (row.state === 'in_progress') return { outcome: 'in_progress' };
      return { outcome: 'replay', ...seal.open(row.response_sealed!) };
    }
    return { outcome: 'in_progress' };
  }

  async complete(seal: IdempotencySeal, response: StoredResponse): Promise<void> {
    await this.dataSource.query(
      `UPDATE gateway.idempotency_records SET state = 'done', response_sealed = $2 WHERE record_id = $1`,
      [seal.recordId, seal.seal(response)],
    );
  }

  /** Forgets a key whose request failed before anything could have happened (it may be retried). */
  async release(seal: IdempotencySeal): Promise<void> {
    await this.dataSource.query(
      `DELETE FROM gateway.idempotency_records WHERE record_id = $1 AND state = 'in_progress'`,
      [seal.recordId],
    );
  }

  /** Deletes records older than the retention; bounded per call so it never holds a long lock. */
  async expire(retentionMs: number, maxRows = 10_000): Promise<number> {
    const rows: Array<{ deleted: number }> = await this.dataSource.query(
      `WITH expired AS (
         DELETE FROM gateway.idempotency_records WHERE ctid IN (
           SELECT ctid FROM gateway.idempotency_records
           WHERE created_at < now() - make_interval(secs => $1::double precision / 1000) LIMIT $2)
         RETURNING 1)
       SELECT count(*)::int AS deleted FROM expired`,
      [retentionMs, maxRows],
    );
    return rows[0]?.deleted ?? 0;
  }
}
