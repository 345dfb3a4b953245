/**
 * `npm run bench:gateway`: what the HTTP gateway adds to a request. The same read —
 * an agent's balance — measured two ways at concurrency 1, 16 and 64:
 *   - over HTTP: `GET /api/v1/auth/balance` (auth guard from its cache, rate limits off, JSON
 *     mapping, Fastify, keep-alive connections from Node's fetch);
 *   - over NATS directly: `casino.cmd.get_account` with a CommandClient, as the gateway sends it.
 * The difference is the gateway's overhead per request; since the machine is shared, the
 * gateway's own CPU time per request (from /proc) is printed beside the latencies, as the figure
 * that does not depend on what else runs. The gateway's peak RSS is sampled over the whole run.
 * The HTTP client is node:http with keep-alive (lighter than fetch, so the load generator takes
 * less of the CPU it shares with the gateway). Prints a Markdown table; never asserts.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { casinoCommands, SubjectPrefix, type RegisterReply, newApiKey } from '@pf/contracts';
import { CommandClient } from '@pf/messaging';
import {
  connectTestNats,
  createTestDatabase,
  deletePrefixedStreams,
  spawnService,
  testNatsPrefix,
  testNatsUrl,
  type ServiceProcess,
} from '@pf/testing';
import { formatRow, rssMb, rssPeakSampler, runLoad, type LoadResult } from './bench-kit.js';

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 6_000);
/** `BENCH_CONCURRENCIES=16` (comma-separated) measures only those levels. */
const CONCURRENCIES = (process.env.BENCH_CONCURRENCIES ?? '1,16,64').split(',').map(Number);
const WARMUP_REQUESTS = 500;

const CLOCK_TICKS_PER_SECOND = 100;

interface Row {
  http: LoadResult;
  nats: LoadResult;
  gatewayCpuMsPerRequest: number;
}

/** User + system CPU time of a process so far, in ms (Linux /proc, 10 ms resolution). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
}

const keepAliveAgent = new http.Agent({ keepAlive: true, maxSockets: 256 });

function httpGet(url: string, apiKey: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.get(
      url,
      { agent: keepAliveAgent, headers: { authorization: `Bearer ${apiKey}` } },
      (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode ?? 0));
      },
    );
    request.on('error', reject);
  });
}

async function main(): Promise<void> {
  const database = await createTestDatabase('benchgateway');
  const prefix = testNatsPrefix();
  const env = {
    DATABASE_URL: database.url,
    NATS_URL: testNatsUrl(),
    NATS_PREFIX: prefix,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_PER_IP_PER_MINUTE: '0',
    RATE_LIMIT_PER_KEY_PER_MINUTE: '0',
    AUTH_CACHE_TTL_MS: '3000',
  };
  const casino = await spawnService('casino', { env });
  const gateway = await spawnService('gateway', { env });
  const nats = await connectTestNats();
  try {
    await Promise.all([casino.waitUntilReady(), gateway.waitUntilReady()]);
    const client = new CommandClient({
      connection: nats,
      prefix: new SubjectPrefix(prefix),
      timeoutMs: 30_000,
    });
    const { apiKey, apiKeySha256 } = newApiKey();
    const agent = {
      ...(await client.request<RegisterReply>(casinoCommands.register, { apiKeySha256, agentName: 'bench' })),
      apiKey,
    };
    await client.request(casinoCommands.credit, {
      agentId: agent.agentId,
      amountMicros: '1000000000',
      reference: 'bench-gateway',
    });

    const overHttp = () => httpBalance(gateway, agent.apiKey);
    const overNats = async () => {
      await client.request(casinoCommands.getAccount, { agentId: agent.agentId });
    };
    await warmUp(overHttp, overNats);
    const idleRssMb = rssMb(gateway.child.pid!);
    const rss = rssPeakSampler(gateway.child.pid!);
    const rows: Row[] = [];
    for (const concurrency of CONCURRENCIES) {
      const natsResult = await runLoad(concurrency, DURATION_MS, overNats);
      const cpuBeforeMs = cpuMs(gateway.child.pid!);
      const httpResult = await runLoad(concurrency, DURATION_MS, overHttp);
      const gatewayCpuMsPerRequest =
        (cpuMs(gateway.child.pid!) - cpuBeforeMs) / Math.max(1, httpResult.operations);
      rows.push({ http: httpResult, nats: natsResult, gatewayCpuMsPerRequest });
      process.stderr.write(
        `concurrency ${concurrency}: HTTP ${httpResult.perSecond.toFixed(0)}/s p50 ${httpResult.p50Ms.toFixed(2)} ms; NATS ${natsResult.perSecond.toFixed(0)}/s p50 ${natsResult.p50Ms.toFixed(2)} ms\n`,
      );
    }
    rss.stop();
    print(rows, idleRssMb, rss.peakMb());
  } finally {
    keepAliveAgent.destroy();
    await Promise.all([gateway.stop(), casino.stop()]);
    await deletePrefixedStreams(nats, prefix).catch(() => undefined);
    await nats.close();
    await database.drop();
  }
}

async function httpBalance(gateway: ServiceProcess, apiKey: string): Promise<void> {
  const status = await httpGet(`${gateway.url}/api/v1/auth/balance`, apiKey);
  if (status !== 200) throw new Error(`HTTP ${status}`);
}

/** JIT, pools and connections warm before anything is measured. */
async function warmUp(...operations: Array<() => Promise<void>>): Promise<void> {
  for (const operation of operations) await runLoad(16, 60_000, operation, WARMUP_REQUESTS);
}

function print(rows: Row[], idleRssMb: number, peakRssMb: number): void {
  console.log(
    `\nGateway overhead: GET /api/v1/auth/balance vs casino.cmd.get_account over NATS (${DURATION_MS / 1000} s per level)\n`,
  );
  console.log(
    '| concurrency | HTTP req/s | HTTP p50 ms | HTTP p99 ms | NATS req/s | NATS p50 ms | NATS p99 ms | overhead p50 ms | gateway CPU ms/req | errors |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const { http: overHttp, nats, gatewayCpuMsPerRequest } of rows) {
    console.log(
      formatRow([
        overHttp.concurrency,
        overHttp.perSecond,
        overHttp.p50Ms,
        overHttp.p99Ms,
        nats.perSecond,
        nats.p50Ms,
        nats.p99Ms,
        overHttp.p50Ms - nats.p50Ms,
        gatewayCpuMsPerRequest.toFixed(3),
        overHttp.errors + nats.errors,
      ]),
    );
  }
  console.log(
    `\ngateway RSS: ${idleRssMb.toFixed(0)} MB after warm-up, peak ${peakRssMb.toFixed(0)} MB under load (budget 300 MB)`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
