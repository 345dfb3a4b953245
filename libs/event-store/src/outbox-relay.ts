import { eventSubject, type ServiceName, type SubjectPrefix } from '@pf/contracts';
import type { NatsConnection } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import type pg from 'pg';
import { CommitDrivenLoop } from './commit-driven-loop.js';
import type { EventStore } from './event-store.js';
import { JetStreamBatchPublisher, type StreamAck } from './jetstream-publisher.js';
import { EVENT_STORE_TABLES } from './migrations.js';
import { sendPipelined, type Statement } from './pipeline.js';
import { prepared, qualify } from './sql.js';

export interface OutboxRelayOptions {
  /** The store whose outbox to drain; its in-process commits wake the relay at once. */
  store: EventStore;
  /** The publishing service: subjects are `<prefix>.<service>.events.<type>`. */
  service: ServiceName;
  connection: NatsConnection;
  prefix: SubjectPrefix;
  /** Events claimed and published per pass; default 256, at most 1,000. */
  batchSize?: number;
  /**
   * How often an idle relay looks at the outbox; default 20 ms. Commits in this process wake
   * it immediately; the poll bounds the delay for events appended by other replicas.
   */
  idlePollMs?: number;
  /** Under load, how long a pass waits to gather more commits; default 10 ms, 0 = off. */
  coalesceMs?: number;
  /** Wait for each JetStream ack at most this long; default 5,000 ms. */
  publishTimeoutMs?: number;
  /** Pause after a failed pass (broker or database down); default 500 ms. */
  errorBackoffMs?: number;
  /** If set, the broker refuses a message that would land in another stream. */
  expectedStream?: string;
  logger?: Logger;
  /**
   * Test seam: runs after the broker acked a batch and before the pass commits (the deletion
   * of its outbox rows). Throwing here is a relay crashing between publish and commit.
   */
  afterPublish?: (batch: readonly OutboxMessage[]) => Promise<void>;
}

export interface OutboxMessage {
  globalPosition: number;
  eventId: string;
  subject: string;
  /** The EventEnvelope JSON, built by Postgres from the stored row. */
  payload: string;
}

export interface OutboxRelayStats {
  passes: number;
  published: number;
  /** Acks with `duplicate`: the broker already had the message (a retried batch). */
  duplicates: number;
  failedPasses: number;
}

interface ClaimedRow {
  global_position: string;
  event_id: string;
  type: string;
  payload: string;
}

const MAX_BATCH_SIZE = 1_000;
const encoder = new TextEncoder();

/**
 * Publishes committed events from the transactional outbox to JetStream, with
 * `Nats-Msg-Id` = event id, then deletes the outbox rows.
 *
 * One pass is one transaction in two round trips: BEGIN with one statement that claims the
 * oldest rows (`FOR UPDATE SKIP LOCKED`) and deletes them, uncommitted; publish them and wait for
 * every ack; COMMIT. A crash before the commit leaves the rows to the next pass; the broker's duplicate window turns the re-publish into an ack with
 * `duplicate`, so an event is delayed, never lost or doubled.
 *
 * Several replicas may run a relay. Row locks alone would let two relays publish two events of
 * one stream out of order, so a pass also takes a transaction-level advisory lock: one relay
 * publishes at a time, in position order (which is version order within a stream); the others
 * are hot standbys that take over within one poll interval. One relay publishes thousands of
 * events per second, far above what the commands produce.
 */
export class OutboxRelay extends CommitDrivenLoop {
  readonly stats: OutboxRelayStats = { passes: 0, published: 0, duplicates: 0, failedPasses: 0 };
  private readonly publisher: JetStreamBatchPublisher;
  private readonly batchSize: number;
  private readonly idlePollMs: number;
  private readonly coalesceMs: number;
  private readonly publishTimeoutMs: number;
  private readonly errorBackoffMs: number;
  private readonly lockKey: string;
  private readonly sql: ReturnType<typeof outboxRelayStatements>;

  constructor(private readonly options: OutboxRelayOptions) {
    super(options.store);
    this.batchSize = Math.min(Math.max(options.batchSize ?? 256, 1), MAX_BATCH_SIZE);
    this.idlePollMs = Math.min(Math.max(options.idlePollMs ?? 20, 1), 60_000);
    this.coalesceMs = Math.min(Math.max(options.coalesceMs ?? 10, 0), 100);
    this.publishTimeoutMs = options.publishTimeoutMs ?? 5_000;
    this.errorBackoffMs = options.errorBackoffMs ?? 500;
    this.publisher = new JetStreamBatchPublisher(options.connection, {
      timeoutMs: this.publishTimeoutMs,
      expectedStream: options.expectedStream,
    });
    this.lockKey = `outbox-relay:${options.store.schema}`;
    this.sql = outboxRelayStatements(options.store.schema, this.batchSize);
  }

  /**
   * One pass: publishes up to one batch and returns how many events it published; 0 when the
   * outbox is empty or another relay holds the lock.
   */
  async publishPending({ skipProbe = false }: { skipProbe?: boolean } = {}): Promise<number> {
    if (!skipProbe) {
      const probe: unknown[] = await this.options.store.dataSource.query(prepared(this.sql.probe));
      if (probe.length === 0) return 0;
    }
    const runner = this.options.store.dataSource.createQueryRunner();
    try {
      const client = (await runner.connect()) as pg.ClientBase;
      try {
        return await this.publishClaimed(client);
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    } finally {
      await runner.release();
    }
  }

  /**
   * Two round trips: BEGIN with the claim, which also deletes the claimed rows (pipelined, see
   * sendPipelined); then, once the broker acked every message, COMMIT. The caller rolls back
   * if anything throws, and the rows are back for the next pass.
   */
  private async publishClaimed(client: pg.ClientBase): Promise<number> {
    const [, claimed] = await sendPipelined(client, [
      { text: this.sql.begin },
      { ...(prepared(this.sql.claim) as unknown as Statement), values: [this.lockKey] },
    ]);
    const rows = claimed!.rows as ClaimedRow[];
    if (rows.length === 0) {
      await client.query('COMMIT');
      return 0;
    }
    const batch = rows.map((row) => this.toMessage(row));
    const acks = await this.publishAll(batch);
    await this.options.afterPublish?.(batch);
    const committed = await client.query('COMMIT');
    // A transaction that failed on the way answers COMMIT with ROLLBACK: the rows are still there.
    if (committed.command !== 'COMMIT') throw new Error(`outbox pass did not commit (${committed.command})`);
    this.stats.published += batch.length;
    this.stats.duplicates += acks.filter((ack) => ack.duplicate).length;
    return batch.length;
  }

  /**
   * Sends the whole batch before awaiting the acks: one connection keeps the order, and the
   * batch costs about one round trip instead of one per event. Every message must be acked.
   */
  private publishAll(batch: readonly OutboxMessage[]): Promise<StreamAck[]> {
    return this.publisher.publish(
      batch.map((message) => ({
        subject: message.subject,
        payload: encoder.encode(message.payload),
        msgId: message.eventId,
      })),
    );
  }

  /** Finishes the pass in progress, stops, and stops listening for acks. */
  override async stop(): Promise<void> {
    await super.stop();
    this.publisher.close();
  }

  private toMessage(row: ClaimedRow): OutboxMessage {
    const globalPosition = Number(row.global_position);
    if (!Number.isSafeInteger(globalPosition)) throw new Error(`bad outbox position ${row.global_position}`);
    return {
      globalPosition,
      eventId: row.event_id,
      subject: this.options.prefix.subject(eventSubject(this.options.service, row.type)),
      payload: row.payload,
    };
  }

  protected async loop(): Promise<void> {
    let lastPublished = 0;
    while (!this.stopping) {
      // Under load (the last pass found work) a commit's wake-up is held for a moment so the
      // next pass carries the commits of that moment too: one claim, one publish burst and one
      // delete for many events instead of a pass per commit. An idle relay still answers a
      // single commit at once.
      if (lastPublished > 0 && lastPublished < this.batchSize && this.coalesceMs > 0)
        await delay(this.coalesceMs);
      const woken = this.wakeRequested;
      this.wakeRequested = false;
      let published = 0;
      try {
        // Woken by a commit in this process: rows are there, skip the look.
        published = await this.publishPending({ skipProbe: woken });
        this.stats.passes += 1;
      } catch (error) {
        this.stats.failedPasses += 1;
        this.options.logger?.warn(
          { err: (error as Error).message, schema: this.options.store.schema },
          'outbox relay pass failed',
        );
        await this.sleep(this.errorBackoffMs);
        continue;
      }
      lastPublished = published;
      // A full batch means more is waiting; otherwise rest until woken or the next poll.
      if (published < this.batchSize && !this.wakeRequested) await this.sleep(this.idlePollMs);
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The relay's statements for one schema (exported for the plan-shape test). */
export function outboxRelayStatements(schema: string, batchSize: number) {
  const outbox = qualify(schema, EVENT_STORE_TABLES.outbox);
  const events = qualify(schema, EVENT_STORE_TABLES.events);
  return {
    // Cheap autocommit look before opening a transaction: an idle relay costs one tiny query
    // per poll. In key order, so the index (with its dead entries marked) is used, not a scan
    // over the dead rows of a queue table.
    probe: `SELECT 1 FROM ${outbox} ORDER BY global_position LIMIT 1`,
    // The advisory lock is taken once (materialized CTE, evaluated as an init plan) and held to
    // the end of the transaction. The claimed rows are deleted by the same statement: the
    // DELETE stays uncommitted (and the rows locked) until the broker acked the whole batch, so
    // a pass that fails or a relay that dies before its COMMIT leaves them to the next pass.
    // Plan shape is pinned for a cached generic plan: the batch size is a literal (known row
    // count), the claimed rows are deleted by primary key (= ANY of the claimed array), and the
    // events come by LATERAL primary-key lookups (a nested loop whatever the table statistics
    // were when the plan was cached), never by a join strategy that could scan the whole log or
    // the dead rows of the queue table. Postgres builds the envelope text, so the relay never
    // parses and re-serializes the event data.
    claim: `
      WITH relay_lock AS MATERIALIZED (SELECT pg_try_advisory_xact_lock(hashtext($1)) AS held),
      claimed AS (
        DELETE FROM ${outbox} AS d
        WHERE d.global_position = ANY (ARRAY(
          SELECT o.global_position FROM ${outbox} AS o
          WHERE (SELECT held FROM relay_lock)
          ORDER BY o.global_position
          LIMIT ${batchSize}
          FOR UPDATE SKIP LOCKED
        ))
        RETURNING d.global_position
      )
      SELECT c.global_position::text AS global_position, e.event_id::text AS event_id, e.type, e.payload
      FROM claimed AS c
      CROSS JOIN LATERAL (
        SELECT ev.event_id, ev.type,
          json_build_object(
            'id', ev.event_id,
            'type', ev.type,
            'stream', ev.stream_id,
            'version', ev.stream_version,
            'position', ev.global_position,
            'occurred_at', to_char(ev.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
            'correlation_id', ev.metadata->>'correlationId',
            'causation_id', ev.metadata->>'causationId',
            'schema', coalesce((ev.metadata->>'schemaVersion')::int, 1),
            'data', ev.data
          )::text AS payload
        FROM ${events} AS ev WHERE ev.global_position = c.global_position
        -- LIMIT keeps Postgres from pulling the subquery up into a join: a generic plan made
        -- while the log was small then hash-joined the whole log on every claim (measured: a
        -- sequential scan of events ~30 times a second, half of Postgres's CPU under load).
        LIMIT 1
      ) AS e
      ORDER BY c.global_position`,
    // Asynchronous commit for the relay's own transaction: if a crash loses the DELETE, the
    // rows are published again and the broker acks them as duplicates. No fsync to wait for.
    // Sent in the same round trip as the claim (pipelined).
    begin: 'BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL synchronous_commit = off',
  };
}
