import { spawn } from 'node:child_process';
import path from 'node:path';
import {
  createTestDatabase,
  startSystem,
  testNatsPrefix,
  testNatsUrl,
  waitFor,
  workspaceRoot,
  type TestDatabase,
  type TestSystem,
} from '@pf/testing';
import { ApiClient, missingKeys } from './api-client.js';

const ADMIN_API_KEY = 'compat-e2e-admin-key-0123456789';
const COMMAND_TIMEOUT_MS = 1_000;
/** Time a 503 may take beyond the command timeout: one HTTP round trip and scheduling on a busy box. */
const UNAVAILABLE_SLACK_MS = 1_500;

type Json = Record<string, unknown>;

/**
 * Code written for the public services runs unchanged with only its base URL changed
 * (API.md): the marketplace article's Python `requests` flow and the starter kit's JavaScript
 * `fetch` flow, transcribed call by call, against all four apps. Then the demo, and a service
 * going down.
 */
describe('compatibility with existing clients', () => {
  let database: TestDatabase;
  let system: TestSystem;
  let api: ApiClient;
  const prefix = testNatsPrefix();

  beforeAll(async () => {
    database = await createTestDatabase('compat');
    system = await startSystem({
      DATABASE_URL: database.url,
      NATS_URL: testNatsUrl(),
      NATS_PREFIX: prefix,
      ADMIN_API_KEY,
      // The default faucet limit (1 claim per address a day): every client here is 127.0.0.1,
      // as on a new user's machine, and the article's and the starter kit's claims must succeed.
      COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS),
    });
    api = new ApiClient(system.gatewayUrl);
  }, 60_000);

  afterAll(async () => {
    system?.services.casino.child.kill('SIGCONT');
    await system?.stop(); // also deletes the run's streams
    await database?.drop();
  });

  /** Python `requests`: `json=` sets Content-Type; `headers=` may carry it without a body. */
  const requests = {
    post: async (
      url: string,
      headers: Record<string, string>,
      json?: unknown,
    ): Promise<{ status: number; json: () => Json }> => {
      const response = await fetch(`${system.gatewayUrl}${url}`, {
        method: 'POST',
        headers: json === undefined ? headers : { ...headers, 'Content-Type': 'application/json' },
        body: json === undefined ? undefined : JSON.stringify(json),
      });
      const body = (await response.json()) as Json;
      return { status: response.status, json: () => body };
    },
    get: async (
      url: string,
      headers: Record<string, string> = {},
    ): Promise<{ status: number; json: () => Json }> => {
      const response = await fetch(`${system.gatewayUrl}${url}`, { headers });
      const body = (await response.json()) as Json;
      return { status: response.status, json: () => body };
    },
  };

  it("runs the article's flow: bash register, Python create / poll / complete / release", async () => {
    // Step 1 (bash): `-d {}` and `jq -r .agent.id`, `.agent.api_key`.
    const curlRegister = async () =>
      (await requests.post('/api/v1/auth/register', { 'Content-Type': 'application/json' }, {})).json()
        .agent as Json;
    const orch = await curlRegister();
    const worker = await curlRegister();
    const [ORCH_ID, ORCH_KEY, WORKER_ID, WORKER_KEY] = [
      orch.id as string,
      orch.api_key as string,
      worker.id as string,
      worker.api_key as string,
    ];
    const claim = await requests.post(
      '/faucet/claim',
      { 'Content-Type': 'application/json' },
      { agent_casino_id: WORKER_ID },
    );
    expect(claim.json()).toMatchObject({ credited: 1 });
    await api.credit(ADMIN_API_KEY, ORCH_ID, 10);

    // Step 2: create_job.
    const orchHeaders = { 'Content-Type': 'application/json', Authorization: `Bearer ${ORCH_KEY}` };
    const job = (
      await requests.post('/escrow/create', orchHeaders, {
        amount_usd: 5.0,
        description: 'Analyze BTC price correlation with gold over 30 days',
        counterparty_agent_id: WORKER_ID,
        timeout_hours: 4,
      })
    ).json();
    expect(job).toMatchObject({
      escrow_id: expect.stringMatching(/^esc_[0-9a-f]{16}$/),
      status: 'funded',
      amount_usd: 5,
      commission_usd: 0.05,
      net_to_counterparty: 4.95,
      timeout_hours: 4,
    });
    const escrowId = job.escrow_id as string;

    // Step 3: check_for_jobs → `resp.json().get("escrows", [])`, `job['description']`, `job['amount_usd']`.
    const jobs = (await requests.get('/escrow/pending', { Authorization: `Bearer ${WORKER_KEY}` })).json()
      .escrows as Json[];
    expect(jobs).toEqual([
      expect.objectContaining({
        escrow_id: escrowId,
        description: 'Analyze BTC price correlation with gold over 30 days',
        amount_usd: 5,
      }),
    ]);

    // Step 4: complete_task (json= result_summary).
    const completed = await requests.post(
      `/escrow/complete/${escrowId}`,
      { Authorization: `Bearer ${WORKER_KEY}` },
      { result_summary: 'BTC/Gold correlation: 0.34 over 30d' },
    );
    expect(completed.status).toBe(200);

    // The orchestrator loop: poll GET /escrow/{id} with its headers, then release with headers only
    // (Content-Type: application/json and no body).
    let result: Json | undefined;
    for (let polls = 0; polls < 20 && !result; polls += 1) {
      const status = (await requests.get(`/escrow/${escrowId}`, orchHeaders)).json().status;
      if (status === 'completed')
        result = (await requests.post(`/escrow/release/${escrowId}`, orchHeaders)).json();
    }
    expect(result).toMatchObject({
      status: 'released',
      released_to_counterparty: 4.95,
      commission: 0.05,
      amount_released: 4.95,
      counterparty_id: WORKER_ID,
    });

    // Anyone can poll the status without a key.
    expect((await requests.get(`/escrow/${escrowId}`)).json()).toMatchObject({
      escrow_id: escrowId,
      status: 'released',
      amount_usd: 5,
    });
    expect(await api.balanceUsd(WORKER_KEY)).toBe(5.95);
    expect(await api.balanceUsd(ORCH_KEY)).toBe(5);
  });

  it("runs the starter kit's JavaScript flow: flat register body, referral codes, $0.50 escrow", async () => {
    // registerAgent(name, referral): flat `agent_id`, `api_key`, `referral_code`; an unknown code ("STARTER") is ignored.
    const post = async (url: string, body: unknown, apiKey: string | null = null) => {
      const headers: Record<string, string> = { 'Content-Type': 'application/json' };
      if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
      const res = await fetch(`${system.gatewayUrl}${url}`, {
        method: 'POST',
        headers,
        body: JSON.stringify(body),
      });
      const json = (await res.json()) as Json;
      if (!res.ok && json.error)
        throw new Error(`${String(json.error)}: ${String(json.message ?? '(no message)')}`);
      return json;
    };
    const get = async (url: string, apiKey: string | null = null) => {
      const headers: Record<string, string> = {};
      if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
      return (await (await fetch(`${system.gatewayUrl}${url}`, { headers })).json()) as Json;
    };

    const agentA = await post('/api/v1/auth/register', {
      agent_name: `payer_${Date.now()}`,
      referral_code: 'STARTER',
    });
    const agentB = await post('/api/v1/auth/register', {
      agent_name: `worker_${Date.now()}`,
      referral_code: agentA.referral_code,
    });
    expect(agentB.referred_by).toBe(agentA.agent_id);
    expect(
      await post('/faucet/claim', { agent_casino_id: agentA.agent_id, referral_code: 'STARTER' }),
    ).toMatchObject({ credited: 1, claim_id: expect.any(String) });
    expect(
      await post('/faucet/claim', { agent_casino_id: agentB.agent_id, referral_code: agentA.referral_code }),
    ).toMatchObject({ credited: 1 });

    const balA = await get('/api/v1/auth/balance', agentA.api_key as string);
    expect(balA.balance_usd ?? balA.balance).toBe(1);

    const escrow = await post(
      '/escrow/create',
      {
        amount_usd: 0.5,
        description: 'Write a 100-word summary of Bitcoin',
        counterparty_agent_id: agentB.agent_id,
        timeout_hours: 24,
        referral_code: 'STARTER',
      },
      agentA.api_key as string,
    );
    expect(escrow).toMatchObject({
      amount_usd: 0.5,
      commission_usd: 0.005,
      net_to_counterparty: 0.495,
      status: 'funded',
      auto_release_at: expect.any(String),
    });
    const completion = await post(
      `/escrow/complete/${String(escrow.escrow_id)}`,
      {},
      agentB.api_key as string,
    );
    expect(completion).toMatchObject({ status: 'completed', message: expect.any(String) });
    const release = await post(`/escrow/release/${String(escrow.escrow_id)}`, {}, agentA.api_key as string);
    expect(release.released_to_counterparty ?? release.net_to_counterparty).toBe(0.495);
    expect(release).toMatchObject({ commission_paid: 0.005, commission_usd: 0.005 });
    const status = await get(`/escrow/${String(escrow.escrow_id)}`);
    expect(status.status).toBe('released');

    const finalA = await get('/api/v1/auth/balance', agentA.api_key as string);
    const finalB = await get('/api/v1/auth/balance', agentB.api_key as string);
    expect(Number(finalA.balance_usd ?? finalA.balance ?? 0).toFixed(2)).toBe('0.50');
    expect(finalB.balance_usd).toBe(1.495);
  });

  it('answers as /openapi.json documents for the escrow and faucet routes', async () => {
    const document = (
      await api.get<{
        paths: Record<
          string,
          Record<string, { responses: Record<string, { content?: Record<string, { example?: unknown }> }> }>
        >;
      }>('/openapi.json')
    ).body;
    const example = (route: string, method: string) =>
      Object.values(document.paths[route]![method]!.responses)[0]!.content!['application/json']!.example;
    const creator = await api.register();
    const worker = await api.register();
    const claim = await api.post('/faucet/claim', { agent_casino_id: creator.agentId });
    const created = await api.post(
      '/escrow/create',
      { amount_usd: 0.5, description: 'check the docs', counterparty_agent_id: worker.agentId },
      creator.apiKey,
    );
    const id = created.body.escrow_id as string;
    const pending = await api.get('/escrow/pending', worker.apiKey);
    const completed = await api.post(`/escrow/complete/${id}`, {}, worker.apiKey);
    const released = await api.post(`/escrow/release/${id}`, {}, creator.apiKey);
    const answers: Array<[string, string, unknown]> = [
      ['/faucet/claim', 'post', claim.body],
      ['/faucet/stats', 'get', (await api.get('/faucet/stats')).body],
      ['/escrow/create', 'post', created.body],
      ['/escrow/pending', 'get', pending.body],
      ['/escrow/complete/{id}', 'post', completed.body],
      ['/escrow/release/{id}', 'post', released.body],
      ['/escrow/{id}', 'get', (await api.get(`/escrow/${id}`, creator.apiKey)).body],
      ['/escrow/stats', 'get', (await api.get('/escrow/stats')).body],
    ];
    for (const [route, method, body] of answers)
      expect({ route, missing: missingKeys(example(route, method), body) }).toEqual({ route, missing: [] });
  });

  it('runs `npm run demo` (the article scenario) against the system, and its balances add up', async () => {
    const entry = path.join(workspaceRoot(), 'dist', 'tools', 'demo', 'marketplace.js');
    const child = spawn(process.execPath, [entry], {
      env: { PATH: process.env.PATH ?? '', GATEWAY_URL: system.gatewayUrl, ADMIN_API_KEY },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect({ code, output }).toEqual({ code: 0, output: expect.stringContaining('demo: OK') });
    expect(output).toMatch(/awarded to worker-beta at \$3\.8/);
    expect(output.match(/: won, escrow released/g)).toHaveLength(1);
    expect(output.match(/: lost, escrow refunded/g)).toHaveLength(2);
    // Reputation (ADR 0015): worker-beta was paid in run 1, so its profile shows it.
    expect(output).toMatch(/worker-beta +score +[\d.]+ \| won [12], completed [12], released [12],/);
    expect(output.match(/a second rating → already_rated/g)).toHaveLength(2);
    // The winner's signed receipt verifies with the published key (ADR 0020).
    expect(output).toMatch(
      /receipt rcpt_[0-9a-f]{32}: \d+ µ\$ to worker-beta, signed by rk_[0-9a-f]{16}: verifies/,
    );
    expect(output).not.toMatch(/✗/);
  }, 60_000);

  it('answers 503 service_unavailable within COMMAND_TIMEOUT_MS when a service hangs or stops', async () => {
    const agent = await api.register();
    const balance = () => api.get('/api/v1/auth/balance', agent.apiKey);
    expect((await balance()).status).toBe(200);

    // Frozen: requests reach no reply; each waits the command timeout, never longer.
    system.services.casino.child.kill('SIGSTOP');
    try {
      const startedAtMs = Date.now();
      const hung = await balance();
      const elapsedMs = Date.now() - startedAtMs;
      expect(hung).toMatchObject({ status: 503, body: { error: 'service_unavailable', service: 'casino' } });
      expect(elapsedMs).toBeGreaterThanOrEqual(COMMAND_TIMEOUT_MS - 50);
      expect(elapsedMs).toBeLessThan(COMMAND_TIMEOUT_MS + UNAVAILABLE_SLACK_MS);
      // The gateway itself stays healthy: its own checks do not depend on casino.
      expect((await api.get('/health')).status).toBe(200);
    } finally {
      system.services.casino.child.kill('SIGCONT');
    }
    await waitFor('casino answers again', async () => (await balance()).status === 200, {
      timeoutMs: 10_000,
      intervalMs: 100,
    });

    // Stopped: no responders, so the answer is immediate.
    await system.services.casino.stop();
    const startedAtMs = Date.now();
    const stopped = await balance();
    expect(stopped).toMatchObject({ status: 503, body: { error: 'service_unavailable' } });
    expect(Date.now() - startedAtMs).toBeLessThan(COMMAND_TIMEOUT_MS + UNAVAILABLE_SLACK_MS);
    const register = await api.post('/api/v1/auth/register', {});
    expect(register).toMatchObject({
      status: 503,
      body: { error: 'service_unavailable', message: expect.stringContaining('casino') },
    });
  });
});
