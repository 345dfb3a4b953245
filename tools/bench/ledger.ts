/**
 * `npm run bench:ledger`: holds per second through casino's NATS commands at concurrency 1,
 * 16 and 64 (one agent per worker, so the figure is the ledger's throughput, not one row
 * lock's), p50/p99 latency, and casino's peak RSS — beside the raw single-row INSERT commit
 * rate of the same Postgres measured in the same run. Also the CPU each hold costs, the whole
 * machine's (casino, Postgres, NATS and the load generator share it) and casino's own: a steadier
 * figure than the rate, which swings with the virtual machine. Prints a Markdown table.
 */
import { casinoCommands, SubjectPrefix, type RegisterReply, newApiKey } from '@pf/contracts';
import { CommandClient } from '@pf/messaging';
import {
  createTestDatabase,
  deletePrefixedStreams,
  spawnService,
  testNatsPrefix,
  testNatsUrl,
} from '@pf/testing';
import {
  connectLoadNats,
  formatRow,
  measureCpu,
  microsPer,
  rawInsertRate,
  rssPeakSampler,
  runLoad,
  type CpuUse,
  type LoadResult,
} from './bench-kit.js';

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 8_000);
const CONCURRENCIES = (process.env.BENCH_CONCURRENCIES ?? '1,16,64').split(',').map(Number);
const HOLD_MICROS = '1000';

async function main(): Promise<void> {
  const database = await createTestDatabase('benchledger');
  const prefix = testNatsPrefix();
  const casino = await spawnService('casino', {
    env: {
      DATABASE_URL: database.url,
      NATS_URL: testNatsUrl(),
      NATS_PREFIX: prefix,
      LOG_LEVEL: 'warn',
      DB_POOL_MAX: process.env.DB_POOL_MAX ?? '8',
      ...(process.env.LEDGER_BATCHES_IN_FLIGHT
        ? { LEDGER_BATCHES_IN_FLIGHT: process.env.LEDGER_BATCHES_IN_FLIGHT }
        : {}),
    },
  });
  const nats = await connectLoadNats();
  try {
    await casino.waitUntilReady();
    const client = new CommandClient({
      connection: nats,
      prefix: new SubjectPrefix(prefix),
      timeoutMs: 30_000,
    });
    const agents = await fundedAgents(client, Math.max(...CONCURRENCIES));
    const rss = rssPeakSampler(casino.child.pid!);

    const rows: Array<{ raw: LoadResult & { cpu: CpuUse }; holds: LoadResult & { cpu: CpuUse } }> = [];
    for (const concurrency of CONCURRENCIES) {
      const raw = await measureCpu(() => rawInsertRate(database.url, concurrency, DURATION_MS / 2));
      const holds = await measureCpu(
        () =>
          runLoad(concurrency, DURATION_MS, async (worker, index) => {
            await client.request(casinoCommands.hold, {
              holdId: `bench-${concurrency}-${index}`,
              from: agents[worker]!,
              amountMicros: HOLD_MICROS,
              service: 'bench',
            });
          }),
        { casino: casino.child.pid },
      );
      rows.push({ raw, holds });
      process.stderr.write(
        `concurrency ${concurrency}: ${holds.perSecond.toFixed(0)} holds/s (raw ${raw.perSecond.toFixed(0)} inserts/s)\n`,
      );
    }
    rss.stop();

    console.log(
      `\nLedger holds through NATS (${DURATION_MS / 1000} s per level, casino DB_POOL_MAX=${process.env.DB_POOL_MAX ?? '8'})\n`,
    );
    console.log(
      '| concurrency | holds/s | p50 ms | p99 ms | errors | raw INSERT commits/s | holds / raw | machine CPU per hold (busy) | casino CPU per hold | machine CPU per raw insert (busy) |',
    );
    console.log('|---|---|---|---|---|---|---|---|---|---|');
    for (const { raw, holds } of rows) {
      console.log(
        formatRow([
          holds.concurrency,
          holds.perSecond,
          holds.p50Ms,
          holds.p99Ms,
          holds.errors,
          raw.perSecond,
          `${((holds.perSecond / raw.perSecond) * 100).toFixed(0)}%`,
          `${microsPer(holds.cpu.machineSeconds, holds.operations)} (${(holds.cpu.machineBusy * 100).toFixed(0)}%)`,
          microsPer(holds.cpu.processSeconds.casino ?? 0, holds.operations),
          `${microsPer(raw.cpu.machineSeconds, raw.operations)} (${(raw.cpu.machineBusy * 100).toFixed(0)}%)`,
        ]),
      );
    }
    console.log(`\ncasino peak RSS: ${rss.peakMb().toFixed(0)} MB`);
  } finally {
    await casino.stop();
    await deletePrefixedStreams(nats, prefix).catch(() => undefined);
    await nats.close();
    await database.drop();
  }
}

/** One agent per worker, each credited far beyond what the run will hold. */
async function fundedAgents(client: CommandClient, count: number): Promise<string[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, index) => {
      const agent = await client.request<RegisterReply>(casinoCommands.register, {
        apiKeySha256: newApiKey().apiKeySha256,
        agentName: `bench-${index}`,
      });
      await client.request(casinoCommands.credit, {
        agentId: agent.agentId,
        amountMicros: '1000000000000',
        reference: `bench-${agent.agentId}`,
      });
      return agent.agentId;
    }),
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
