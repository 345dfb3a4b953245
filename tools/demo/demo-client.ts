import { parseUsd } from '@pf/money';

/** The demo's agents talk to the gateway the way the article's Python client does: JSON over HTTP. */

export interface DemoAgent {
  name: string;
  agentId: string;
  apiKey: string;
}

type Json = Record<string, unknown>;

interface Answer {
  status: number;
  body: Json;
}

/** Each request gives up after this long instead of hanging the demo. */
const REQUEST_TIMEOUT_MS = 15_000;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class DemoClient {
  constructor(private readonly baseUrl: string) {}

  async ping(): Promise<void> {
    const answer = await this.request('GET', '/api/v1/ping').catch((error: unknown) => {
      throw new Error(
        `the gateway at ${this.baseUrl} does not answer (${String(error)}); start the system with \`npm start\` or set GATEWAY_URL`,
      );
    });
    if (answer.status !== 200) throw new Error(`the system is not ready: ${JSON.stringify(answer.body)}`);
    const services = answer.body.services as Array<{ name: string; version: string }>;
    console.log(
      `gateway ${this.baseUrl}: ${services.map((service) => `${service.name} ${service.version}`).join(', ')}`,
    );
  }

  async register(name: string): Promise<DemoAgent> {
    // The article's bash: `-d {}` and `.agent.id` / `.agent.api_key`.
    const answer = this.expect(await this.request('POST', '/api/v1/auth/register', {}), 201, 'register');
    const agent = answer.agent as { id: string; api_key: string };
    return { name, agentId: agent.id, apiKey: agent.api_key };
  }

  async credit(adminKey: string, agent: DemoAgent, amountUsd: number): Promise<void> {
    const body = { agent_id: agent.agentId, amount_usd: amountUsd, reference: `demo-${agent.agentId}` };
    this.expect(
      await this.request('POST', '/admin/credit', body, adminKey),
      200,
      'credit (is ADMIN_API_KEY right?)',
    );
  }

  claimFaucet(agent: DemoAgent): Promise<Answer> {
    return this.request('POST', '/faucet/claim', { agent_casino_id: agent.agentId });
  }

  async createEscrow(
    creator: DemoAgent,
    counterparty: DemoAgent,
    amountUsd: number,
    description: string,
    extra: Json = {},
  ): Promise<Json> {
    const body = {
      amount_usd: amountUsd,
      description,
      counterparty_agent_id: counterparty.agentId,
      timeout_hours: 4,
      ...extra,
    };
    return this.expect(
      await this.request('POST', '/escrow/create', body, creator.apiKey),
      201,
      'create escrow',
    );
  }

  async pending(agent: DemoAgent): Promise<Json[]> {
    return this.expect(await this.request('GET', '/escrow/pending', undefined, agent.apiKey), 200, 'pending')
      .escrows as Json[];
  }

  async escrow(agent: DemoAgent, escrowId: string): Promise<Json> {
    return this.expect(
      await this.request('GET', `/escrow/${escrowId}`, undefined, agent.apiKey),
      200,
      'get escrow',
    );
  }

  async act(
    action: 'complete' | 'release' | 'decline' | 'reject' | 'cancel' | 'consent-cancel',
    agent: DemoAgent,
    escrowId: string,
    body: Json = {},
  ): Promise<Answer> {
    const answer = await this.request('POST', `/escrow/${action}/${escrowId}`, body, agent.apiKey);
    this.expect(answer, 200, action);
    return answer;
  }

  async waitForStatus(
    agent: DemoAgent,
    escrowId: string,
    statuses: readonly string[],
    timeoutMs: number,
  ): Promise<string> {
    const deadlineMs = Date.now() + timeoutMs;
    for (;;) {
      const status = (await this.escrow(agent, escrowId)).status as string;
      if (statuses.includes(status)) return status;
      if (Date.now() > deadlineMs) throw new Error(`escrow ${escrowId} is still ${status}`);
      await sleep(100);
    }
  }

  async postJob(poster: DemoAgent, body: Json): Promise<Json> {
    return this.expect(await this.request('POST', '/jobs', body, poster.apiKey), 201, 'post job');
  }

  async bid(worker: DemoAgent, jobId: string, priceUsd: number, etaMinutes: number): Promise<Json> {
    return this.expect(
      await this.request(
        'POST',
        `/jobs/${jobId}/bids`,
        { price_usd: priceUsd, eta_minutes: etaMinutes },
        worker.apiKey,
      ),
      201,
      'bid',
    );
  }

  async job(agent: DemoAgent, jobId: string): Promise<Json> {
    return this.expect(await this.request('GET', `/jobs/${jobId}`, undefined, agent.apiKey), 200, 'get job');
  }

  async award(poster: DemoAgent, jobId: string, body: Json): Promise<Json> {
    return this.expect(await this.request('POST', `/jobs/${jobId}/award`, body, poster.apiKey), 200, 'award');
  }

  /** Completes an escrow; answers the status (409 when a race was already won and this escrow cancelled). */
  async tryComplete(worker: DemoAgent, escrowId: string, resultSummary: string): Promise<Answer> {
    return this.request(
      'POST',
      `/escrow/complete/${escrowId}`,
      { result_summary: resultSummary },
      worker.apiKey,
    );
  }

  async waitForJob(
    agent: DemoAgent,
    jobId: string,
    done: (job: Json) => boolean,
    timeoutMs: number,
  ): Promise<Json> {
    const deadlineMs = Date.now() + timeoutMs;
    for (;;) {
      const job = await this.job(agent, jobId);
      if (done(job)) return job;
      if (Date.now() > deadlineMs) throw new Error(`job ${jobId} is still ${String(job.status)}`);
      await sleep(100);
    }
  }

  /** Rates the other party of a released escrow (once); answers the status. */
  async rate(agent: DemoAgent, escrowId: string, score: number, comment: string): Promise<Answer> {
    return this.request('POST', `/escrow/${escrowId}/rating`, { score, comment }, agent.apiKey);
  }

  /** The agent's signed receipts for one settlement, waiting until the first is issued. */
  async receipts(agent: DemoAgent, settlementId: string, waitMaxMs: number): Promise<Json[]> {
    const deadlineMs = Date.now() + waitMaxMs;
    for (;;) {
      const answer = this.expect(
        await this.request('GET', `/receipts?settlement_id=${settlementId}`, undefined, agent.apiKey),
        200,
        'receipts',
      );
      const receipts = answer.receipts as Json[];
      if (receipts.length > 0 || Date.now() > deadlineMs) return receipts;
      await sleep(100);
    }
  }

  /** The published receipt keys (`/.well-known/receipts-key`). */
  async receiptKeys(): Promise<Json> {
    return this.expect(await this.request('GET', '/.well-known/receipts-key'), 200, 'receipt keys');
  }

  async reputation(agentId: string): Promise<Json> {
    return this.expect(await this.request('GET', `/agents/${agentId}/reputation`), 200, 'reputation');
  }

  async balance(agent: DemoAgent): Promise<Json> {
    return this.expect(
      await this.request('GET', '/api/v1/auth/balance', undefined, agent.apiKey),
      200,
      'balance',
    );
  }

  /** Spendable plus held, in micro-dollars: what the agent owns. */
  async balancesMicros(agents: readonly DemoAgent[]): Promise<Map<string, bigint>> {
    const balances = new Map<string, bigint>();
    for (const agent of agents) {
      const balance = await this.balance(agent);
      balances.set(
        agent.agentId,
        parseUsd(String(balance.total_usd), { field: 'total_usd', allowZero: true }),
      );
    }
    return balances;
  }

  /** A sub-key with a spending mandate, made with the agent's main key (the key is shown once). */
  async createKey(agent: DemoAgent, mandate: Json): Promise<{ keyId: string; apiKey: string }> {
    const body = this.expect(
      await this.request('POST', '/api/v1/auth/keys', mandate, agent.apiKey),
      201,
      'create key',
    );
    return { keyId: body.key_id as string, apiKey: body.api_key as string };
  }

  /** A direct payment made with any key (the agent's or a sub-key); the answer as it came. */
  pay(apiKey: string, to: DemoAgent, amountUsd: number, memo: string): Promise<Answer> {
    return this.request(
      'POST',
      '/api/v1/pay',
      { to_agent_id: to.agentId, amount_usd: amountUsd, memo },
      apiKey,
      {
        'idempotency-key': crypto.randomUUID(),
      },
    );
  }

  private async request(
    method: string,
    path: string,
    body?: Json,
    key?: string,
    extraHeaders: Record<string, string> = {},
  ): Promise<Answer> {
    const headers: Record<string, string> = { ...extraHeaders };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (key) headers.authorization = `Bearer ${key}`;
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    return { status: response.status, body: (await response.json()) as Json };
  }

  private expect(answer: Answer, status: number, what: string): Json {
    if (answer.status !== status)
      throw new Error(`${what}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.body;
  }
}
