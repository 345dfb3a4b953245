import type { QueryRunner } from 'typeorm';
import {
  copyField,
  EVENT_STORE_TABLES,
  namedStatement,
  prepared,
  qualify,
  type BulkLoad,
  type Statement,
  type BulkLoadContext,
  type CopyIn,
  type PendingEvent,
  type Projection,
  type ProjectionTarget,
  type RecordedEvent,
} from '@pf/event-store';
import { isMaterialized, SystemAccount } from '../domain/accounts.js';
import { labelPosting, lifetimeChanges } from '../domain/entries.js';
import { postingsOf, type LedgerEvent } from '../domain/ledger.js';
import { decodeLedgerEvent, LEDGER_EVENT_TYPES } from './ledger-codec.js';

export interface RecordedLedgerEvent {
  event: LedgerEvent;
  eventId: string;
  position: number;
  recordedAt: Date;
  service: string;
}

/** A ledger event appended earlier in this transaction: position and time are the log's, looked up by event id. */
type PendingLedgerEvent = Omit<RecordedLedgerEvent, 'position' | 'recordedAt'> & {
  position: null;
  recordedAt: null;
};

interface Entry {
  eventId: string;
  /** Null for a pending event (the statement looks it up in the log by event id). */
  position: number | null;
  account: string;
  operationId: string;
  type: string;
  amountMicros: bigint;
  heldDeltaMicros: bigint;
  reason: string;
  service: string;
  counterparty: string | null;
  at: Date | null;
}

interface AccountChange {
  availableMicros: bigint;
  heldMicros: bigint;
  depositedMicros: bigint;
  withdrawnMicros: bigint;
  escrowedMicros: bigint;
  earnedMicros: bigint;
  feesMicros: bigint;
  referralEarnedMicros: bigint;
}

/**
 * The casino's inline projection: agents (with API-key hashes), the balance rows a debit
 * checks under a row lock, and the ledger entries agents page through. It runs in the append's
 * transaction, so a balance read right after a command's reply already shows it, and it is
 * rebuilt from the log by replaying it (the same code writes live or shadow tables).
 */
export const casinoProjection: Projection = {
  name: 'casino_ledger',
  tables: ['agents', 'accounts', 'ledger_entries'],
  createTables: (target) => [
    `CREATE TABLE ${target.table('agents')} (
      agent_id text PRIMARY KEY,
      api_key_hash bytea NOT NULL UNIQUE,
      referral_code text NOT NULL UNIQUE,
      referred_by text NULL,
      name text NULL,
      created_at timestamptz NOT NULL,
      position bigint NOT NULL
    )`,
    `CREATE INDEX ON ${target.table('agents')} (referred_by) WHERE referred_by IS NOT NULL`,
    // Only agents and the faucet treasury have a balance row: they are the accounts a debit
    // must check. The system accounts that only collect (house revenue, escrow holding) or may
    // go negative (world) would be hot rows under a lock; their balance is the sum of their
    // entries instead.
    `CREATE TABLE ${target.table('accounts')} (
      account_id text PRIMARY KEY,
      available_micros bigint NOT NULL DEFAULT 0,
      held_micros bigint NOT NULL DEFAULT 0,
      deposited_micros bigint NOT NULL DEFAULT 0,
      withdrawn_micros bigint NOT NULL DEFAULT 0,
      escrowed_micros bigint NOT NULL DEFAULT 0,
      earned_micros bigint NOT NULL DEFAULT 0,
      fees_micros bigint NOT NULL DEFAULT 0,
      referral_earned_micros bigint NOT NULL DEFAULT 0,
      CHECK (available_micros >= 0 AND held_micros >= 0)
    )`,
    `INSERT INTO ${target.table('accounts')} (account_id) VALUES ('${SystemAccount.faucetTreasury}')`,
    `CREATE TABLE ${target.table('ledger_entries')} (
      entry_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      position bigint NOT NULL,
      account_id text NOT NULL,
      operation_id text NOT NULL,
      type text NOT NULL,
      amount_micros bigint NOT NULL,
      held_delta_micros bigint NOT NULL,
      balance_after_micros bigint NULL,
      reason text NOT NULL,
      service text NOT NULL,
      counterparty text NULL,
      at timestamptz NOT NULL
    )`,
    `CREATE INDEX ON ${target.table('ledger_entries')} (account_id, entry_id DESC)`,
  ],
  apply: async (runner, events, target) => {
    for (const event of events) {
      if (event.type === 'agent_registered') await insertAgent(runner, event, target);
    }
    const ledgerEvents = events
      .filter((event) => LEDGER_EVENT_TYPES.has(event.type))
      .map(toRecordedLedgerEvent);
    if (ledgerEvents.length > 0) await applyLedgerEvents(runner, ledgerEvents, target);
  },
  bulkLoad: (context) => CasinoBulkLoad.open(context),
  statements: (events, target) => {
    if (events.some((event) => event.type === 'agent_registered'))
      throw new Error('casino projection: registrations are not pipelined');
    const ledgerEvents = events
      .filter((event) => LEDGER_EVENT_TYPES.has(event.type))
      .map(toPendingLedgerEvent);
    if (ledgerEvents.length === 0) return [];
    return [ledgerStatement(ledgerEvents, target, 'log')];
  },
};

interface AgentRegisteredData {
  agentId: string;
  apiKeyHashHex: string;
  referralCode: string;
  referredBy: string | null;
  name: string | null;
}

function toRecordedLedgerEvent(event: RecordedEvent): RecordedLedgerEvent {
  return {
    event: decodeLedgerEvent(event.type, event.data),
    eventId: event.eventId,
    position: event.globalPosition,
    recordedAt: event.recordedAt,
    service: serviceOf(event),
  };
}

function toPendingLedgerEvent(event: PendingEvent): PendingLedgerEvent {
  return {
    event: decodeLedgerEvent(event.type, event.data),
    eventId: event.eventId,
    position: null,
    recordedAt: null,
    service: serviceOf(event),
  };
}

function serviceOf(event: Pick<RecordedEvent, 'metadata'>): string {
  return typeof event.metadata.service === 'string' ? event.metadata.service : 'casino';
}

async function insertAgent(
  runner: QueryRunner,
  event: RecordedEvent,
  target: ProjectionTarget,
): Promise<void> {
  const data = event.data as unknown as AgentRegisteredData;
  await runner.query(
    `INSERT INTO ${target.table('agents')} (agent_id, api_key_hash, referral_code, referred_by, name, created_at, position)
     VALUES ($1, decode($2, 'hex'), $3, $4, $5, $6, $7)`,
    [
      data.agentId,
      data.apiKeyHashHex,
      data.referralCode,
      data.referredBy,
      data.name,
      event.recordedAt,
      event.globalPosition,
    ],
  );
  await runner.query(`INSERT INTO ${target.table('accounts')} (account_id) VALUES ($1)`, [data.agentId]);
}

/** Applies ledger events to the balance rows and appends their entries: one statement. */
async function applyLedgerEvents(
  runner: QueryRunner,
  events: readonly RecordedLedgerEvent[],
  target: ProjectionTarget,
): Promise<void> {
  const { text, values } = ledgerStatement(events, target, 'values');
  await runner.query(prepared(text), values);
}

/**
 * The balance updates and the entries of `events` in ONE statement that needs nothing back:
 * the UPDATE returns each touched balance row's new available amount, and each entry's balance
 * after it is that amount minus the account's later entries in the batch (a window sum). A
 * touched account without a balance row fails the statement (event_store_fail), so it can be
 * sent with the COMMIT.
 *
 * Where the entries' positions and times come from: `values` (apply: the events were read
 * from the log) or `log` (statements: the events were appended earlier in this transaction and
 * are looked up by event id, so the append, this and the COMMIT travel together). An event
 * missing from the log fails the statement too.
 */
type EntrySource = 'values' | 'log';

const ledgerSqlByKey = new Map<string, string>();
/** Live tables plus the few replay targets in use; older shadow names are simply rebuilt. */
const MAX_CACHED_TARGETS = 16;

/** The ledger statement's text for one target and entry source, built once (it is on every batch's path). */
function ledgerSql(target: ProjectionTarget, source: EntrySource): string {
  const key = `${source} ${target.table('accounts')}`;
  let text = ledgerSqlByKey.get(key);
  if (text === undefined) {
    const fail = qualify(target.schema, 'event_store_fail');
    const entries =
      source === 'values'
        ? `SELECT * FROM unnest($10::bigint[], $11::text[], $12::text[], $13::text[], $14::bigint[], $15::bigint[], $16::text[], $17::text[], $18::text[], $19::timestamptz[])
          WITH ORDINALITY AS e(position, account_id, operation_id, type, amount, held_delta, reason, service, counterparty, at, ord)`
        : // Milliseconds, as apply gets them (a JS Date read from the log): replays must equal live.
          `SELECT e.*, log.global_position AS position, date_trunc('milliseconds', log.recorded_at) AS at
          FROM unnest($10::uuid[], $11::text[], $12::text[], $13::text[], $14::bigint[], $15::bigint[], $16::text[], $17::text[], $18::text[])
            WITH ORDINALITY AS e(event_id, account_id, operation_id, type, amount, held_delta, reason, service, counterparty, ord)
          -- LATERAL ... LIMIT 1: a unique-index lookup per entry whatever plan was cached.
          LEFT JOIN LATERAL (
            SELECT ev.global_position, ev.recorded_at FROM ${qualify(target.schema, EVENT_STORE_TABLES.events)} AS ev
            WHERE ev.event_id = e.event_id LIMIT 1
          ) AS log ON true`;
    text = `WITH changes AS (
        SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[])
          AS v(account_id, available, held, deposited, withdrawn, escrowed, earned, fees, referral)
      ),
      updated AS (
        UPDATE ${target.table('accounts')} AS a SET
          available_micros = a.available_micros + v.available,
          held_micros = a.held_micros + v.held,
          deposited_micros = a.deposited_micros + v.deposited,
          withdrawn_micros = a.withdrawn_micros + v.withdrawn,
          escrowed_micros = a.escrowed_micros + v.escrowed,
          earned_micros = a.earned_micros + v.earned,
          fees_micros = a.fees_micros + v.fees,
          referral_earned_micros = a.referral_earned_micros + v.referral
        -- Each row found by its primary key (LATERAL ... LIMIT 1) and updated by its ctid: a
        -- nested loop of index lookups whatever plan was cached. A join on account_id let a
        -- generic plan made on the first, near-empty table hash-join a sequential scan of every
        -- balance row on every batch until autovacuum's next ANALYZE (ledger-plan test). The
        -- rows are locked earlier in the transaction, so the ctid cannot move; a row missed
        -- anyway fails the count check below, never silently.
        FROM changes AS v
        CROSS JOIN LATERAL (SELECT ctid AS tid FROM ${target.table('accounts')} WHERE account_id = v.account_id LIMIT 1) AS found
        WHERE a.ctid = found.tid
        RETURNING a.account_id, a.available_micros
      ),
      entries AS MATERIALIZED (${entries}),
      checked AS (
        SELECT CASE
          WHEN (SELECT count(*) FROM updated) <> (SELECT count(*) FROM changes) THEN ${fail}('ledger projection: no balance row for '
            || (SELECT string_agg(account_id, ', ') FROM changes WHERE account_id NOT IN (SELECT account_id FROM updated)))
          WHEN EXISTS (SELECT 1 FROM entries WHERE position IS NULL) THEN ${fail}('ledger projection: an event of the batch is not in the log')
          ELSE true END AS ok
      )
      INSERT INTO ${target.table('ledger_entries')}
        (position, account_id, operation_id, type, amount_micros, held_delta_micros, balance_after_micros, reason, service, counterparty, at)
      SELECT e.position, e.account_id, e.operation_id, e.type, e.amount, e.held_delta,
        CASE WHEN u.account_id IS NOT NULL THEN u.available_micros - coalesce(sum(e.amount) OVER (
          PARTITION BY e.account_id ORDER BY e.ord DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) END,
        e.reason, e.service, e.counterparty, e.at
      FROM entries AS e LEFT JOIN updated AS u ON u.account_id = e.account_id
      WHERE (SELECT ok FROM checked)
      ORDER BY e.ord`;
    if (ledgerSqlByKey.size >= MAX_CACHED_TARGETS) ledgerSqlByKey.clear();
    ledgerSqlByKey.set(key, text);
  }
  return text;
}

function ledgerStatement(
  events: ReadonlyArray<RecordedLedgerEvent | PendingLedgerEvent>,
  target: ProjectionTarget,
  source: EntrySource,
): Statement {
  const entries = events.flatMap(entriesOf);
  const changes = accountChanges(events);
  const ids = [...changes.keys()];
  const change = (pick: (change: AccountChange) => bigint) =>
    ids.map((id) => pick(changes.get(id)!).toString());
  const entry = <T>(pick: (entry: Entry) => T) => entries.map(pick);
  const described = [
    entry((e) => e.account),
    entry((e) => e.operationId),
    entry((e) => e.type),
    entry((e) => e.amountMicros.toString()),
    entry((e) => e.heldDeltaMicros.toString()),
    entry((e) => e.reason),
    entry((e) => e.service),
    entry((e) => e.counterparty),
  ];
  return {
    ...namedStatement(ledgerSql(target, source)),
    values: [
      ids,
      change((c) => c.availableMicros),
      change((c) => c.heldMicros),
      change((c) => c.depositedMicros),
      change((c) => c.withdrawnMicros),
      change((c) => c.escrowedMicros),
      change((c) => c.earnedMicros),
      change((c) => c.feesMicros),
      change((c) => c.referralEarnedMicros),
      ...(source === 'values'
        ? [entry((e) => e.position), ...described, entry((e) => e.at)]
        : [entry((e) => e.eventId), ...described]),
    ],
  };
}

function entriesOf({
  event,
  eventId,
  position,
  recordedAt,
  service,
}: RecordedLedgerEvent | PendingLedgerEvent): Entry[] {
  const operationId = event.type === 'funds_transferred' ? event.transferId : event.holdId;
  // Entry labels and lifetime counters are the casino's rules: domain/entries.ts.
  const postings = postingsOf(event);
  const entries: Entry[] = new Array(postings.length);
  // One object per entry, built in place: this runs for every posting of every event, live and
  // in replays, where spreading partial objects showed up as a tenth of the CPU and more GC.
  for (let index = 0; index < postings.length; index += 1) {
    const posting = postings[index]!;
    const [type, reason, counterparty] = labelPosting(event, posting.account, index);
    entries[index] = {
      eventId,
      position,
      account: posting.account,
      operationId,
      type,
      amountMicros: posting.availableDeltaMicros,
      heldDeltaMicros: posting.heldDeltaMicros,
      reason,
      service,
      counterparty,
      at: recordedAt,
    };
  }
  return entries;
}

function emptyChange(): AccountChange {
  return {
    availableMicros: 0n,
    heldMicros: 0n,
    depositedMicros: 0n,
    withdrawnMicros: 0n,
    escrowedMicros: 0n,
    earnedMicros: 0n,
    feesMicros: 0n,
    referralEarnedMicros: 0n,
  };
}

function accountChanges(
  events: ReadonlyArray<RecordedLedgerEvent | PendingLedgerEvent>,
): Map<string, AccountChange> {
  const changes = new Map<string, AccountChange>();
  const change = (account: string) => {
    let existing = changes.get(account);
    if (!existing) changes.set(account, (existing = emptyChange()));
    return existing;
  };
  for (const { event } of events) {
    for (const posting of postingsOf(event)) {
      if (!isMaterialized(posting.account)) continue;
      const target = change(posting.account);
      target.availableMicros += posting.availableDeltaMicros;
      target.heldMicros += posting.heldDeltaMicros;
    }
    addLifetimeCounters(event, (account) => (isMaterialized(account) ? change(account) : undefined));
  }
  return changes;
}

/** Adds the event's lifetime changes (domain/entries.ts) to the accounts that keep counters. */
function addLifetimeCounters(
  event: LedgerEvent,
  change: (account: string) => AccountChange | undefined,
): void {
  for (const { account, counter, amountMicros } of lifetimeChanges(event)) {
    const target = change(account);
    if (target) target[counter] += amountMicros;
  }
}

const AGENT_COLUMNS = [
  'agent_id',
  'api_key_hash',
  'referral_code',
  'referred_by',
  'name',
  'created_at',
  'position',
] as const;
const ACCOUNT_COLUMNS = [
  'account_id',
  'available_micros',
  'held_micros',
  'deposited_micros',
  'withdrawn_micros',
  'escrowed_micros',
  'earned_micros',
  'fees_micros',
  'referral_earned_micros',
] as const;
const ENTRY_COLUMNS = [
  'position',
  'account_id',
  'operation_id',
  'type',
  'amount_micros',
  'held_delta_micros',
  'balance_after_micros',
  'reason',
  'service',
  'counterparty',
  'at',
] as const;

/** A balance row of the `accounts` table as pg returns it (bigints as text). */
export interface AccountRow {
  account_id: string;
  available_micros: string;
  held_micros: string;
  deposited_micros: string;
  withdrawn_micros: string;
  escrowed_micros: string;
  earned_micros: string;
  fees_micros: string;
  referral_earned_micros: string;
}

/**
 * The rebuild's fast path (ops replay from position 0 into fresh tables). The balance rows
 * are few next to the events, so they stay in memory and are written once at the end; agents
 * and ledger entries stream out through COPY as the events arrive, with each entry's balance
 * after it taken from the running balance. Postings, entry descriptions and lifetime counters
 * are the same functions `apply` uses, and the tables come out as `apply` leaves them (ops
 * verify compares the two).
 */
class CasinoBulkLoad implements BulkLoad {
  private lastAt: Date | undefined;
  private lastAtText = '';

  private constructor(
    private readonly context: BulkLoadContext,
    private readonly accounts: Map<string, AccountChange>,
    private readonly agents: CopyIn,
    private readonly entries: CopyIn,
  ) {}

  static async open(context: BulkLoadContext): Promise<CasinoBulkLoad> {
    // The fresh tables may already hold rows (createTables seeds the faucet treasury's).
    const rows =
      await context.query<AccountRow>(`SELECT ${ACCOUNT_COLUMNS.map((column) => `${column}::text AS ${column}`).join(', ')}
      FROM ${context.target.table('accounts')}`);
    const accounts = new Map(rows.map((row) => [row.account_id, accountFromRow(row)]));
    const agents = await context.copy('agents', AGENT_COLUMNS);
    const entries = await context.copy('ledger_entries', ENTRY_COLUMNS);
    return new CasinoBulkLoad(context, accounts, agents, entries);
  }

  async apply(events: readonly RecordedEvent[]): Promise<void> {
    let agentRows = '';
    let entryRows = '';
    for (const event of events) {
      if (event.type === 'agent_registered') {
        agentRows += this.registerAgent(event);
      } else if (LEDGER_EVENT_TYPES.has(event.type)) {
        entryRows += this.applyLedgerEvent(toRecordedLedgerEvent(event));
      }
    }
    if (agentRows !== '') await this.agents.write(agentRows);
    if (entryRows !== '') await this.entries.write(entryRows);
  }

  async finish(): Promise<void> {
    await this.agents.end();
    await this.entries.end();
    await this.context.query(`DELETE FROM ${this.context.target.table('accounts')}`);
    const accounts = await this.context.copy('accounts', ACCOUNT_COLUMNS);
    let rows = '';
    for (const [id, account] of this.accounts) {
      rows += `${copyField(id)}\t${account.availableMicros}\t${account.heldMicros}\t${account.depositedMicros}\t${account.withdrawnMicros}\t${account.escrowedMicros}\t${account.earnedMicros}\t${account.feesMicros}\t${account.referralEarnedMicros}\n`;
      if (rows.length > 1 << 20) {
        await accounts.write(rows);
        rows = '';
      }
    }
    if (rows !== '') await accounts.write(rows);
    await accounts.end();
  }

  /** The agent's COPY row; opens its balance row (in memory). */
  private registerAgent(event: RecordedEvent): string {
    const data = event.data as unknown as AgentRegisteredData;
    if (this.accounts.has(data.agentId))
      throw new Error(`ledger projection: agent ${data.agentId} registered twice`);
    this.accounts.set(data.agentId, emptyChange());
    if (!/^[0-9a-f]*$/i.test(data.apiKeyHashHex))
      throw new Error(`ledger projection: api key hash of ${data.agentId} is not hex`);
    // bytea in COPY text: the \\x hex form, its backslash escaped for COPY.
    return `${copyField(data.agentId)}\t\\\\x${data.apiKeyHashHex}\t${copyField(data.referralCode)}\t${copyField(data.referredBy)}\t${copyField(data.name)}\t${event.recordedAt.toISOString()}\t${event.globalPosition}\n`;
  }

  /** Applies one event to the balances in memory; returns its entries' COPY rows. */
  private applyLedgerEvent(recorded: RecordedLedgerEvent): string {
    const entries = entriesOf(recorded);
    const at = this.timestamp(recorded.recordedAt);
    const service = copyField(recorded.service);
    let rows = '';
    for (const entry of entries) {
      let balanceAfter: bigint | null = null;
      const account = this.accounts.get(entry.account) ?? this.unmaterialized(entry.account);
      if (account) {
        account.availableMicros += entry.amountMicros;
        account.heldMicros += entry.heldDeltaMicros;
        balanceAfter = account.availableMicros;
      }
      rows += `${entry.position}\t${copyField(entry.account)}\t${copyField(entry.operationId)}\t${entry.type}\t${entry.amountMicros}\t${entry.heldDeltaMicros}\t${copyField(balanceAfter)}\t${copyField(entry.reason)}\t${service}\t${copyField(entry.counterparty)}\t${at}\n`;
    }
    addLifetimeCounters(recorded.event, (account) => this.account(account));
    return rows;
  }

  private account(id: string): AccountChange {
    return this.accounts.get(id) ?? this.unmaterialized(id) ?? emptyChange();
  }

  /** For an account without a balance row: undefined if it has none by design, else apply's failure. */
  private unmaterialized(id: string): undefined {
    // The same failure as apply's UPDATE finding no row.
    if (isMaterialized(id)) throw new Error(`ledger projection: no balance row for ${id}`);
    return undefined;
  }

  /** recordedAt as COPY text; consecutive events of one transaction share the Date, so it is formatted once. */
  private timestamp(at: Date): string {
    if (at !== this.lastAt) {
      this.lastAt = at;
      this.lastAtText = at.toISOString();
    }
    return this.lastAtText;
  }
}

function accountFromRow(row: AccountRow): AccountChange {
  return {
    availableMicros: BigInt(row.available_micros),
    heldMicros: BigInt(row.held_micros),
    depositedMicros: BigInt(row.deposited_micros),
    withdrawnMicros: BigInt(row.withdrawn_micros),
    escrowedMicros: BigInt(row.escrowed_micros),
    earnedMicros: BigInt(row.earned_micros),
    feesMicros: BigInt(row.fees_micros),
    referralEarnedMicros: BigInt(row.referral_earned_micros),
  };
}
