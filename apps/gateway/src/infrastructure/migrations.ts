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

/**
 * ADR 0009: idempotency records keep neither the Idempotency-Key nor the response in clear (the
 * register answer holds an API key). The old table held both, so it is dropped, not converted:
 * rewriting would keep the responses of anonymous weak keys, which anyone could guess. A client
 * retrying across the upgrade runs its request again; every money command is idempotent on its
 * own id (escrow ids derive from the key, credits from their reference), so nothing applies twice.
 */
class SealedIdempotencyRecords1764900000100 implements MigrationInterface {
  readonly name = 'SealedIdempotencyRecords1764900000100';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query('DROP TABLE gateway.idempotency_keys');
    await runner.query(`
      CREATE TABLE gateway.idempotency_records (
        record_id bytea PRIMARY KEY,
        request_digest bytea NOT NULL,
        state text NOT NULL CHECK (state IN ('in_progress', 'done')),
        response_sealed bytea NULL CHECK ((state = 'done') = (response_sealed IS NOT NULL)),
        created_at timestamptz NOT NULL DEFAULT now(),
        lease_until timestamptz NOT NULL
      )`);
    await runner.query(
      `CREATE INDEX idempotency_records_created_at ON gateway.idempotency_records (created_at)`,
    );
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query('DROP TABLE gateway.idempotency_records');
    await new IdempotencyKeys1764000000100().up(runner);
  }
}

/**
 * ADR 0020: signed receipts, one per settling event (unique event_id: a redelivered event finds
 * its receipt), and every public key that ever signed one, so a rotated key's receipts still
 * verify. `parties` lets a party list its receipts; the receipt itself is read by its id.
 */
class SignedReceipts1765200000100 implements MigrationInterface {
  readonly name = 'SignedReceipts1765200000100';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`
      CREATE TABLE gateway.receipt_keys (
        key_id text PRIMARY KEY,
        public_key bytea NOT NULL CHECK (octet_length(public_key) = 32),
        first_used_at timestamptz NOT NULL DEFAULT now()
      )`);
    await runner.query(`
      CREATE TABLE gateway.receipts (
        receipt_id text PRIMARY KEY,
        event_id uuid NOT NULL UNIQUE,
        settlement_id text NOT NULL,
        parties text[] NOT NULL,
        receipt text NOT NULL,
        key_id text NOT NULL REFERENCES gateway.receipt_keys (key_id),
        signature bytea NOT NULL CHECK (octet_length(signature) = 64),
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await runner.query(`CREATE INDEX receipts_settlement_id ON gateway.receipts (settlement_id)`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query('DROP TABLE gateway.receipts');
    await runner.query('DROP TABLE gateway.receipt_keys');
  }
}

export const gatewayMigrations: Array<new () => MigrationInterface> = [
  IdempotencyKeys1764000000100,
  SealedIdempotencyRecords1764900000100,
  SignedReceipts1765200000100,
];
