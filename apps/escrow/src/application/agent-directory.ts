import { Inject, Injectable } from '@nestjs/common';
import { casinoCommands, casinoErrors, DomainError, escrowErrors, type AgentView } from '@pf/contracts';
import { SERVICE_CONTEXT, type ServiceContext } from '@pf/platform';

/** Agents remembered at once; the oldest are dropped first. */
const MAX_CACHED_AGENTS = 50_000;
const LOOKUP_TIMEOUT_MS = 3_000;

export interface AgentFacts {
  agentId: string;
  referredBy: string | null;
}

/**
 * Who an agent is, asked of casino (`get_agent`). Agents are never deleted and their referrer
 * is fixed at registration, so a found agent is cached for the life of the process: creates by
 * known agents cost no NATS round trip. Unknown agents are not cached (they may register).
 */
@Injectable()
export class AgentDirectory {
  private readonly cache = new Map<string, AgentFacts>();

  constructor(@Inject(SERVICE_CONTEXT) private readonly context: ServiceContext) {}

  /** The agent, or null when casino does not know it. */
  async find(agentId: string): Promise<AgentFacts | null> {
    const cached = this.cache.get(agentId);
    if (cached) return cached;
    let view: AgentView;
    try {
      view = await this.context.commands.request<AgentView>(
        casinoCommands.getAgent,
        { agentId },
        LOOKUP_TIMEOUT_MS,
      );
    } catch (error) {
      if (error instanceof DomainError && error.code === casinoErrors.agentNotFound) return null;
      throw error;
    }
    const facts = { agentId: view.agentId, referredBy: view.referredBy };
    if (this.cache.size >= MAX_CACHED_AGENTS) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(agentId, facts);
    return facts;
  }

  async counterparty(agentId: string): Promise<AgentFacts> {
    const agent = await this.find(agentId);
    if (!agent) throw new DomainError(escrowErrors.counterpartyNotFound, `no agent ${agentId}`);
    return agent;
  }

  /** An escrow's evaluator must be a registered agent (docs/adr/0016). */
  async evaluator(agentId: string): Promise<AgentFacts> {
    const agent = await this.find(agentId);
    if (!agent) throw new DomainError(escrowErrors.evaluatorNotFound, `no agent ${agentId}`);
    return agent;
  }

  /** The creator is authenticated by the gateway, so it exists; its referrer may be null. */
  async referrerOf(creatorId: string): Promise<string | null> {
    const agent = await this.find(creatorId);
    if (!agent) throw new DomainError(casinoErrors.agentNotFound, `no agent ${creatorId}`);
    return agent.referredBy;
  }
}
