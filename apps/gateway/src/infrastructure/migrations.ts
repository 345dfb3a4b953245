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

/**
 * ADR 0020: webhook endpoints (secret sealed under the server key) and their delivery queue.
 * An endpoint's pending deliveries go out in `delivery_seq` order, one at a time; the endpoint
 * row is the unit a dispatcher leases (`lease_token`, `lease_until`), claimed with SKIP LOCKED,
 * so replicas never send one endpoint's events concurrently.
 */
class WebhookDeliveries1765200000200 implements MigrationInterface {
  readonly name = 'WebhookDeliveries1765200000200';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`
      CREATE TABLE gateway.webhook_endpoints (
        webhook_id text PRIMARY KEY,
        agent_id text NOT NULL,
        url text NOT NULL,
        events text[] NOT NULL,
        secret_sealed bytea NOT NULL,
        status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
        disabled_at timestamptz NULL,
        disabled_reason text NULL,
        consecutive_failures integer NOT NULL DEFAULT 0,
        failing_since timestamptz NULL,
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        lease_token uuid NULL,
        lease_until timestamptz NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await runner.query(`CREATE INDEX webhook_endpoints_agent_id ON gateway.webhook_endpoints (agent_id)`);
    await runner.query(`
      CREATE TABLE gateway.webhook_deliveries (
        delivery_seq bigserial PRIMARY KEY,
        webhook_id text NOT NULL REFERENCES gateway.webhook_endpoints (webhook_id) ON DELETE CASCADE,
        event_id text NOT NULL,
        event_type text NOT NULL,
        body text NOT NULL,
        state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered')),
        attempts integer NOT NULL DEFAULT 0,
        last_attempt_at timestamptz NULL,
        last_status integer NULL,
        last_error text NULL,
        delivered_at timestamptz NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (webhook_id, event_id)
      )`);
    await runner.query(
      `CREATE INDEX webhook_deliveries_pending ON gateway.webhook_deliveries (webhook_id, delivery_seq) WHERE state = 'pending'`,
    );
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query('DROP TABLE gateway.webhook_deliveries');
    await runner.query('DROP TABLE gateway.webhook_endpoints');
  }
}

export const gatewayMigrations: Array<new () => MigrationInterface> = [
  IdempotencyKeys1764000000100,
  SealedIdempotencyRecords1764900000100,
  SignedReceipts1765200000100,
  WebhookDeliveries1765200000200,
];
