import type { MigrationInterface, QueryRunner } from 'typeorm';
import { MANDATE_ACTIONS, type MandateAction } from '@pf/contracts';
import {
  EVENT_STORE_TABLES,
  namedStatement,
  qualify,
  type PendingEvent,
  type Projection,
  type ProjectionTarget,
  type RecordedEvent,
  type Statement,
} from '@pf/event-store';
import { parseMicros } from '@pf/money';
import type { KeyEvent, Mandate } from '../domain/api-key.js';

/**
 * Sub-keys in the log and in tables (ADR 0019). Events: `api_key_created`, `api_key_revoked`,
 * `key_spent` on `key-<key id>`. Tables: `api_keys` (the row a mandated ledger command locks;
 * `version` is the key stream's version, so the spend's append is checked against it) and
 * `key_spends` (what the rolling-24 h limit sums). A separate inline projection from the
 * ledger's, so its tables come from their own migration.
 */

export const KEY_EVENT_TYPES: ReadonlySet<string> = new Set([
  'api_key_created',
  'api_key_revoked',
  'key_spent',
]);

export function keyStream(keyId: string): string {
  return `key-${keyId}`;
}

export function encodeKeyEvent(event: KeyEvent): { type: KeyEvent['type']; data: Record<string, unknown> } {
  const { type, ...rest } = event;
  switch (event.type) {
    case 'api_key_created':
      return { type, data: { ...rest, mandate: encodeMandate(event.mandate) } };
    case 'key_spent':
      return { type, data: { ...rest, amountMicros: event.amountMicros.toString() } };
    case 'api_key_revoked':
      return { type, data: rest };
  }
}

export function decodeKeyEvent(type: string, data: Record<string, unknown>): KeyEvent {
  switch (type) {
    case 'api_key_created':
      return {
        type,
        keyId: text(data.keyId),
        agentId: text(data.agentId),
        apiKeyHashHex: text(data.apiKeyHashHex),
        name: typeof data.name === 'string' ? data.name : null,
        mandate: decodeMandate(data.mandate as Record<string, unknown>),
      };
    case 'api_key_revoked':
      return { type, keyId: text(data.keyId), agentId: text(data.agentId) };
    case 'key_spent':
      return {
        type,
        keyId: text(data.keyId),
        agentId: text(data.agentId),
        operationId: text(data.operationId),
        action: action(data.action),
        payeeId: text(data.payeeId),
        amountMicros: parseMicros(data.amountMicros, 'amountMicros'),
      };
    default:
      throw new Error(`not a key event: ${type}`);
  }
}

function encodeMandate(mandate: Mandate): Record<string, unknown> {
  return {
    maxPerTransactionMicros: mandate.maxPerTransactionMicros.toString(),
    maxPerDayMicros: mandate.maxPerDayMicros.toString(),
    allowedPayees: mandate.allowedPayees,
    allowedActions: mandate.allowedActions,
    expiresAt: new Date(mandate.expiresAtMs).toISOString(),
  };
}

function decodeMandate(data: Record<string, unknown>): Mandate {
  return {
    maxPerTransactionMicros: parseMicros(data.maxPerTransactionMicros, 'maxPerTransactionMicros'),
    maxPerDayMicros: parseMicros(data.maxPerDayMicros, 'maxPerDayMicros'),
    allowedPayees: Array.isArray(data.allowedPayees) ? data.allowedPayees.map(text) : null,
    allowedActions: Array.isArray(data.allowedActions) ? data.allowedActions.map(action) : null,
    expiresAtMs: Date.parse(text(data.expiresAt)),
  };
}

function action(value: unknown): MandateAction {
  if (!(MANDATE_ACTIONS as readonly unknown[]).includes(value))
    throw new Error(`unknown mandate action in a stored event: ${String(value)}`);
  return value as MandateAction;
}

function text(value: unknown): string {
  if (typeof value !== 'string')
    throw new Error(`expected a string in a stored key event, got ${typeof value}`);
  return value;
}

/** The tables' DDL for a target (live or a rebuild's shadow); the live ones come from the migration below. */
function keysTablesDdl(target: Pick<ProjectionTarget, 'table'>): string[] {
  return [
    `CREATE TABLE ${target.table('api_keys')} (
      key_id text PRIMARY KEY,
      agent_id text NOT NULL,
      key_hash bytea NOT NULL UNIQUE,
      name text NULL,
      max_per_transaction_micros bigint NOT NULL,
      max_per_day_micros bigint NOT NULL,
      allowed_payees text[] NULL,
      allowed_actions text[] NULL,
      expires_at timestamptz NOT NULL,
      created_at timestamptz NOT NULL,
      revoked_at timestamptz NULL,
      version integer NOT NULL,
      position bigint NOT NULL
    )`,
    `CREATE INDEX ON ${target.table('api_keys')} (agent_id, created_at DESC)`,
    `CREATE TABLE ${target.table('key_spends')} (
      key_id text NOT NULL,
      operation_id text NOT NULL,
      amount_micros bigint NOT NULL CHECK (amount_micros > 0),
      spent_at timestamptz NOT NULL,
      position bigint NOT NULL,
      PRIMARY KEY (key_id, operation_id)
    )`,
    `CREATE INDEX ON ${target.table('key_spends')} (key_id, spent_at)`,
  ];
}

export const casinoKeysProjection: Projection = {
  name: 'casino_keys',
  tables: ['api_keys', 'key_spends'],
  createTables: keysTablesDdl,
  apply: async (runner, events, target) => {
    for (const event of events) {
      if (!KEY_EVENT_TYPES.has(event.type)) continue;
      await applyKeyEvent(runner, event, decodeKeyEvent(event.type, event.data), target);
    }
  },
  statements: (events, target) => {
    const spends = events.filter((event) => KEY_EVENT_TYPES.has(event.type));
    if (spends.length === 0) return [];
    if (spends.some((event) => event.type !== 'key_spent'))
      throw new Error('casino keys projection: only spends are pipelined');
    return [spendStatement(spends, target)];
  },
};

async function applyKeyEvent(
  runner: QueryRunner,
  recorded: RecordedEvent,
  event: KeyEvent,
  target: ProjectionTarget,
): Promise<void> {
  switch (event.type) {
    case 'api_key_created':
      await runner.query(
        `INSERT INTO ${target.table('api_keys')} (key_id, agent_id, key_hash, name, max_per_transaction_micros,
           max_per_day_micros, allowed_payees, allowed_actions, expires_at, created_at, version, position)
         VALUES ($1, $2, decode($3, 'hex'), $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
        [
          event.keyId,
          event.agentId,
          event.apiKeyHashHex,
          event.name,
          event.mandate.maxPerTransactionMicros.toString(),
          event.mandate.maxPerDayMicros.toString(),
          event.mandate.allowedPayees,
          event.mandate.allowedActions,
          new Date(event.mandate.expiresAtMs),
          recorded.recordedAt,
          recorded.streamVersion,
          recorded.globalPosition,
        ],
      );
      return;
    case 'api_key_revoked':
      await runner.query(
        `UPDATE ${target.table('api_keys')} SET revoked_at = $2, version = $3 WHERE key_id = $1`,
        [event.keyId, recorded.recordedAt, recorded.streamVersion],
      );
      return;
    case 'key_spent':
      // The time straight from the log (microseconds), as the pipelined statement writes it: a
      // JavaScript Date keeps milliseconds only, and the replay would differ from the live row.
      await runner.query(
        `INSERT INTO ${target.table('key_spends')} (key_id, operation_id, amount_micros, spent_at, position)
         SELECT $1, $2, $3, e.recorded_at, e.global_position
         FROM ${qualify(target.schema, EVENT_STORE_TABLES.events)} AS e WHERE e.event_id = $4`,
        [event.keyId, event.operationId, event.amountMicros.toString(), recorded.eventId],
      );
      await runner.query(`UPDATE ${target.table('api_keys')} SET version = $2 WHERE key_id = $1`, [
        event.keyId,
        recorded.streamVersion,
      ]);
      return;
  }
}

/**
 * Spends appended earlier in this transaction (the mandated ledger command): their time,
 * position and stream version are the log's, looked up by event id; writes what `apply` writes.
 */
function spendStatement(events: readonly PendingEvent[], target: ProjectionTarget): Statement {
  const spends = events.map((event) => ({
    eventId: event.eventId,
    spend: decodeKeyEvent(event.type, event.data) as Extract<KeyEvent, { type: 'key_spent' }>,
  }));
  const events_ = qualify(target.schema, EVENT_STORE_TABLES.events);
  return namedStatement(
    `WITH x AS (
       SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[]) AS x(event_id, key_id, operation_id, amount)
     ),
     e AS (
       SELECT x.*, l.recorded_at, l.global_position, l.stream_version FROM x
       CROSS JOIN LATERAL (SELECT recorded_at, global_position, stream_version FROM ${events_} WHERE event_id = x.event_id LIMIT 1) AS l
     ),
     inserted AS (
       INSERT INTO ${target.table('key_spends')} (key_id, operation_id, amount_micros, spent_at, position)
       SELECT key_id, operation_id, amount, recorded_at, global_position FROM e
     )
     UPDATE ${target.table('api_keys')} AS k SET version = m.version
     FROM (SELECT key_id, max(stream_version) AS version FROM e GROUP BY key_id) AS m
     WHERE k.key_id = m.key_id`,
    [
      spends.map((entry) => entry.eventId),
      spends.map((entry) => entry.spend.keyId),
      spends.map((entry) => entry.spend.operationId),
      spends.map((entry) => entry.spend.amountMicros.toString()),
    ],
  );
}

/**
 * The live tables, as fixed DDL text: this migration never changes, whatever `keysTablesDdl`
 * becomes (a later change gets a migration of its own).
 */
export class CasinoApiKeys1765900000019 implements MigrationInterface {
  readonly name = 'CasinoApiKeys1765900000019';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`CREATE TABLE casino.api_keys (
      key_id text PRIMARY KEY,
      agent_id text NOT NULL,
      key_hash bytea NOT NULL UNIQUE,
      name text NULL,
      max_per_transaction_micros bigint NOT NULL,
      max_per_day_micros bigint NOT NULL,
      allowed_payees text[] NULL,
      allowed_actions text[] NULL,
      expires_at timestamptz NOT NULL,
      created_at timestamptz NOT NULL,
      revoked_at timestamptz NULL,
      version integer NOT NULL,
      position bigint NOT NULL
    )`);
    await runner.query(`CREATE INDEX ON casino.api_keys (agent_id, created_at DESC)`);
    await runner.query(`CREATE TABLE casino.key_spends (
      key_id text NOT NULL,
      operation_id text NOT NULL,
      amount_micros bigint NOT NULL CHECK (amount_micros > 0),
      spent_at timestamptz NOT NULL,
      position bigint NOT NULL,
      PRIMARY KEY (key_id, operation_id)
    )`);
    await runner.query(`CREATE INDEX ON casino.key_spends (key_id, spent_at)`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP TABLE IF EXISTS casino.key_spends`);
    await runner.query(`DROP TABLE IF EXISTS casino.api_keys`);
  }
}
