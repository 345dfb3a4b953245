/**
 * `npm run bench:escrow`: escrow throughput through the whole system (gateway → escrow → casino
 * over NATS, Postgres), beside the raw single-row INSERT commit rate of the same Postgres
 * measured in the same run:
 * - full lifecycles per second (create → complete → release over HTTP) at concurrency 32 over
 *   BENCH_LIFECYCLES (default 2,000) escrows, with p50/p99 per endpoint;
 * - the timeout saga: 5,000 funded escrows whose deadlines all fall due at the same instant
 *   (set in one UPDATE, the database's clock), how many the sweeper expires per second and how
 *   late the last one is, and when casino has returned all the money.
 * ESCROW_GROUP_COMMIT_BATCHES, when set, turns on group commit for escrow (ADR 0021).
 * Starts its own system (fresh database and NATS prefix) and removes both. Prints; never asserts.
 */
import { escrowCommands, SubjectPrefix, type EscrowView } from '@pf/contracts';
import { CommandClient } from '@pf/messaging';
import {
  connectTestNats,
  createTestDatabase,
  deletePrefixedStreams,
  startSystem,
  testNatsPrefix,
  testNatsUrl,
  waitFor,
} from '@pf/testing';
import http from 'node:http';
import pg from 'pg';
import {
  formatRow,
  measureCpu,
  microsPer,
  percentile,
  rawInsertRate,
  runLoad,
  type CpuUse,
  type LoadResult,
} from './bench-kit.js';

const ADMIN_API_KEY = 'bench-escrow-admin-key-0123456789';
const CONCURRENCY = 32;
const LIFECYCLES = Number(process.env.BENCH_LIFECYCLES ?? 2_000);
const BURST_DEADLINES = Number(process.env.BENCH_BURST ?? 5_000);
const RAW_CONCURRENCY = 16;
const RAW_DURATION_MS = 4_000;
const ESCROW_USD = 1;
const ENDPOINTS = ['create', 'complete', 'release'] as const;
type Endpoint = (typeof ENDPOINTS)[number];

interface Agent {
  id: string;
  key: string;
}

interface BurstResult {
  deadlines: number;
  expiredPerSecond: number;
  lastLateMs: number;
  p99LateMs: number;
  settledAfterMs: number;
}

async function main(): Promise<void> {
  const database = await createTestDatabase('benchescrow');
  const prefix = testNatsPrefix();
  const poolMax = process.env.DB_POOL_MAX ?? '8';
  const system = await startSystem(
    {
      DATABASE_URL: database.url,
      NATS_URL: testNatsUrl(),
      NATS_PREFIX: prefix,
      LOG_LEVEL: 'warn',
      DB_POOL_MAX: poolMax,
      ADMIN_API_KEY,
      RATE_LIMIT_PER_IP_PER_MINUTE: '0',
      RATE_LIMIT_PER_KEY_PER_MINUTE: '0',
      // Group commit for escrow's commands (ADR 0021), off unless set.
      ...(process.env.ESCROW_GROUP_COMMIT_BATCHES
        ? { ESCROW_GROUP_COMMIT_BATCHES: process.env.ESCROW_GROUP_COMMIT_BATCHES }
        : {}),
    },
    ['casino', 'escrow', 'gateway'],
  );
  const nats = await connectTestNats();
  const sql = new pg.Client({ connectionString: database.url });
  await sql.connect();
  try {
    const raw = await rawInsertRate(database.url, RAW_CONCURRENCY, RAW_DURATION_MS);
    process.stderr.write(
      `raw INSERT commits: ${raw.perSecond.toFixed(0)}/s at concurrency ${RAW_CONCURRENCY}\n`,
    );
    const api = new Http(system.gatewayUrl);
    const pairs = await setUpPairs(api, CONCURRENCY);
    const { load, latencies, cpu } = await measureCpu(() => benchLifecycles(api, pairs), {
      gateway: system.services.gateway.child.pid,
      escrow: system.services.escrow.child.pid,
      casino: system.services.casino.child.pid,
    });
    api.close();
    process.stderr.write(
      `lifecycles: ${load.perSecond.toFixed(0)}/s (${load.operations} in ${(load.durationMs / 1000).toFixed(1)} s, ${load.errors} errors)\n`,
    );
    const client = new CommandClient({
      connection: nats,
      prefix: new SubjectPrefix(prefix),
      timeoutMs: 30_000,
    });
    const burst = await benchDeadlineBurst(client, sql, pairs);
    printReport(raw, load, latencies, cpu, burst, poolMax);
  } finally {
    await sql.end();
    await system.stop();
    await deletePrefixedStreams(nats, prefix).catch(() => undefined);
    await nats.close();
    await database.drop();
  }
}

/** A creator (credited far beyond the run) and a worker per concurrent client. */
async function setUpPairs(http: Http, count: number): Promise<Array<{ creator: Agent; worker: Agent }>> {
  return Promise.all(
    Array.from({ length: count }, async () => {
      const [creator, worker] = await Promise.all([http.register(), http.register()]);
      await http.post(
        '/admin/credit',
        { agent_id: creator.id, amount_usd: 100_000, reference: `bench-${creator.id}` },
        ADMIN_API_KEY,
      );
      return { creator, worker };
    }),
  );
}

async function benchLifecycles(http: Http, pairs: Array<{ creator: Agent; worker: Agent }>) {
  const latencies: Record<Endpoint, number[]> = { create: [], complete: [], release: [] };
  const timed = async <T>(endpoint: Endpoint, call: () => Promise<T>): Promise<T> => {
    const startedAt = performance.now();
    const result = await call();
    latencies[endpoint].push(performance.now() - startedAt);
    return result;
  };
  const load = await runLoad(
    CONCURRENCY,
    10 * 60_000,
    async (worker) => {
      const { creator, worker: counterparty } = pairs[worker]!;
      const created = await timed('create', () =>
        http.post(
          '/escrow/create',
          { amount_usd: ESCROW_USD, description: 'benchmark job', counterparty_agent_id: counterparty.id },
          creator.key,
          201,
        ),
      );
      const escrowId = created.escrow_id as string;
      await timed('complete', () =>
        http.post(`/escrow/complete/${escrowId}`, { result_summary: 'done' }, counterparty.key),
      );
      await timed('release', () => http.post(`/escrow/release/${escrowId}`, undefined, creator.key));
    },
    LIFECYCLES,
  );
  for (const values of Object.values(latencies)) values.sort((a, b) => a - b);
  return { load, latencies };
}

/**
 * Funds BURST_DEADLINES escrows (over NATS, straight to escrow: the setup is not what is
 * measured), makes all their deadlines due at one instant, and watches the saga work through
 * them: each refund's recorded time against the deadline gives the lateness.
 */
async function benchDeadlineBurst(
  client: CommandClient,
  sql: pg.Client,
  pairs: Array<{ creator: Agent; worker: Agent }>,
): Promise<BurstResult> {
  const ids: string[] = [];
  await runLoad(
    CONCURRENCY,
    10 * 60_000,
    async (worker) => {
      const { creator, worker: counterparty } = pairs[worker]!;
      const escrow = await client.request<EscrowView>(escrowCommands.create, {
        creatorId: creator.id,
        counterpartyId: counterparty.id,
        amountMicros: '100000',
        description: 'deadline burst',
        timeoutMs: 3_600_000,
      });
      ids.push(escrow.escrowId);
    },
    BURST_DEADLINES,
  );
  process.stderr.write(`burst: ${ids.length} escrows funded; making their deadlines due now\n`);
  const { rows } = await sql.query<{ due_at: Date }>(
    `WITH due AS (UPDATE escrow.deadlines SET due_at = now() WHERE escrow_id = ANY($1) RETURNING due_at),
          shown AS (UPDATE escrow.escrows SET auto_release_at = now() WHERE escrow_id = ANY($1))
     SELECT min(due_at) AS due_at FROM due`,
    [ids],
  );
  const dueAtMs = rows[0]!.due_at.getTime();
  await waitFor(
    'all deadlines expired',
    async () =>
      (await count(sql, `SELECT count(*)::int AS n FROM escrow.deadlines WHERE escrow_id = ANY($1)`, [
        ids,
      ])) === 0,
    {
      timeoutMs: 300_000,
      intervalMs: 100,
    },
  );
  await waitFor(
    'all refunds settled',
    async () => (await count(sql, `SELECT count(*)::int AS n FROM escrow.settlements`)) === 0,
    { timeoutMs: 300_000, intervalMs: 100 },
  );
  const settledAfterMs = Date.now() - dueAtMs;
  const refunds = await sql.query<{ late_ms: number }>(
    `SELECT extract(epoch FROM (recorded_at - $2::timestamptz)) * 1000 AS late_ms FROM escrow.events
     WHERE type = 'refunded' AND stream_id = ANY($1) ORDER BY recorded_at`,
    [ids.map((id) => `escrow-${id}`), new Date(dueAtMs)],
  );
  const lateMs = refunds.rows.map((row) => Number(row.late_ms)).sort((a, b) => a - b);
  const firstLateMs = lateMs[0] ?? 0;
  const lastLateMs = lateMs.at(-1) ?? 0;
  return {
    deadlines: lateMs.length,
    // From the first refund to the last: the sweeper's rate once it is on it.
    expiredPerSecond: lateMs.length / Math.max((lastLateMs - firstLateMs) / 1000, 0.001),
    lastLateMs,
    p99LateMs: percentile(lateMs, 0.99),
    settledAfterMs,
  };
}

function printReport(
  raw: LoadResult,
  load: LoadResult,
  latencies: Record<Endpoint, number[]>,
  cpu: CpuUse,
  burst: BurstResult,
  poolMax: string,
): void {
  console.log(
    `\nEscrow lifecycles through the gateway (concurrency ${CONCURRENCY}, ${load.operations} lifecycles, DB_POOL_MAX=${poolMax})\n`,
  );
  console.log('| lifecycles/s | errors | raw INSERT commits/s (c=16) | lifecycles / raw |');
  console.log('|---|---|---|---|');
  console.log(
    formatRow([
      load.perSecond,
      load.errors,
      raw.perSecond,
      `${((load.perSecond / raw.perSecond) * 100).toFixed(1)}%`,
    ]),
  );
  const services = Object.entries(cpu.processSeconds);
  console.log(
    `\nCPU per lifecycle (from /proc; the machine was ${(cpu.machineBusy * 100).toFixed(0)}% busy)\n`,
  );
  console.log(
    `| machine | ${services.map(([name]) => name).join(' | ')} | everything else (Postgres, NATS, load generator, kernel) |`,
  );
  console.log(`|---|${services.map(() => '---|').join('')}---|`);
  const servicesSeconds = services.reduce((sum, [, seconds]) => sum + seconds, 0);
  console.log(
    formatRow([
      microsPer(cpu.machineSeconds, load.operations),
      ...services.map(([, seconds]) => microsPer(seconds, load.operations)),
      microsPer(cpu.machineSeconds - servicesSeconds, load.operations),
    ]),
  );
  console.log('\n| endpoint | p50 ms | p99 ms |');
  console.log('|---|---|---|');
  for (const endpoint of ENDPOINTS)
    console.log(
      formatRow([endpoint, percentile(latencies[endpoint], 0.5), percentile(latencies[endpoint], 0.99)]),
    );
  console.log(`\nTimeout saga: ${burst.deadlines} deadlines due at once\n`);
  console.log(
    '| deadlines expired/s | last expired after (ms) | p99 lateness (ms) | all refunds settled on casino after (ms) |',
  );
  console.log('|---|---|---|---|');
  console.log(formatRow([burst.expiredPerSecond, burst.lastLateMs, burst.p99LateMs, burst.settledAfterMs]));
}

async function count(sql: pg.Client, query: string, params: unknown[] = []): Promise<number> {
  return (await sql.query<{ n: number }>(query, params)).rows[0]!.n;
}

/**
 * A tiny JSON client on node:http with keep-alive; any unexpected status is an error. Not
 * fetch: the load generator shares the two cores with the system under test, and undici's
 * fetch costs several times the CPU per request of a plain http.request.
 */
class Http {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

  constructor(private readonly baseUrl: string) {}

  async register(): Promise<Agent> {
    const body = await this.post('/api/v1/auth/register', {}, undefined, 201);
    return { id: body.agent_id as string, key: body.api_key as string };
  }

  async post(
    path: string,
    body: unknown,
    bearer?: string,
    expectedStatus = 200,
  ): Promise<Record<string, unknown>> {
    const payload = body === undefined ? '' : JSON.stringify(body);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(payload)),
    };
    if (bearer) headers.authorization = `Bearer ${bearer}`;
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const request = http.request(
        `${this.baseUrl}${path}`,
        { method: 'POST', agent: this.agent, headers },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () =>
            resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
          );
          response.on('error', reject);
        },
      );
      request.setTimeout(30_000, () => request.destroy(new Error(`${path}: no answer in 30 s`)));
      request.on('error', reject);
      request.end(payload);
    });
    const answer = JSON.parse(text) as Record<string, unknown>;
    if (status !== expectedStatus) throw new Error(`${path}: ${status} ${text}`);
    return answer;
  }

  close(): void {
    this.agent.destroy();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
