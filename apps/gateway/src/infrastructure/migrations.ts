import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The gateway owns no ledger state, only idempotency records: the first response to each
 * (API key, Idempotency-Key), kept at least 24 h so a client's retry gets it back.
 */
class IdempotencyKeys1764000000100 implements MigrationInterface {
  readonly name = 'IdempotencyKeys1764000000100';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`
      CREATE TABLE gateway.idempotency_keys (
        scope bytea NOT NULL,
        key text NOT NULL,
        request_hash bytea NOT NULL,
        state text NOT NULL CHECK (state IN ('in_progress', 'done')),
        response_status integer NULL,
        response_body text NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        lease_until timestamptz NOT NULL,
        PRIMARY KEY (scope, key)
      )`);
    await runner.query(`CREATE INDEX idempotency_keys_created_at ON gateway.idempotency_keys (created_at)`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query('DROP TABLE gateway.idempotency_keys');
  }
}

export const gatewayMigrations: Array<new () => MigrationInterface> = [IdempotencyKeys1764000000100];
