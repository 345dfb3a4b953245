import { randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import {
  casinoErrors,
  DomainError,
  ErrorCode,
  REFERRAL_CODE_PATTERN,
  type AgentView,
  type RegisterReply,
} from '@pf/contracts';
import {
  CommandPipeline,
  isVersionConflict,
  loadByFolding,
  type EventStore,
  type RecordedEvent,
} from '@pf/event-store';
import { AGENT_EXISTS, agentDecider, type AgentRegistered } from '../domain/agent.js';
import { CASINO_EVENT_STORE } from './tokens.js';

/** Fresh ids collide with negligible odds; a collision is retried with new ones, this often. */
const MAX_ID_ATTEMPTS = 5;

interface AgentRow {
  agent_id: string;
  name: string | null;
  referral_code: string;
  referred_by: string | null;
  created_at: Date;
}

/**
 * Agents and their API-key hashes. Casino never sees a key: the gateway draws it (`newApiKey`),
 * shows it once and sends only its SHA-256, which is what is stored and looked up here (ADR 0010).
 */
@Injectable()
export class AgentsService {
  /** Registrations go through the one write path (ADR 0021): fold the new stream, decide, append. */
  private readonly pipeline: CommandPipeline;

  constructor(@Inject(CASINO_EVENT_STORE) private readonly store: EventStore) {
    this.pipeline = new CommandPipeline(store);
  }

  async register(input: {
    apiKeySha256: string;
    agentName?: string;
    referralCode?: string;
  }): Promise<RegisterReply> {
    const referredBy = await this.referrerOf(input.referralCode);
    for (let attempt = 1; ; attempt += 1) {
      const agentId = `ag_${randomBytes(6).toString('hex')}`;
      const referralCode = `ref_${randomBytes(4).toString('hex')}`;
      const streamId = `agent-${agentId}`;
      try {
        return await this.pipeline.execute({
          streamId,
          metadata: { service: 'casino', schemaVersion: 1 },
          load: (runner) => loadByFolding(this.store, runner, streamId, agentDecider, decodeAgentEvent),
          decide: ({ state }) =>
            agentDecider.decide(
              {
                kind: 'register',
                agentId,
                apiKeyHashHex: input.apiKeySha256,
                referralCode,
                referredBy,
                name: input.agentName ?? null,
              },
              state,
            ),
          encode: ({ type, ...data }) => ({ type, data }),
          reply: ({ recorded }) => ({
            agentId,
            referralCode,
            referredBy,
            createdAt: recorded[0]!.recordedAt.toISOString(),
          }),
        });
      } catch (error) {
        // A taken agent id is a stream that exists (or a version conflict), a taken referral code
        // a unique violation in the projection: all mean "draw new ids". (A taken key hash, odds
        // 2^-192, fails every attempt.)
        const collided =
          isVersionConflict(error) ||
          (error instanceof DomainError && error.code === AGENT_EXISTS) ||
          (error as { code?: string }).code === '23505';
        if (!collided || attempt >= MAX_ID_ATTEMPTS) throw error;
      }
    }
  }

  async authenticate(apiKeySha256: string): Promise<{ agentId: string }> {
    const rows: Array<{ agent_id: string }> = await this.store.dataSource.query(
      `SELECT agent_id FROM ${this.store.schema}.agents WHERE api_key_hash = $1`,
      [Buffer.from(apiKeySha256, 'hex')],
    );
    if (rows.length === 0) throw new DomainError(ErrorCode.unauthorized, 'unknown API key');
    return { agentId: rows[0]!.agent_id };
  }

  async get(agentId: string): Promise<AgentView> {
    const rows: AgentRow[] = await this.store.dataSource.query(
      `SELECT agent_id, name, referral_code, referred_by, created_at FROM ${this.store.schema}.agents WHERE agent_id = $1`,
      [agentId],
    );
    const row = rows[0];
    if (!row) throw new DomainError(casinoErrors.agentNotFound, `no agent ${agentId}`);
    return {
      agentId: row.agent_id,
      name: row.name,
      referralCode: row.referral_code,
      referredBy: row.referred_by,
      createdAt: row.created_at.toISOString(),
    };
  }

  /** The agent a referral code belongs to; an unknown or malformed code is ignored (API.md). */
  private async referrerOf(referralCode: string | undefined): Promise<string | null> {
    if (!referralCode || !REFERRAL_CODE_PATTERN.test(referralCode)) return null;
    const rows: Array<{ agent_id: string }> = await this.store.dataSource.query(
      `SELECT agent_id FROM ${this.store.schema}.agents WHERE referral_code = $1`,
      [referralCode],
    );
    return rows[0]?.agent_id ?? null;
  }
}

/** An agent stream's event as the decider folds it (only `agent_registered` exists). */
function decodeAgentEvent(recorded: RecordedEvent): AgentRegistered {
  const data = recorded.data as Omit<AgentRegistered, 'type'>;
  return {
    type: 'agent_registered',
    agentId: data.agentId,
    apiKeyHashHex: data.apiKeyHashHex,
    referralCode: data.referralCode,
    referredBy: data.referredBy,
    name: data.name,
  };
}
