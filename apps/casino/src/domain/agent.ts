import { DomainError } from '@pf/contracts';
import type { Decider } from '@pf/contracts';

/** An agent: its id, API-key hash, referral code and who referred it. One stream per agent. */
export interface RegisterAgent {
  kind: 'register';
  agentId: string;
  apiKeyHashHex: string;
  referralCode: string;
  referredBy: string | null;
  name: string | null;
}

export interface AgentRegistered {
  type: 'agent_registered';
  agentId: string;
  apiKeyHashHex: string;
  referralCode: string;
  referredBy: string | null;
  name: string | null;
}

/** The refusal of a second registration on one agent stream: its id was taken (callers draw a new one). */
export const AGENT_EXISTS = 'agent_exists';

export type AgentState = { registered: false } | { registered: true; agentId: string };

export const agentDecider: Decider<RegisterAgent, AgentRegistered, AgentState> = {
  initialState: () => ({ registered: false }),
  decide: (command, state) => {
    if (state.registered) throw new DomainError(AGENT_EXISTS, `agent ${command.agentId} already exists`);
    if (command.referredBy === command.agentId) throw new Error('an agent cannot refer itself');
    const { kind: _kind, ...fields } = command;
    return [{ type: 'agent_registered', ...fields }];
  },
  evolve: (_state, event) => ({ registered: true, agentId: event.agentId }),
};
