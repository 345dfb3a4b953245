import type pg from 'pg';

/**
 * Fills `casino.events` with a realistic ledger history by bulk SQL (no NATS, no commands):
 * agents registered, each credited $1,000 from `world`, then repeating cycles of ten events —
 * six transfers between agents, two holds, the first posted with a 99% / 0.85% / 0.15% split
 * (worker, house, referrer), the second voided. Amounts are small against the deposits, so no
 * agent ever goes below zero and the log is one the casino could have written.
 * Events are inserted in chunks (one transaction each) for progress and bounded memory.
 */
export interface SeedOptions {
  /** Total events to write (at least the agents' registrations and deposits). */
  events: number;
  agents: number;
  chunkEvents?: number;
  onProgress?: (written: number, total: number) => void;
}

const DEPOSIT_MICROS = 1_000_000_000;
const HOLD_MICROS = 1_000_000;
const EVENTS_PER_CYCLE = 10;

export async function seedCasinoLog(client: pg.Client, options: SeedOptions): Promise<number> {
  const { agents } = options;
  const cycles = Math.max(Math.floor((options.events - 2 * agents) / EVENTS_PER_CYCLE), 0);
  const total = 2 * agents + cycles * EVENTS_PER_CYCLE;
  const chunk = options.chunkEvents ?? 100_000;
  await client.query(AGENT_FUNCTIONS);
  let written = 0;
  for (let from = 1; from <= agents; from += chunk) {
    const to = Math.min(from + chunk - 1, agents);
    await client.query(registrations, [from, to]);
    written += to - from + 1;
    options.onProgress?.(written, total);
  }
  for (let from = 1; from <= agents; from += chunk) {
    const to = Math.min(from + chunk - 1, agents);
    await client.query(deposits, [from, to, DEPOSIT_MICROS]);
    written += to - from + 1;
    options.onProgress?.(written, total);
  }
  const cyclesPerChunk = Math.max(Math.floor(chunk / EVENTS_PER_CYCLE), 1);
  for (let from = 0; from < cycles; from += cyclesPerChunk) {
    const to = Math.min(from + cyclesPerChunk, cycles) - 1;
    await client.query(cycleEvents, [from, to, agents, HOLD_MICROS]);
    written += (to - from + 1) * EVENTS_PER_CYCLE;
    options.onProgress?.(written, total);
  }
  return written;
}

/** Agent i's id, and a spread-out agent for slot s of cycle c (a multiplicative hash). */
const AGENT_FUNCTIONS = `
  CREATE OR REPLACE FUNCTION pg_temp.agent_id(i bigint) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT 'ag_' || lpad(to_hex(i), 12, '0') $$;
  CREATE OR REPLACE FUNCTION pg_temp.pick(c bigint, s int, n bigint) RETURNS bigint LANGUAGE sql IMMUTABLE
    AS $$ SELECT 1 + ((c * 10 + s) * 2654435761 % n) $$;`;

const INSERT = `INSERT INTO casino.events (stream_id, stream_version, event_id, type, data, metadata)`;

const registrations = `${INSERT}
  SELECT 'agent-' || pg_temp.agent_id(i), 1, gen_random_uuid(), 'agent_registered',
    jsonb_build_object('agentId', pg_temp.agent_id(i), 'apiKeyHashHex', md5(i::text) || md5('key' || i),
      'referralCode', 'ref_' || lpad(to_hex(i), 8, '0'),
      'referredBy', CASE WHEN i % 3 = 0 THEN pg_temp.agent_id(i - 1) END, 'name', NULL),
    '{"service":"casino","schemaVersion":1}'::jsonb
  FROM generate_series($1::bigint, $2::bigint) AS i ORDER BY i`;

const deposits = `${INSERT}
  SELECT 'op-deposit:seed-' || i, 1, gen_random_uuid(), 'funds_transferred',
    jsonb_build_object('transferId', 'deposit:seed-' || i, 'from', 'world', 'to', pg_temp.agent_id(i),
      'amountMicros', $3::bigint::text, 'reason', 'deposit'),
    '{"service":"admin","schemaVersion":1}'::jsonb
  FROM generate_series($1::bigint, $2::bigint) AS i ORDER BY i`;

/**
 * Slots 0-5: transfers; 6 and 7: holds; 8: post of hold 6 (splits to a worker, the house and
 * the payer's referrer); 9: void of hold 7. Hold amounts are fixed so splits are exact.
 */
const cycleEvents = `${INSERT}
  SELECT stream_id, version, gen_random_uuid(), type, data, metadata FROM (
    SELECT c, s,
      CASE WHEN s < 6 THEN 'op-t' || c || '-' || s WHEN s IN (6, 8) THEN 'op-h' || c || '-a' ELSE 'op-h' || c || '-b' END AS stream_id,
      CASE WHEN s < 8 THEN 1 ELSE 2 END AS version,
      CASE WHEN s < 6 THEN 'funds_transferred' WHEN s < 8 THEN 'hold_placed' WHEN s = 8 THEN 'hold_posted' ELSE 'hold_voided' END AS type,
      CASE
        WHEN s < 6 THEN jsonb_build_object('transferId', 't' || c || '-' || s, 'from', pg_temp.agent_id(pg_temp.pick(c, s, $3)),
          'to', pg_temp.agent_id(pg_temp.pick(c, s + 100, $3)), 'amountMicros', (1000 + (c * 7 + s) % 90000)::text, 'reason', 'payment')
        WHEN s = 6 THEN jsonb_build_object('holdId', 'h' || c || '-a', 'from', pg_temp.agent_id(pg_temp.pick(c, 6, $3)),
          'amountMicros', $4::bigint::text, 'reason', 'escrow')
        WHEN s = 7 THEN jsonb_build_object('holdId', 'h' || c || '-b', 'from', pg_temp.agent_id(pg_temp.pick(c, 7, $3)),
          'amountMicros', $4::bigint::text, 'reason', 'escrow')
        WHEN s = 8 THEN jsonb_build_object('holdId', 'h' || c || '-a', 'from', pg_temp.agent_id(pg_temp.pick(c, 6, $3)),
          'amountMicros', $4::bigint::text, 'splits', jsonb_build_array(
            jsonb_build_object('to', pg_temp.agent_id(pg_temp.pick(c, 108, $3)), 'amountMicros', ($4::bigint * 9900 / 10000)::text, 'reason', 'payout'),
            jsonb_build_object('to', 'house_revenue', 'amountMicros', ($4::bigint * 85 / 10000)::text, 'reason', 'commission'),
            jsonb_build_object('to', pg_temp.agent_id(pg_temp.pick(c, 208, $3)), 'amountMicros', ($4::bigint * 15 / 10000)::text, 'reason', 'referral')))
        ELSE jsonb_build_object('holdId', 'h' || c || '-b', 'from', pg_temp.agent_id(pg_temp.pick(c, 7, $3)), 'amountMicros', $4::bigint::text)
      END AS data,
      CASE WHEN s < 6 THEN '{"service":"casino","schemaVersion":1}' ELSE '{"service":"escrow","schemaVersion":1}' END::jsonb AS metadata
    FROM generate_series($1::bigint, $2::bigint) AS c CROSS JOIN generate_series(0, 9) AS s
  ) AS cycle ORDER BY c, s`;
