import type { NatsConnection } from '@nats-io/transport-node';
import { casinoCommands, SubjectPrefix } from '@pf/contracts';
import { CommandClient } from '@pf/messaging';
import {
  connectTestNats,
  createTestDatabase,
  startSystem,
  testNatsPrefix,
  testNatsUrl,
  type TestDatabase,
  type TestSystem,
} from '@pf/testing';
import { runOps } from './testing.js';

const ADMIN_API_KEY = 'ops-system-admin-key-0123456789';

/**
 * `ops verify` and `ops replay` over the whole system: a real workload through the gateway
 * (deposit, faucet claim, escrows released and left funded), then the cross-service invariants
 * (every funded escrow has its live hold, every treasury transfer has its claim) are broken on
 * purpose through the ledger's own commands, and verify must name the ids involved.
 */
describe('ops verify and replay across casino, faucet and escrow', () => {
  let database: TestDatabase;
  let system: TestSystem;
  let nats: NatsConnection;
  let ledger: CommandClient;
  const prefix = testNatsPrefix();
  const env = () => ({ DATABASE_URL: database.url, NATS_URL: testNatsUrl(), NATS_PREFIX: prefix });

  async function http(
    method: string,
    path: string,
    body?: unknown,
    key?: string,
  ): Promise<Record<string, unknown>> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (key) headers.authorization = `Bearer ${key}`;
    const response = await fetch(`${system.gatewayUrl}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await response.json()) as Record<string, unknown>;
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
    return json;
  }

  beforeAll(async () => {
    database = await createTestDatabase('opssystem');
    system = await startSystem({
      ...env(),
      ADMIN_API_KEY,
      FAUCET_IP_LIMIT_PER_DAY: '0',
      RATE_LIMIT_PER_IP_PER_MINUTE: '0',
    });
    nats = await connectTestNats();
    ledger = new CommandClient({ connection: nats, prefix: new SubjectPrefix(prefix), timeoutMs: 10_000 });
  }, 60_000);

  afterAll(async () => {
    await system?.stop(); // also deletes the run's streams
    await nats?.close();
    await database?.drop();
  });

  it('passes on a healthy system, replays every service, and names each broken cross-service invariant', async () => {
    const creator = await http('POST', '/api/v1/auth/register', {});
    const worker = await http('POST', '/api/v1/auth/register', {});
    await http(
      'POST',
      '/admin/credit',
      { agent_id: creator.agent_id, amount_usd: 20, reference: 'ops-system' },
      ADMIN_API_KEY,
    );
    await http('POST', '/faucet/claim', { agent_casino_id: worker.agent_id });
    const job = { description: 'label 100 images', counterparty_agent_id: worker.agent_id };
    const paid = await http('POST', '/escrow/create', { ...job, amount_usd: 5 }, creator.api_key as string);
    await http(
      'POST',
      `/escrow/complete/${String(paid.escrow_id)}`,
      { result_summary: 'done' },
      worker.api_key as string,
    );
    await http('POST', `/escrow/release/${String(paid.escrow_id)}`, undefined, creator.api_key as string);
    const open = await http('POST', '/escrow/create', { ...job, amount_usd: 3 }, creator.api_key as string);

    const healthy = await runOps(['verify', 'all', '--grace', '0'], env());
    expect(healthy.stderr + healthy.stdout).toMatch(/no violations/);
    expect(healthy.code).toBe(0);
    const replay = await runOps(['replay', 'all'], env());
    expect(replay.code).toBe(0);

    // Money unlocked behind the escrow's back, and treasury money paid without a claim.
    await ledger.request(casinoCommands.void, { holdId: open.escrow_id, service: 'ops-test' });
    const strayTransfer = `stray-${String(worker.agent_id)}`;
    await ledger.request(casinoCommands.transfer, {
      transferId: strayTransfer,
      from: 'faucet_treasury',
      to: worker.agent_id,
      amountMicros: '1000000',
      reason: 'faucet_claim',
      service: 'faucet',
    });

    const broken = await runOps(['verify', 'all', '--grace', '0'], env());
    expect(broken.code).toBe(1);
    const report = broken.stdout + broken.stderr;
    expect(report).toContain(String(open.escrow_id));
    expect(report).toContain(strayTransfer);
    expect(report).not.toContain(String(paid.escrow_id));
  }, 120_000);
});
