import { randomUUID } from 'node:crypto';
import type { MandateAction } from '@pf/contracts';
import { namedStatement, qualify, type NewEvent, type Statement } from '@pf/event-store';
import { apiKeyDecider, type KeyEvent, type KeyState } from '../domain/api-key.js';
import type { LedgerCommand } from '../domain/ledger.js';
import { encodeKeyEvent, keyStream } from '../infrastructure/keys-projection.js';
import { operationIdOf, type CommandOrigin } from './ledger-commands.js';

/*
 * A ledger command made with a sub-key (ADR 0019): the mandate is decided in the SAME
 * transaction as the hold or transfer, never checked first and acted on later. The ledger's
 * batch strategy runs it as a batch of one (LedgerService's mandated writer, two in flight): one
 * round trip locks the key's row (FOR UPDATE: every spend of that key, on any replica, queues
 * here), then — as separate statements, so their snapshots see every spend committed before the
 * lock was granted — sums the key's spends of the last 24 h and loads the operation with its
 * balance rows locked. The mandate and the ledger decide; the second round trip appends the
 * operation's events and the key's `key_spent` (at the key's version) with the projections, and
 * commits. A retry of an operation that exists answers its first outcome without spending again.
 */

/** The rolling window of `max_per_day_usd`, in the database's interval syntax. */
const DAY_WINDOW_SQL = `interval '24 hours'`;

interface KeyRow {
  key_id: string;
  agent_id: string;
  key_hash: string;
  name: string | null;
  max_per_transaction_micros: string;
  max_per_day_micros: string;
  allowed_payees: string[] | null;
  allowed_actions: string[] | null;
  expires_at: Date;
  revoked_at: Date | null;
  version: number;
  now: Date;
}

/** What the mandate is decided on: the key's locked row (absent: unknown key) and its spends in the window. */
export interface MandateLoaded {
  row: KeyRow | undefined;
  spentInWindowMicros: bigint;
}

/** The key row lock and the window's spends: sent ahead of the ledger's load, in its round trip. */
export function mandateStatements(schema: string, keyId: string): Statement[] {
  return [
    namedStatement(
      `SELECT key_id, agent_id, encode(key_hash, 'hex') AS key_hash, name, max_per_transaction_micros::text,
         max_per_day_micros::text, allowed_payees, allowed_actions, expires_at, revoked_at, version, now() AS now
       FROM ${qualify(schema, 'api_keys')} WHERE key_id = $1 FOR UPDATE`,
      [keyId],
    ),
    namedStatement(
      `SELECT coalesce(sum(amount_micros), 0)::text AS spent FROM ${qualify(schema, 'key_spends')}
       WHERE key_id = $1 AND spent_at > now() - ${DAY_WINDOW_SQL}`,
      [keyId],
    ),
  ];
}

export function readMandate(keyRows: readonly unknown[], spentRows: readonly unknown[]): MandateLoaded {
  return {
    row: keyRows[0] as KeyRow | undefined,
    spentInWindowMicros: BigInt((spentRows[0] as { spent: string }).spent),
  };
}

/** The key's decision on the spend (throws the mandate's refusal). */
export function decideMandate(
  { command, origin }: { command: LedgerCommand; origin: CommandOrigin },
  { row, spentInWindowMicros }: MandateLoaded,
): KeyEvent[] {
  if (command.kind !== 'hold' && command.kind !== 'transfer')
    throw new Error(`a mandate applies to holds and transfers, not ${command.kind}`);
  const use = origin.mandate!;
  return apiKeyDecider.decide(
    {
      kind: 'spend',
      keyId: use.keyId,
      agentId: command.from,
      operationId: operationIdOf(command),
      action: use.action,
      payeeId: use.payeeId,
      amountMicros: command.amountMicros,
      nowMs: row ? row.now.getTime() : Date.now(),
      spentInWindowMicros,
    },
    keyStateOf(row),
  );
}

/** The key stream's append for a spend that moved money, at the locked row's version. */
export function mandateAppend(
  { row }: MandateLoaded,
  keyEvents: readonly KeyEvent[],
  { command, origin }: { command: LedgerCommand; origin: CommandOrigin },
): { streamId: string; expectedVersion: number; events: NewEvent[] } {
  return {
    streamId: keyStream(origin.mandate!.keyId),
    expectedVersion: row!.version,
    events: keyEvents.map((event) => ({
      eventId: randomUUID(),
      ...encodeKeyEvent(event),
      metadata: { service: origin.service, commandId: operationIdOf(command), schemaVersion: 1 },
    })),
  };
}

/** The key's state from its locked row (the decider's view); a missing row is an unknown key. */
function keyStateOf(row: KeyRow | undefined): KeyState {
  if (!row) return { status: 'none' };
  return {
    status: row.revoked_at ? 'revoked' : 'active',
    keyId: row.key_id,
    agentId: row.agent_id,
    apiKeyHashHex: row.key_hash,
    mandate: {
      maxPerTransactionMicros: BigInt(row.max_per_transaction_micros),
      maxPerDayMicros: BigInt(row.max_per_day_micros),
      allowedPayees: row.allowed_payees,
      allowedActions: row.allowed_actions as MandateAction[] | null,
      expiresAtMs: row.expires_at.getTime(),
    },
  };
}
