import type { DataSource } from 'typeorm';

export type Claim =
  | { outcome: 'claimed' }
  | { outcome: 'replay'; status: number; body: string }
  | { outcome: 'in_progress' }
  | { outcome: 'reused' };

/**
 * Idempotency records in Postgres (gateway schema). The first request with a key claims it
 * with a lease; its response is stored when it finishes. A request that died without finishing
 * leaves a lease that expires, after which a retry may run again (the services' commands are
 * idempotent on their own ids, so a second run cannot double-apply).
 */
export class IdempotencyStore {
  constructor(
    private readonly dataSource: DataSource,
    private readonly leaseMs: number,
  ) {}

  async claim(scope: Buffer, key: string, requestHash: Buffer): Promise<Claim> {
    // A concurrent first request may commit between our INSERT's conflict check and our read;
    // the read is then retried in a new statement (a new snapshot). Bounded: a key can only
    // flip between "claimed by someone" and "released" a few times in a row.
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const claimed: unknown[] = await this.dataSource.query(
        `INSERT INTO gateway.idempotency_keys (scope, key, request_hash, state, lease_until)
         VALUES ($1, $2, $3, 'in_progress', now() + make_interval(secs => $4::double precision / 1000))
         ON CONFLICT (scope, key) DO UPDATE
           SET state = 'in_progress', lease_until = EXCLUDED.lease_until, created_at = now()
           WHERE gateway.idempotency_keys.state = 'in_progress'
             AND gateway.idempotency_keys.lease_until < now()
             AND gateway.idempotency_keys.request_hash = EXCLUDED.request_hash
         RETURNING 1`,
        [scope, key, requestHash, this.leaseMs],
      );
      if (claimed.length > 0) return { outcome: 'claimed' };
      const rows: Array<{
        request_hash: Buffer;
        state: string;
        response_status: number | null;
        response_body: string | null;
      }> = await this.dataSource.query(
        `SELECT request_hash, state, response_status, response_body FROM gateway.idempotency_keys WHERE scope = $1 AND key = $2`,
        [scope, key],
      );
      const row = rows[0];
      if (!row) continue;
      if (!row.request_hash.equals(requestHash)) return { outcome: 'reused' };
      if (row.state === 'in_progress') return { outcome: 'in_progress' };
      return { outcome: 'replay', status: row.response_status!, body: row.response_body! };
    }
    return { outcome: 'in_progress' };
  }

  async complete(scope: Buffer, key: string, status: number, body: string): Promise<void> {
    await this.dataSource.query(
      `UPDATE gateway.idempotency_keys SET state = 'done', response_status = $3, response_body = $4 WHERE scope = $1 AND key = $2`,
      [scope, key, status, body],
    );
  }

  /** Forgets a key whose request failed before anything could have happened (it may be retried). */
  async release(scope: Buffer, key: string): Promise<void> {
    await this.dataSource.query(
      `DELETE FROM gateway.idempotency_keys WHERE scope = $1 AND key = $2 AND state = 'in_progress'`,
      [scope, key],
    );
  }

  /** Deletes records older than the retention; bounded per call so it never holds a long lock. */
  async expire(retentionMs: number, maxRows = 10_000): Promise<number> {
    const rows: Array<{ deleted: number }> = await this.dataSource.query(
      `WITH expired AS (
         DELETE FROM gateway.idempotency_keys WHERE ctid IN (
           SELECT ctid FROM gateway.idempotency_keys
           WHERE created_at < now() - make_interval(secs => $1::double precision / 1000) LIMIT $2)
         RETURNING 1)
       SELECT count(*)::int AS deleted FROM expired`,
      [retentionMs, maxRows],
    );
    return rows[0]?.deleted ?? 0;
  }
}
