/**
 * `npm run bench:floor`: what this machine's parts cost on their own, at concurrency 16 — the
 * floor under every service benchmark. Side by side, in one run:
 *   - raw single-row INSERT commits (the yardstick of bench:ledger and bench:escrow);
 *   - NATS request/reply to a responder that only echoes (no service code at all);
 *   - JetStream publishes with acks and a Nats-Msg-Id (what the outbox relay does per event).
 * A ledger hold needs one request/reply, one publish and its share of a transaction; an escrow
 * lifecycle five request/replies, six publishes, three HTTP requests and ~5 commits. Prints a
 * Markdown table.
 */
import { readFileSync } from 'node:fs';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connectTestNats, createTestDatabase, deletePrefixedStreams, testNatsPrefix } from '@pf/testing';
import { formatRow, rawInsertRate, runLoad, type LoadResult } from './bench-kit.js';

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 4_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);

async function main(): Promise<void> {
  const database = await createTestDatabase('benchfloor');
  const prefix = testNatsPrefix();
  const requester = await connectTestNats();
  const responder = await connectTestNats();
  const payload = new TextEncoder().encode(JSON.stringify({ holdId: 'bench-16-000123', from: 'ag_0123456789ab', amountMicros: '1000', service: 'bench' }));
  try {
    const raw = await measured(() => rawInsertRate(database.url, CONCURRENCY, DURATION_MS));

    const subject = `${prefix}.floor.echo`;
    responder.subscribe(subject, {
      callback: (_error, message) => {
        message.respond(message.data);
      },
    });
    await responder.flush();
    const requestReply = await measured(() =>
      runLoad(CONCURRENCY, DURATION_MS, async () => {
        await requester.request(subject, payload, { timeout: 5_000 });
      }),
    );

    const manager = await jetstreamManager(requester);
    await manager.streams.add({ name: `${prefix}_FLOOR`, subjects: [`${prefix}.floor.events.>`] });
    const js = jetstream(requester);
    const publish = await measured(() =>
      runLoad(CONCURRENCY, DURATION_MS, async (_worker, index) => {
        await js.publish(`${prefix}.floor.events.x`, payload, { msgID: `floor-${index}` });
      }),
    );

    const rows: Array<[string, LoadResult & { busy: number }]> = [
      ['raw single-row INSERT commits (pg)', raw],
      ['NATS request/reply, echo responder', requestReply],
      ['JetStream publish with ack (Nats-Msg-Id)', publish],
    ];
    console.log(`\nFloor at concurrency ${CONCURRENCY} (${DURATION_MS / 1000} s each)\n`);
    console.log('| operation | per second | p50 ms | p99 ms | errors | machine busy | machine CPU per operation |');
    console.log('|---|---|---|---|---|---|---|');
    for (const [name, result] of rows) {
      const cpuMicros = (result.busy * CORES * 1e6) / result.perSecond;
      console.log(formatRow([name, result.perSecond, result.p50Ms, result.p99Ms, result.errors, `${(result.busy * 100).toFixed(0)}%`, `${cpuMicros.toFixed(0)} µs`]));
    }
  } finally {
    await deletePrefixedStreams(requester, prefix).catch(() => undefined);
    await requester.close();
    await responder.close();
    await database.drop();
  }
}

const CORES = cpuTimes().cores;

/** Runs a load and adds the share of the whole machine's CPU that was busy meanwhile (from /proc/stat). */
async function measured(load: () => Promise<LoadResult>): Promise<LoadResult & { busy: number }> {
  const before = cpuTimes();
  const result = await load();
  const after = cpuTimes();
  const total = after.total - before.total;
  return { ...result, busy: total > 0 ? 1 - (after.idle - before.idle) / total : 0 };
}

/** Jiffies of all CPUs (total and idle + iowait) and the number of CPUs. */
function cpuTimes(): { total: number; idle: number; cores: number } {
  const lines = readFileSync('/proc/stat', 'utf8').split('\n');
  const fields = lines[0]!.trim().split(/\s+/).slice(1).map(Number);
  const cores = lines.filter((line) => /^cpu\d+ /.test(line)).length;
  return { total: fields.reduce((sum, value) => sum + value, 0), idle: fields[3]! + (fields[4] ?? 0), cores };
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
