import { randomBytes, randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';

export interface WebhookRow {
  webhookId: string;
  agentId: string;
  url: string;
  events: string[];
  status: 'active' | 'disabled';
  disabledAt: string | null;
  disabledReason: string | null;
  consecutiveFailures: number;
  createdAt: string;
}

export interface DeliveryRow {
  deliverySeq: string;
  eventId: string;
  eventType: string;
  state: 'pending' | 'delivered';
  attempts: number;
  lastAttemptAt: string | null;
  lastStatus: number | null;
  lastError: string | null;
  deliveredAt: string | null;
  createdAt: string;
}

export interface NewDelivery {
  webhookId: string;
  eventId: string;
  eventType: string;
  body: string;
}

/** An endpoint leased by one dispatcher until `leaseUntil`; every write checks the token. */
export interface LeasedEndpoint {
  webhookId: string;
  agentId: string;
  url: string;
  secretSealed: Buffer;
  consecutiveFailures: number;
  failingSinceMs: number | null;
  leaseToken: string;
}

export interface PendingDelivery {
  deliverySeq: string;
  eventId: string;
  eventType: string;
  body: string;
}

const ENDPOINT_COLUMNS = `webhook_id, agent_id, url, events, status, disabled_at, disabled_reason, consecutive_failures, created_at`;

/** gateway.webhook_endpoints and gateway.webhook_deliveries (ADR 0020). */
export class WebhookStore {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * A new endpoint, or null when the agent already has `maxPerAgent`. The agent's advisory lock
   * makes count-then-insert atomic, so concurrent creates cannot pass the limit together.
   */
  async create(
    agentId: string,
    url: string,
    events: readonly string[],
    seal: (webhookId: string) => Buffer,
    maxPerAgent: number,
  ): Promise<WebhookRow | null> {
    return this.dataSource.transaction('READ COMMITTED', async (manager) => {
      await manager.query(`SELECT pg_advisory_xact_lock(hashtextextended('webhooks:' || $1, 0))`, [agentId]);
      const [{ count }] = (await manager.query(
        `SELECT count(*)::int AS count FROM gateway.webhook_endpoints WHERE agent_id = $1`,
        [agentId],
      )) as Array<{ count: number }>;
      if (count >= maxPerAgent) return null;
      const webhookId = `wh_${randomBytes(8).toString('hex')}`;
      const rows = (await manager.query(
        `INSERT INTO gateway.webhook_endpoints (webhook_id, agent_id, url, events, secret_sealed)
         VALUES ($1, $2, $3, $4, $5) RETURNING ${ENDPOINT_COLUMNS}`,
        [webhookId, agentId, url, [...events], seal(webhookId)],
      )) as EndpointRecord[];
      return endpoint(rows[0]!);
    });
  }

  async list(agentId: string): Promise<WebhookRow[]> {
    const rows: EndpointRecord[] = await this.dataSource.query(
      `SELECT ${ENDPOINT_COLUMNS} FROM gateway.webhook_endpoints WHERE agent_id = $1 ORDER BY created_at, webhook_id`,
      [agentId],
    );
    return rows.map(endpoint);
  }

  /** The agent's endpoint; another agent's is as absent as an unknown one. */
  async get(webhookId: string, agentId: string): Promise<WebhookRow | null> {
    const rows: EndpointRecord[] = await this.dataSource.query(
      `SELECT ${ENDPOINT_COLUMNS} FROM gateway.webhook_endpoints WHERE webhook_id = $1 AND agent_id = $2`,
      [webhookId, agentId],
    );
    return rows[0] ? endpoint(rows[0]) : null;
  }

  async delete(webhookId: string, agentId: string): Promise<boolean> {
    const rows = returned(
      await this.dataSource.query(
        `DELETE FROM gateway.webhook_endpoints WHERE webhook_id = $1 AND agent_id = $2 RETURNING webhook_id`,
        [webhookId, agentId],
      ),
    );
    return rows.length > 0;
  }

  /** Active endpoints whose filters ask for `<source>.<type>`. */
  async subscribers(source: string, type: string): Promise<Array<{ webhookId: string; agentId: string }>> {
    const rows: Array<{ webhook_id: string; agent_id: string }> = await this.dataSource.query(
      `SELECT webhook_id, agent_id FROM gateway.webhook_endpoints
       WHERE status = 'active' AND events && ARRAY[$1 || '.*', $1 || '.' || $2]`,
      [source, type],
    );
    return rows.map((row) => ({ webhookId: row.webhook_id, agentId: row.agent_id }));
  }

  /** Queues deliveries; one already queued for (endpoint, event) stays as it is (redelivered event). */
  async enqueue(deliveries: readonly NewDelivery[]): Promise<void> {
    if (deliveries.length === 0) return;
    await this.dataSource.query(
      `INSERT INTO gateway.webhook_deliveries (webhook_id, event_id, event_type, body)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
       ON CONFLICT (webhook_id, event_id) DO NOTHING`,
      [
        deliveries.map((delivery) => delivery.webhookId),
        deliveries.map((delivery) => delivery.eventId),
        deliveries.map((delivery) => delivery.eventType),
        deliveries.map((delivery) => delivery.body),
      ],
    );
  }

  async deliveries(webhookId: string, limit: number): Promise<DeliveryRow[]> {
    const rows: DeliveryRecord[] = await this.dataSource.query(
      `SELECT delivery_seq, event_id, event_type, state, attempts, last_attempt_at, last_status, last_error,
              delivered_at, created_at
       FROM gateway.webhook_deliveries WHERE webhook_id = $1 ORDER BY delivery_seq DESC LIMIT $2`,
      [webhookId, limit],
    );
    return rows.map((row) => ({
      deliverySeq: String(row.delivery_seq),
      eventId: row.event_id,
      eventType: row.event_type,
      state: row.state,
      attempts: row.attempts,
      lastAttemptAt: iso(row.last_attempt_at),
      lastStatus: row.last_status,
      lastError: row.last_error,
      deliveredAt: iso(row.delivered_at),
      createdAt: iso(row.created_at)!,
    }));
  }

  /**
   * Leases up to `count` active endpoints that have something due: SKIP LOCKED so replicas
   * claim different endpoints, and a lease (not a held transaction) so a slow receiver does not
   * hold a database connection. An expired lease (a replica died mid-send) is claimed again.
   */
  async claim(count: number, leaseMs: number): Promise<LeasedEndpoint[]> {
    const leaseToken = randomUUID();
    const rows: Array<{
      webhook_id: string;
      agent_id: string;
      url: string;
      secret_sealed: Buffer;
      consecutive_failures: number;
      failing_since: Date | null;
    }> = returned(
      await this.dataSource.query(
        `UPDATE gateway.webhook_endpoints SET lease_token = $1, lease_until = now() + make_interval(secs => $2::double precision / 1000)
       WHERE webhook_id IN (
         SELECT e.webhook_id FROM gateway.webhook_endpoints e
         WHERE e.status = 'active' AND e.next_attempt_at <= now() AND (e.lease_until IS NULL OR e.lease_until < now())
           AND EXISTS (SELECT 1 FROM gateway.webhook_deliveries d WHERE d.webhook_id = e.webhook_id AND d.state = 'pending')
         ORDER BY e.next_attempt_at LIMIT $3::integer FOR UPDATE SKIP LOCKED)
       RETURNING webhook_id, agent_id, url, secret_sealed, consecutive_failures, failing_since`,
        [leaseToken, leaseMs, count],
      ),
    );
    return rows.map((row) => ({
      webhookId: row.webhook_id,
      agentId: row.agent_id,
      url: row.url,
      secretSealed: row.secret_sealed,
      consecutiveFailures: row.consecutive_failures,
      failingSinceMs: row.failing_since ? row.failing_since.getTime() : null,
      leaseToken,
    }));
  }

  /** The endpoint's oldest pending delivery: nothing after it goes out before it does. */
  async head(webhookId: string): Promise<PendingDelivery | null> {
    const rows: Array<{ delivery_seq: string; event_id: string; event_type: string; body: string }> =
      await this.dataSource.query(
        `SELECT delivery_seq, event_id, event_type, body FROM gateway.webhook_deliveries
         WHERE webhook_id = $1 AND state = 'pending' ORDER BY delivery_seq LIMIT 1`,
        [webhookId],
      );
    const row = rows[0];
    return row
      ? {
          deliverySeq: String(row.delivery_seq),
          eventId: row.event_id,
          eventType: row.event_type,
          body: row.body,
        }
      : null;
  }

  /** Records a 2xx and clears the endpoint's failure run; false when the lease was lost meanwhile. */
  async delivered(endpoint: LeasedEndpoint, deliverySeq: string, status: number): Promise<boolean> {
    const rows = returned(
      await this.dataSource.query(
        `WITH lease AS (
         UPDATE gateway.webhook_endpoints SET consecutive_failures = 0, failing_since = NULL
         WHERE webhook_id = $1 AND lease_token = $2 RETURNING webhook_id)
       UPDATE gateway.webhook_deliveries SET state = 'delivered', attempts = attempts + 1, last_attempt_at = now(),
         last_status = $4::integer, last_error = NULL, delivered_at = now()
       WHERE delivery_seq = $3 AND webhook_id IN (SELECT webhook_id FROM lease) RETURNING delivery_seq`,
        [endpoint.webhookId, endpoint.leaseToken, deliverySeq, status],
      ),
    );
    return rows.length > 0;
  }

  /** Records a failed attempt and ends the lease: the endpoint waits `retryInMs`, or is disabled. */
  async failed(
    endpoint: LeasedEndpoint,
    deliverySeq: string,
    outcome: { status: number | null; error: string },
    next: { disable: true; reason: string } | { disable: false; retryInMs: number },
  ): Promise<void> {
    await this.dataSource.query(
      `WITH lease AS (
         UPDATE gateway.webhook_endpoints SET
           consecutive_failures = consecutive_failures + 1,
           failing_since = coalesce(failing_since, now()),
           next_attempt_at = now() + make_interval(secs => $5::double precision / 1000),
           status = CASE WHEN $6::boolean THEN 'disabled' ELSE status END,
           disabled_at = CASE WHEN $6::boolean THEN now() ELSE disabled_at END,
           disabled_reason = CASE WHEN $6::boolean THEN $7::text ELSE disabled_reason END,
           lease_token = NULL, lease_until = NULL
         WHERE webhook_id = $1 AND lease_token = $2 RETURNING webhook_id)
       UPDATE gateway.webhook_deliveries SET attempts = attempts + 1, last_attempt_at = now(), last_status = $4::integer,
         last_error = $8::text
       WHERE delivery_seq = $3 AND webhook_id IN (SELECT webhook_id FROM lease)`,
      [
        endpoint.webhookId,
        endpoint.leaseToken,
        deliverySeq,
        outcome.status,
        next.disable ? 0 : next.retryInMs,
        next.disable,
        next.disable ? next.reason : null,
        outcome.error,
      ],
    );
  }

  /** Deletes up to `maxRows` deliveries acknowledged longer ago than `retentionMs` (the log's limit). */
  async expireDelivered(retentionMs: number, maxRows: number): Promise<void> {
    await this.dataSource.query(
      `DELETE FROM gateway.webhook_deliveries WHERE delivery_seq IN (
         SELECT delivery_seq FROM gateway.webhook_deliveries
         WHERE state = 'delivered' AND delivered_at < now() - make_interval(secs => $1::double precision / 1000)
         LIMIT $2::integer)`,
      [retentionMs, maxRows],
    );
  }

  async release(endpoint: LeasedEndpoint): Promise<void> {
    await this.dataSource.query(
      `UPDATE gateway.webhook_endpoints SET lease_token = NULL, lease_until = NULL WHERE webhook_id = $1 AND lease_token = $2`,
      [endpoint.webhookId, endpoint.leaseToken],
    );
  }
}

interface EndpointRecord {
  webhook_id: string;
  agent_id: string;
  url: string;
  events: string[];
  status: 'active' | 'disabled';
  disabled_at: Date | null;
  disabled_reason: string | null;
  consecutive_failures: number;
  created_at: Date;
}

interface DeliveryRecord {
  delivery_seq: string;
  event_id: string;
  event_type: string;
  state: 'pending' | 'delivered';
  attempts: number;
  last_attempt_at: Date | null;
  last_status: number | null;
  last_error: string | null;
  delivered_at: Date | null;
  created_at: Date;
}

function endpoint(row: EndpointRecord): WebhookRow {
  return {
    webhookId: row.webhook_id,
    agentId: row.agent_id,
    url: row.url,
    events: row.events,
    status: row.status,
    disabledAt: iso(row.disabled_at),
    disabledReason: row.disabled_reason,
    consecutiveFailures: row.consecutive_failures,
    createdAt: iso(row.created_at)!,
  };
}

/** TypeORM answers an UPDATE or DELETE with `[rows, affected]`, a SELECT or INSERT with the rows. */
function returned<T>(result: unknown): T[] {
  const outer = result as unknown[];
  return (Array.isArray(outer[0]) ? outer[0] : outer) as T[];
}

function iso(value: Date | null): string | null {
  return value ? value.toISOString() : null;
}
