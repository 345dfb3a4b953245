import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import {
  DomainError,
  MANDATE_LIMITS,
  mandateErrors,
  type AuthenticateReply,
  type KeyListReply,
  type KeyView,
  type MandateAction,
} from '@pf/contracts';
import { fold, isVersionConflict, type EventStore } from '@pf/event-store';
import { apiKeyDecider, type KeyEvent, type KeyState, type Mandate } from '../domain/api-key.js';
import { decodeKeyEvent, encodeKeyEvent, keyStream } from '../infrastructure/keys-projection.js';
import { CASINO_EVENT_STORE } from './tokens.js';

/** A revoke that meets a concurrent spend (the key's version moved) is decided again, this often. */
const MAX_REVOKE_ATTEMPTS = 10;

interface KeyRow {
  key_id: string;
  agent_id: string;
  key_hash: string;
  name: string | null;
  max_per_transaction_micros: string;
  max_per_day_micros: string;
  allowed_payees: string[] | null;
  allowed_actions: MandateAction[] | null;
  expires_at: Date;
  created_at: Date;
  revoked_at: Date | null;
  version: number;
  spent: string;
  now: Date;
}

const KEY_COLUMNS = `k.key_id, k.agent_id, encode(k.key_hash, 'hex') AS key_hash, k.name,
  k.max_per_transaction_micros::text, k.max_per_day_micros::text, k.allowed_payees, k.allowed_actions,
  k.expires_at, k.created_at, k.revoked_at, k.version, now() AS now`;

/**
 * Sub-keys (ADR 0019): created by an agent's main key with a mandate, listed, revoked. Like the
 * main key, casino only ever sees a sub-key's SHA-256. Spending is not here: it is decided in
 * the ledger's transaction (MandatedLedger).
 */
@Injectable()
export class KeysService {
  constructor(@Inject(CASINO_EVENT_STORE) private readonly store: EventStore) {}

  async create(command: ReturnType<typeof parseCreate>): Promise<KeyView> {
    const rows: Array<{ now: Date; live: string }> = await this.store.dataSource.query(
      `SELECT now() AS now, (SELECT count(*) FROM ${this.table('api_keys')}
         WHERE agent_id = $1 AND revoked_at IS NULL AND expires_at > now())::text AS live`,
      [command.agentId],
    );
    const nowMs = rows[0]!.now.getTime();
    // A soft limit (two concurrent creates may both pass it): it bounds a list, not money.
    if (Number(rows[0]!.live) >= MANDATE_LIMITS.maxLiveKeysPerAgent)
      throw new DomainError(
        mandateErrors.tooManyKeys,
        `an agent may hold ${MANDATE_LIMITS.maxLiveKeysPerAgent} live keys; revoke one first`,
      );
    const streamId = keyStream(command.keyId);
    const history = await this.store.readStream(streamId);
    const state = fold(
      apiKeyDecider,
      history.map((event) => decodeKeyEvent(event.type, event.data)),
    );
    const events = apiKeyDecider.decide({ kind: 'create', ...command, nowMs }, state);
    if (events.length > 0) await this.store.append(streamId, history.length, this.newEvents(events));
    return this.view(command.agentId, command.keyId);
  }

  async list(agentId: string): Promise<KeyListReply> {
    const rows: KeyRow[] = await this.store.dataSource.query(
      `SELECT ${KEY_COLUMNS}, ${this.spentSql()} AS spent FROM ${this.table('api_keys')} AS k
       WHERE k.agent_id = $1 ORDER BY k.created_at DESC, k.key_id LIMIT $2`,
      [agentId, MANDATE_LIMITS.maxKeysListed],
    );
    return { keys: rows.map(toView) };
  }

  async revoke(agentId: string, keyId: string): Promise<KeyView> {
    for (let attempt = 1; ; attempt += 1) {
      const row = await this.row(keyId);
      const events = apiKeyDecider.decide({ kind: 'revoke', keyId, agentId }, stateOf(row));
      if (events.length === 0) return toView(row!);
      try {
        await this.store.append(keyStream(keyId), row!.version, this.newEvents(events));
        return this.view(agentId, keyId);
      } catch (error) {
        if (!isVersionConflict(error) || attempt >= MAX_REVOKE_ATTEMPTS) throw error;
      }
    }
  }

  /**
   * A sub-key by its hash: its agent and what the gateway needs to refuse non-money actions.
   * A revoked or expired key is refused here with its own code (401), so it stops working as
   * soon as the gateway's cache (AUTH_CACHE_TTL_MS) forgets it; money refuses it at once.
   */
  async authenticate(apiKeySha256: string): Promise<AuthenticateReply | null> {
    const rows: KeyRow[] = await this.store.dataSource.query(
      `SELECT ${KEY_COLUMNS}, '0' AS spent FROM ${this.table('api_keys')} AS k WHERE k.key_hash = $1`,
      [Buffer.from(apiKeySha256, 'hex')],
    );
    const row = rows[0];
    if (!row) return null;
    if (row.revoked_at) throw new DomainError(mandateErrors.keyRevoked, 'this API key was revoked');
    if (row.expires_at.getTime() <= row.now.getTime())
      throw new DomainError(mandateErrors.keyExpired, 'this API key has expired');
    return {
      agentId: row.agent_id,
      key: {
        keyId: row.key_id,
        allowedActions: row.allowed_actions,
        expiresAt: row.expires_at.toISOString(),
      },
    };
  }

  private async view(agentId: string, keyId: string): Promise<KeyView> {
    const row = await this.row(keyId);
    if (!row || row.agent_id !== agentId) throw new DomainError(mandateErrors.keyNotFound, `no key ${keyId}`);
    return toView(row);
  }

  private async row(keyId: string): Promise<KeyRow | undefined> {
    const rows: KeyRow[] = await this.store.dataSource.query(
      `SELECT ${KEY_COLUMNS}, ${this.spentSql()} AS spent FROM ${this.table('api_keys')} AS k WHERE k.key_id = $1`,
      [keyId],
    );
    return rows[0];
  }

  private spentSql(): string {
    return `(SELECT coalesce(sum(s.amount_micros), 0)::text FROM ${this.table('key_spends')} AS s
      WHERE s.key_id = k.key_id AND s.spent_at > now() - interval '24 hours')`;
  }

  private table(name: string): string {
    return `${this.store.schema}.${name}`;
  }

  private newEvents(events: readonly KeyEvent[]) {
    return events.map((event) => ({
      eventId: randomUUID(),
      ...encodeKeyEvent(event),
      metadata: { service: 'casino', schemaVersion: 1 },
    }));
  }
}

/** The create command with its mandate in domain terms. */
export function parseCreate(command: {
  agentId: string;
  keyId: string;
  apiKeySha256: string;
  name: string | null;
  mandate: {
    maxPerTransactionMicros: bigint;
    maxPerDayMicros: bigint;
    allowedPayees: string[] | null;
    allowedActions: MandateAction[] | null;
    expiresAt: string;
  };
}): { keyId: string; agentId: string; apiKeyHashHex: string; name: string | null; mandate: Mandate } {
  const { mandate } = command;
  return {
    keyId: command.keyId,
    agentId: command.agentId,
    apiKeyHashHex: command.apiKeySha256,
    name: command.name,
    mandate: {
      maxPerTransactionMicros: mandate.maxPerTransactionMicros,
      maxPerDayMicros: mandate.maxPerDayMicros,
      allowedPayees: mandate.allowedPayees,
      allowedActions: mandate.allowedActions,
      expiresAtMs: Date.parse(mandate.expiresAt),
    },
  };
}

function stateOf(row: KeyRow | undefined): KeyState {
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
      allowedActions: row.allowed_actions,
      expiresAtMs: row.expires_at.getTime(),
    },
  };
}

function toView(row: KeyRow): KeyView {
  return {
    keyId: row.key_id,
    agentId: row.agent_id,
    name: row.name,
    maxPerTransactionMicros: row.max_per_transaction_micros,
    maxPerDayMicros: row.max_per_day_micros,
    allowedPayees: row.allowed_payees,
    allowedActions: row.allowed_actions,
    expiresAt: row.expires_at.toISOString(),
    createdAt: row.created_at.toISOString(),
    revokedAt: row.revoked_at ? row.revoked_at.toISOString() : null,
    spentLast24hMicros: row.spent,
  };
}
