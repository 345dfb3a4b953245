/**
 * `npm run bench:market`: the job board's throughput through the whole system (gateway →
 * market → escrow → casino over NATS, Postgres), beside the raw single-row INSERT commit rate
 * of the same Postgres measured in the same run. One job cycle is five HTTP calls: post a job,
 * one bid, award it (the market creates and funds the escrow), the worker completes, the poster
 * releases. Cycles per second at concurrency 16 for BENCH_DURATION_MS (default 15 s), CPU per
 * cycle per service, p50/p99 per call. Starts its own system and removes it. Prints; never asserts.
 */
import http from 'node:http';
import { createTestDatabase, startSystem, testNatsPrefix, testNatsUrl } from '@pf/testing';
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

const ADMIN_API_KEY = 'bench-market-admin-key-0123456789';
const CONCURRENCY = 16;
const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 15_000);
const RAW_CONCURRENCY = 16;
const RAW_DURATION_MS = 3_000;
const CALLS = ['post', 'bid', 'award', 'complete', 'release'] as const;
type Call = (typeof CALLS)[number];

interface Agent {
  id: string;
  key: string;
}

async function main(): Promise<void> {
  const database = await createTestDatabase('benchmarket');
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
    },
    ['casino', 'escrow', 'market', 'gateway'],
  );
  try {
    const raw = await rawInsertRate(database.url, RAW_CONCURRENCY, RAW_DURATION_MS);
    process.stderr.write(
      `raw INSERT commits: ${raw.perSecond.toFixed(0)}/s at concurrency ${RAW_CONCURRENCY}\n`,
    );
    const api = new Http(system.gatewayUrl);
    const pairs = await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        const [poster, worker] = await Promise.all([api.register(), api.register()]);
        await api.send(
          'POST',
          '/admin/credit',
          { agent_id: poster.id, amount_usd: 100_000, reference: `bench-${poster.id}` },
          ADMIN_API_KEY,
        );
        return { poster, worker };
      }),
    );
    const { load, latencies, cpu } = await measureCpu(() => benchCycles(api, pairs), {
      gateway: system.services.gateway.child.pid,
      market: system.services.market.child.pid,
      escrow: system.services.escrow.child.pid,
      casino: system.services.casino.child.pid,
    });
    api.close();
    printReport(raw, load, latencies, cpu, poolMax);
  } finally {
    await system.stop();
    await database.drop();
  }
}

async function benchCycles(api: Http, pairs: Array<{ poster: Agent; worker: Agent }>) {
  const latencies: Record<Call, number[]> = { post: [], bid: [], award: [], complete: [], release: [] };
  const timed = async (call: Call, run: () => Promise<Record<string, unknown>>) => {
    const startedAt = performance.now();
    const answer = await run();
    latencies[call].push(performance.now() - startedAt);
    return answer;
  };
  const load = await runLoad(CONCURRENCY, DURATION_MS, async (index) => {
    const { poster, worker } = pairs[index]!;
    const job = await timed('post', () =>
      api.send(
        'POST',
        '/jobs',
        { title: 'bench job', description: 'benchmark job', budget_usd: 1 },
        poster.key,
        201,
      ),
    );
    const jobId = job.job_id as string;
    const bid = await timed('bid', () =>
      api.send('POST', `/jobs/${jobId}/bids`, { price_usd: 1, eta_minutes: 5 }, worker.key, 201),
    );
    const awarded = await timed('award', () =>
      api.send('POST', `/jobs/${jobId}/award`, { bid_id: bid.bid_id }, poster.key),
    );
    const escrowId = (awarded.awards as Array<{ escrow_id: string }>)[0]!.escrow_id;
    await timed('complete', () =>
      api.send('POST', `/escrow/complete/${escrowId}`, { result_summary: 'done' }, worker.key),
    );
    await timed('release', () => api.send('POST', `/escrow/release/${escrowId}`, {}, poster.key));
  });
  for (const values of Object.values(latencies)) values.sort((a, b) => a - b);
  return { load, latencies };
}

function printReport(
  raw: LoadResult,
  load: LoadResult,
  latencies: Record<Call, number[]>,
  cpu: CpuUse,
  poolMax: string,
): void {
  console.log(
    `\nJob cycles through the gateway: post → bid → award → complete → release (concurrency ${CONCURRENCY}, ${load.operations} cycles in ${(load.durationMs / 1000).toFixed(1)} s, DB_POOL_MAX=${poolMax})\n`,
  );
  console.log('| job cycles/s | errors | raw INSERT commits/s (c=16) | cycles / raw |');
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
    `\nCPU per job cycle (from /proc; the machine was ${(cpu.machineBusy * 100).toFixed(0)}% busy)\n`,
  );
  console.log(`| machine | ${services.map(([name]) => name).join(' | ')} | everything else |`);
  console.log(`|---|${services.map(() => '---|').join('')}---|`);
  const servicesSeconds = services.reduce((sum, [, seconds]) => sum + seconds, 0);
  console.log(
    formatRow([
      microsPer(cpu.machineSeconds, load.operations),
      ...services.map(([, seconds]) => microsPer(seconds, load.operations)),
      microsPer(cpu.machineSeconds - servicesSeconds, load.operations),
    ]),
  );
  console.log('\n| call | p50 ms | p99 ms |');
  console.log('|---|---|---|');
  for (const call of CALLS)
    console.log(formatRow([call, percentile(latencies[call], 0.5), percentile(latencies[call], 0.99)]));
}

/** A small JSON client on node:http with keep-alive (cheaper per request than fetch on a shared machine). */
class Http {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

  constructor(private readonly baseUrl: string) {}

  async register(): Promise<Agent> {
    const body = await this.send('POST', '/api/v1/auth/register', {}, undefined, 201);
    return { id: body.agent_id as string, key: body.api_key as string };
  }

  async send(
    method: string,
    path: string,
    body: unknown,
    bearer?: string,
    expectedStatus = 200,
  ): Promise<Record<string, unknown>> {
    const payload = JSON.stringify(body);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(payload)),
    };
    if (bearer) headers.authorization = `Bearer ${bearer}`;
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const request = http.request(
        `${this.baseUrl}${path}`,
        { method, agent: this.agent, headers },
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
    if (status !== expectedStatus) throw new Error(`${path}: ${status} ${text}`);
    return JSON.parse(text) as Record<string, unknown>;
  }

  close(): void {
    this.agent.destroy();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
