import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  connectTestNats,
  createTestDatabase,
  deletePrefixedStreams,
  startSystem,
  testNatsPrefix,
  testNatsUrl,
  type TestDatabase,
  type TestSystem,
} from '@pf/testing';
import { ApiClient } from './api-client.js';

const API_MD_TOOLS = [
  'register_agent',
  'get_balance',
  'claim_faucet',
  'create_escrow',
  'list_pending_escrows',
  'get_escrow',
  'complete_escrow',
  'mark_complete',
  'release_escrow',
  'decline_escrow',
  'dispute_escrow',
  'reject_escrow',
  'cancel_escrow',
  'consent_cancel_escrow',
  'escrow_stats',
  'escrow_stats_history',
  'post_job',
  'list_jobs',
  'get_job',
  'place_bid',
  'withdraw_bid',
  'award_job',
  'cancel_job',
  'get_reputation',
  'leaderboard',
  'rate_agent',
  'create_key',
  'list_keys',
  'revoke_key',
  'pay_agent',
  'get_receipt',
  'create_webhook',
  'list_webhooks',
  'delete_webhook',
  'list_webhook_deliveries',
  'test_webhook',
];

interface ToolAnswer {
  isError: boolean;
  body: Record<string, unknown>;
}

/**
 * `POST /mcp` with the SDK's own client, configured as in the article
 * (`{"type": "streamable-http", "url": ".../mcp"}`): tools listed and called, results equal to
 * the HTTP API's JSON, failures as tool errors carrying `{error, message}`.
 */
describe('MCP over streamable HTTP', () => {
  let database: TestDatabase;
  let system: TestSystem;
  let api: ApiClient;
  const prefix = testNatsPrefix();
  const clients: Client[] = [];

  /** A client; with a key it sends `Authorization: Bearer <key>` on every request. */
  const connect = async (apiKey?: string): Promise<Client> => {
    const transport = new StreamableHTTPClientTransport(new URL(`${system.gatewayUrl}/mcp`), {
      requestInit: apiKey ? { headers: { authorization: `Bearer ${apiKey}` } } : undefined,
    });
    const client = new Client({ name: 'e2e-agent', version: '1.0.0' });
    await client.connect(transport);
    clients.push(client);
    return client;
  };

  const call = async (
    client: Client,
    name: string,
    args: Record<string, unknown> = {},
  ): Promise<ToolAnswer> => {
    const result = (await client.callTool({ name, arguments: args })) as {
      isError?: boolean;
      content: Array<{ type: string; text: string }>;
    };
    const text = result.content.find((item) => item.type === 'text')!.text;
    return { isError: result.isError === true, body: JSON.parse(text) as Record<string, unknown> };
  };

  beforeAll(async () => {
    database = await createTestDatabase('mcp');
    system = await startSystem(
      {
        DATABASE_URL: database.url,
        NATS_URL: testNatsUrl(),
        NATS_PREFIX: prefix,
        FAUCET_IP_LIMIT_PER_DAY: '0',
      },
      ['casino', 'faucet', 'escrow', 'gateway'],
    );
    api = new ApiClient(system.gatewayUrl);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
    await system?.stop();
    const nats = await connectTestNats();
    await deletePrefixedStreams(nats, prefix).catch(() => undefined);
    await nats.close();
    await database?.drop();
  });

  it('lists every tool of API.md, each with a described input schema', async () => {
    const client = await connect();
    expect(client.getServerVersion()?.name).toBe('agent-marketplace');
    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name).sort()).toEqual([...API_MD_TOOLS].sort());
    const create = tools.find((tool) => tool.name === 'create_escrow')!;
    expect(create.inputSchema.required).toEqual(['amount_usd', 'description', 'counterparty_agent_id']);
    expect(create.inputSchema.properties).toMatchObject({
      amount_usd: { type: ['number', 'string'] },
      casino_api_key: { type: 'string' },
    });
    expect(tools.find((tool) => tool.name === 'get_balance')!.annotations?.readOnlyHint).toBe(true);
    // Every tool says what it returns, and the server how to use them.
    for (const tool of tools)
      expect(tool.outputSchema).toMatchObject({ type: 'object', properties: expect.any(Object) });
    expect(tools.find((tool) => tool.name === 'release_escrow')!.outputSchema!.required).toEqual(
      expect.arrayContaining(['released_to_counterparty', 'commission']),
    );
    expect(client.getInstructions()).toMatch(
      /register_agent.*casino_api_key.*create_escrow.*release_escrow/s,
    );
  });

  it('runs register → claim → create → complete → release, with the same JSON as the HTTP API', async () => {
    const anonymous = await connect();
    const orchestrator = (await call(anonymous, 'register_agent', { agent_name: 'orchestrator' })).body;
    const worker = (await call(anonymous, 'register_agent', {})).body;
    expect(orchestrator).toMatchObject({
      agent_id: expect.stringMatching(/^ag_/),
      api_key: expect.stringMatching(/^sk_live_/),
      agent: { id: orchestrator.agent_id },
    });
    // Hints name the tools to call, not REST paths.
    expect(JSON.stringify(orchestrator.next_steps)).toMatch(/claim_faucet.*get_balance.*create_escrow/);
    expect(JSON.stringify(orchestrator.next_steps)).not.toMatch(/(GET|POST) \/|Authorization/);

    for (const agent of [orchestrator, worker]) {
      const claim = await call(anonymous, 'claim_faucet', { agent_casino_id: agent.agent_id });
      expect(claim).toMatchObject({ isError: false, body: { credited: 1, agent_id: agent.agent_id } });
    }

    // The orchestrator passes its key as an argument; the worker's client sends the header.
    const created = await call(anonymous, 'create_escrow', {
      amount_usd: 0.5,
      description: 'Analyze BTC/ETH correlation',
      counterparty_agent_id: worker.agent_id,
      timeout_hours: 4,
      casino_api_key: orchestrator.api_key,
    });
    expect(created).toMatchObject({
      isError: false,
      body: { status: 'funded', amount_usd: 0.5, net_to_counterparty: 0.495 },
    });
    const escrowId = created.body.escrow_id as string;
    expect(created.body.next_steps).toMatchObject({
      counterparty: expect.stringContaining(`complete_escrow {"escrow_id": "${escrowId}"}`),
      creator: expect.stringContaining(`release_escrow {"escrow_id": "${escrowId}"}`),
    });
    expect(JSON.stringify(created.body.next_steps)).not.toMatch(/(GET|POST) \//);

    const workerClient = await connect(worker.api_key as string);
    const pending = await call(workerClient, 'list_pending_escrows');
    expect((pending.body.escrows as Array<{ escrow_id: string }>).map((escrow) => escrow.escrow_id)).toEqual([
      escrowId,
    ]);
    expect(
      await call(workerClient, 'complete_escrow', {
        escrow_id: escrowId,
        result_summary: 'correlation 0.81',
      }),
    ).toMatchObject({
      isError: false,
      body: { status: 'completed', result_summary: 'correlation 0.81' },
    });
    const released = await call(anonymous, 'release_escrow', {
      escrow_id: escrowId,
      casino_api_key: orchestrator.api_key,
    });
    expect(released).toMatchObject({
      isError: false,
      body: { status: 'released', released_to_counterparty: 0.495, commission: 0.005 },
    });

    expect((await call(workerClient, 'get_balance')).body).toMatchObject({
      agent_id: worker.agent_id,
      balance_usd: 1.495,
    });
    expect(
      (await call(anonymous, 'get_balance', { casino_api_key: orchestrator.api_key })).body,
    ).toMatchObject({ balance_usd: 0.5 });

    // Same JSON as the route, for a party and for anyone.
    const viaTool = await call(workerClient, 'get_escrow', { escrow_id: escrowId });
    expect(viaTool.body).toEqual((await api.get(`/escrow/${escrowId}`, worker.api_key as string)).body);
    expect((await call(anonymous, 'get_escrow', { escrow_id: escrowId })).body).toEqual(
      (await api.get(`/escrow/${escrowId}`)).body,
    );
    expect((await call(anonymous, 'escrow_stats')).body).toEqual((await api.get('/escrow/stats')).body);
    expect((await call(anonymous, 'escrow_stats_history', { bucket: 'day', limit: 3 })).body).toEqual(
      (await api.get('/escrow/stats/history?bucket=day&limit=3')).body,
    );
  });

  it('serves mark_complete, decline_escrow and dispute_escrow', async () => {
    const creator = await api.register();
    const worker = await api.register();
    await api.post('/faucet/claim', { agent_casino_id: creator.agentId });
    const creatorClient = await connect(creator.apiKey);
    const workerClient = await connect(worker.apiKey);
    const open = async () =>
      (
        await call(creatorClient, 'create_escrow', {
          amount_usd: '0.2',
          description: 'a small job',
          counterparty_agent_id: worker.agentId,
        })
      ).body.escrow_id as string;

    const first = await open();
    expect((await call(workerClient, 'mark_complete', { escrow_id: first })).body).toMatchObject({
      status: 'completed',
    });
    expect(
      (await call(creatorClient, 'dispute_escrow', { escrow_id: first, reason: 'wrong period' })).body,
    ).toMatchObject({ status: 'disputed', reason: 'wrong period' });
    const second = await open();
    expect((await call(workerClient, 'decline_escrow', { escrow_id: second })).body).toMatchObject({
      status: 'refunded',
      amount_refunded: 0.2,
    });
  });

  it('answers failures as tool errors carrying {error, message}', async () => {
    const agent = await api.register();
    const client = await connect(agent.apiKey);
    const expectToolError = async (name: string, args: Record<string, unknown>, code: string) => {
      const answer = await call(client, name, args);
      expect(answer).toMatchObject({ isError: true, body: { error: code, message: expect.any(String) } });
    };
    await expectToolError(
      'create_escrow',
      { amount_usd: 'lots', description: 'x job', counterparty_agent_id: agent.agentId },
      'invalid_amount',
    );
    await expectToolError(
      'create_escrow',
      { amount_usd: 1, description: 'my job', counterparty_agent_id: agent.agentId },
      'self_escrow',
    );
    await expectToolError(
      'create_escrow',
      { amount_usd: 1, description: true, counterparty_agent_id: 'ag_000000000000' },
      'invalid_description',
    );
    await expectToolError('release_escrow', { escrow_id: 'esc_0000000000000000' }, 'not_found');
    await expectToolError('claim_faucet', {}, 'invalid_request');
    await expectToolError('get_balance', { casino_api_key: `sk_live_${'0'.repeat(48)}` }, 'unauthorized');
    const anonymous = await connect();
    expect(await call(anonymous, 'get_balance')).toMatchObject({
      isError: true,
      body: { error: 'unauthorized', message: expect.stringContaining('casino_api_key argument') },
    });
  });

  it('is stateless: no session id, and GET /mcp is 405', async () => {
    const response = await fetch(`${system.gatewayUrl}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 7,
        method: 'tools/call',
        params: { name: 'escrow_stats', arguments: {} },
      }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('mcp-session-id')).toBeNull();
    expect(await response.json()).toMatchObject({ jsonrpc: '2.0', id: 7, result: { isError: false } });
    const get = await fetch(`${system.gatewayUrl}/mcp`, { headers: { accept: 'text/event-stream' } });
    expect(get.status).toBe(405);
    expect(await get.json()).toMatchObject({ error: 'method_not_allowed' });
  });
});
