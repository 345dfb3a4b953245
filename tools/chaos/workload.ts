import { randomUUID } from 'node:crypto';
import { formatUsd } from '@pf/money';
import { isRetryable, RetryingClient, sleep, type Answer } from './client.js';

/** How each lifecycle is meant to end; the race with the deadline decides what really happens. */
export const PLANS = [
  'release',
  'release_funded',
  'auto_release',
  'refund_timeout',
  'decline',
  'dispute_release',
  'dispute_refund',
  'dispute_split',
] as const;
export type Plan = (typeof PLANS)[number];

export interface ChaosAgent {
  index: number;
  agentId: string;
  apiKey: string;
  creditedMicros: bigint;
}

/** What the client knows of one lifecycle: what it asked for and the definitive answers it got. */
export interface Lifecycle {
  plan: Plan;
  creatorIndex: number;
  counterpartyIndex: number;
  amountMicros: bigint;
  /** Set once a create answered 201. */
  escrowId?: string;
  /** The operator's counterparty share when the plan resolves a dispute by a split. */
  shareBps?: number;
  /** Final statuses the client's own definitive answers imply (e.g. a 200 release → released). */
  confirmed?: 'released' | 'refunded' | 'split';
  /** Answers the client cannot explain (a 4xx it did not cause): each is a violation. */
  unexpected: string[];
}

export interface WorkloadOptions {
  adminKey: string;
  agents: number;
  creditUsd: number;
  lifecyclesMax: number;
  runId: string;
  /** Escrow deadline of the plans that end by a timeout (short, so the sweeps act during the run). */
  shortTimeoutSeconds: number;
  /** Escrow deadline of the plans that end by an action (long enough to act first, usually). */
  longTimeoutSeconds: number;
}

/**
 * K agents, each running lifecycles back to back against random counterparties until the
 * stop signal or the lifecycle budget: create, then the plan's actions (complete, release,
 * decline, dispute, operator resolve) or nothing (the deadline sweeps finish it).
 */
export class Workload {
  readonly agents: ChaosAgent[] = [];
  readonly lifecycles: Lifecycle[] = [];
  createKeysByCreator = new Map<number, number>();
  /** Disputes whose resolve got no definitive answer yet: the operator tries again after the faults. */
  private readonly unresolved: Lifecycle[] = [];
  private started = 0;

  constructor(
    private readonly client: RetryingClient,
    private readonly options: WorkloadOptions,
    private readonly random: () => number,
  ) {}

  async setUp(): Promise<void> {
    for (let index = 0; index < this.options.agents; index += 1) {
      const registered = await this.client.call('POST', '/api/v1/auth/register', {
        body: {},
        // Anonymous writes need an unguessable key (ADR 0009); one per agent, kept for its retries.
        idempotencyKey: randomUUID(),
      });
      if (registered.status !== 201)
        throw new Error(`register: ${registered.status} ${JSON.stringify(registered.body)}`);
      const agentId = registered.body.agent_id as string;
      const credited = await this.client.call('POST', '/admin/credit', {
        key: this.options.adminKey,
        body: {
          agent_id: agentId,
          amount_usd: this.options.creditUsd,
          reference: `${this.options.runId}-credit-${index}`,
        },
      });
      if (credited.status !== 200)
        throw new Error(`credit: ${credited.status} ${JSON.stringify(credited.body)}`);
      this.agents.push({
        index,
        agentId,
        apiKey: registered.body.api_key as string,
        creditedMicros: BigInt(this.options.creditUsd) * 1_000_000n,
      });
    }
  }

  /** Runs every agent's loop until `shouldStop()` or the lifecycle budget is spent. */
  async run(shouldStop: () => boolean): Promise<void> {
    await Promise.all(
      this.agents.map(async (agent) => {
        while (!shouldStop() && this.started < this.options.lifecyclesMax) {
          this.started += 1;
          await this.lifecycle(agent);
        }
      }),
    );
  }

  private async lifecycle(creator: ChaosAgent): Promise<void> {
    const plan = PLANS[Math.floor(this.random() * PLANS.length)]!;
    const others = this.agents.filter((agent) => agent !== creator);
    const counterparty = others[Math.floor(this.random() * others.length)]!;
    // Odd micro amounts on purpose: the commission rounds, and the model must round the same way.
    const amountMicros = 100_000n + BigInt(Math.floor(this.random() * 1_900_000));
    const lifecycle: Lifecycle = {
      plan,
      creatorIndex: creator.index,
      counterpartyIndex: counterparty.index,
      amountMicros,
      unexpected: [],
    };
    this.lifecycles.push(lifecycle);
    const endsByTimeout = plan === 'auto_release' || plan === 'refund_timeout';
    const timeoutSeconds = endsByTimeout ? this.options.shortTimeoutSeconds : this.options.longTimeoutSeconds;
    const key = `${this.options.runId}-${creator.index}-${this.lifecycles.length}`;
    this.createKeysByCreator.set(creator.index, (this.createKeysByCreator.get(creator.index) ?? 0) + 1);
    const created = await this.client.call('POST', '/escrow/create', {
      key: creator.apiKey,
      idempotencyKey: `${key}-create`,
      body: {
        amount_usd: formatUsd(amountMicros),
        description: `chaos ${plan}`,
        counterparty_agent_id: counterparty.agentId,
        timeout_hours: timeoutSeconds / 3_600,
      },
    });
    if (created.status === 402) return;
    if (created.status !== 201) return this.note(lifecycle, 'create', created);
    const escrowId = created.body.escrow_id as string;
    lifecycle.escrowId = escrowId;
    await this.act(lifecycle, creator, counterparty, escrowId, key);
  }

  private async act(
    lifecycle: Lifecycle,
    creator: ChaosAgent,
    counterparty: ChaosAgent,
    escrowId: string,
    key: string,
  ): Promise<void> {
    const step = (who: ChaosAgent, action: string, body: unknown = {}) =>
      this.client.call('POST', `/escrow/${action}/${escrowId}`, {
        key: who.apiKey,
        idempotencyKey: `${key}-${action}`,
        body,
      });
    switch (lifecycle.plan) {
      case 'release':
        if (
          this.expectOk(
            lifecycle,
            'complete',
            await step(counterparty, 'complete', { result_summary: 'done' }),
          )
        ) {
          this.confirm(lifecycle, 'release', await step(creator, 'release'), 'released');
        }
        return;
      case 'release_funded':
        this.confirm(lifecycle, 'release', await step(creator, 'release'), 'released');
        return;
      case 'auto_release':
        this.expectOk(
          lifecycle,
          'complete',
          await step(counterparty, 'complete', { result_summary: 'done' }),
        );
        return;
      case 'refund_timeout':
        return;
      case 'decline':
        this.confirm(lifecycle, 'decline', await step(counterparty, 'decline'), 'refunded');
        return;
      default:
        return this.disputeAndResolve(lifecycle, creator, step);
    }
  }

  private async disputeAndResolve(
    lifecycle: Lifecycle,
    creator: ChaosAgent,
    step: (who: ChaosAgent, action: string, body?: unknown) => Promise<Answer>,
  ): Promise<void> {
    if (!this.expectOk(lifecycle, 'dispute', await step(creator, 'dispute', { reason: 'chaos' }))) return;
    if (lifecycle.plan === 'dispute_split') lifecycle.shareBps = 1 + Math.floor(this.random() * 9_999);
    // The operator looks at it a little later, as one would.
    await sleep(50 + Math.floor(this.random() * 200));
    const resolved = await this.resolve(lifecycle);
    if (isRetryable(resolved)) this.unresolved.push(lifecycle);
    else this.confirm(lifecycle, 'resolve', resolved, resolvedStatus(lifecycle));
  }

  private resolve(lifecycle: Lifecycle): Promise<Answer> {
    const status = resolvedStatus(lifecycle);
    const outcome = status === 'released' ? 'release' : status === 'refunded' ? 'refund' : 'split';
    return this.client.call('POST', `/admin/escrow/${lifecycle.escrowId}/resolve`, {
      key: this.options.adminKey,
      idempotencyKey: `${lifecycle.escrowId}-resolve`,
      body: {
        outcome,
        ...(lifecycle.shareBps === undefined ? {} : { counterparty_share_bps: lifecycle.shareBps }),
      },
    });
  }

  /** After the faults: the operator resolves the disputes whose resolve never got an answer. */
  async resolvePending(): Promise<void> {
    for (const lifecycle of this.unresolved.splice(0)) {
      this.confirm(lifecycle, 'resolve', await this.resolve(lifecycle), resolvedStatus(lifecycle));
    }
  }

  /** 200 is the plan going ahead; 409 invalid_status is the deadline having won the race. */
  private expectOk(lifecycle: Lifecycle, action: string, answer: Answer): boolean {
    if (answer.status === 200) return true;
    if (answer.status !== 409 || answer.body.error !== 'invalid_status') this.note(lifecycle, action, answer);
    return false;
  }

  private confirm(
    lifecycle: Lifecycle,
    action: string,
    answer: Answer,
    status: NonNullable<Lifecycle['confirmed']>,
  ): void {
    if (this.expectOk(lifecycle, action, answer)) lifecycle.confirmed = status;
  }

  private note(lifecycle: Lifecycle, action: string, answer: Answer): void {
    lifecycle.unexpected.push(`${action} → ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`);
  }
}

function resolvedStatus(lifecycle: Lifecycle): NonNullable<Lifecycle['confirmed']> {
  if (lifecycle.plan === 'dispute_release') return 'released';
  return lifecycle.plan === 'dispute_refund' ? 'refunded' : 'split';
}
