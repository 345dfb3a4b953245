import { readFileSync } from 'node:fs';
import { connectTestNats } from '@pf/testing';
import type { NatsConnection } from '@nats-io/nats-core';
import pg from 'pg';

/**
 * Small shared pieces for the benchmarks: a closed-loop load runner with latency percentiles,
 * the raw Postgres commit rate of this machine (the yardstick every figure is printed beside),
 * and an RSS sampler. Benchmarks print numbers; they never assert.
 */

/**
 * A NATS connection for a load generator or a floor process: like the services' own
 * connections (libs/platform), without nats.js's async stack traces, which build an Error for
 * every request. The load generator shares the machine with what it measures, so its waste
 * would be counted against the system (measured in bench:ledger: 88 and 132 µs of machine CPU
 * per hold, two pairs).
 */
export function connectLoadNats(): Promise<NatsConnection> {
  return connectTestNats(undefined, { noAsyncTraces: true });
}

export interface LoadResult {
  concurrency: number;
  operations: number;
  errors: number;
  durationMs: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Runs `operation` from `concurrency` workers until `durationMs` has passed or `maxOperations` ran. */
export async function runLoad(
  concurrency: number,
  durationMs: number,
  operation: (worker: number, index: number) => Promise<void>,
  maxOperations = Number.MAX_SAFE_INTEGER,
): Promise<LoadResult> {
  const latenciesMs: number[] = [];
  let errors = 0;
  let started = 0;
  const startedAt = performance.now();
  const deadline = startedAt + durationMs;
  const worker = async (workerIndex: number) => {
    while (performance.now() < deadline && started < maxOperations) {
      const index = started++;
      const t0 = performance.now();
      try {
        await operation(workerIndex, index);
        latenciesMs.push(performance.now() - t0);
      } catch {
        errors += 1;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, index) => worker(index)));
  const elapsedMs = performance.now() - startedAt;
  latenciesMs.sort((a, b) => a - b);
  return {
    concurrency,
    operations: latenciesMs.length,
    errors,
    durationMs: elapsedMs,
    perSecond: (latenciesMs.length / elapsedMs) * 1000,
    p50Ms: percentile(latenciesMs, 0.5),
    p99Ms: percentile(latenciesMs, 0.99),
    maxMs: latenciesMs.at(-1) ?? 0,
  };
}

export function percentile(sortedMs: readonly number[], fraction: number): number {
  if (sortedMs.length === 0) return 0;
  return sortedMs[Math.min(sortedMs.length - 1, Math.floor(fraction * sortedMs.length))]!;
}

/** Plain single-row INSERT commits (autocommit, one per statement) at the given concurrency. */
export async function rawInsertRate(
  databaseUrl: string,
  concurrency: number,
  durationMs: number,
): Promise<LoadResult> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: concurrency });
  try {
    await pool.query(
      'CREATE TABLE IF NOT EXISTS bench_raw_inserts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, payload text NOT NULL)',
    );
    return await runLoad(concurrency, durationMs, async () => {
      await pool.query('INSERT INTO bench_raw_inserts (payload) VALUES ($1)', ['x'.repeat(64)]);
    });
  } finally {
    await pool.query('DROP TABLE IF EXISTS bench_raw_inserts').catch(() => undefined);
    await pool.end();
  }
}

/** Resident set size of a process in MB, from /proc (Linux). */
export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) / 1024 : 0;
}

/** Samples a process's RSS every `intervalMs` and remembers the peak. */
export function rssPeakSampler(pid: number, intervalMs = 100): { peakMb: () => number; stop: () => void } {
  let peak = rssMb(pid);
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssMb(pid));
    } catch {
      // The process exited; keep the peak seen so far.
    }
  }, intervalMs);
  return { peakMb: () => peak, stop: () => clearInterval(timer) };
}

export function formatRow(cells: ReadonlyArray<string | number>): string {
  return `| ${cells.map((cell) => (typeof cell === 'number' ? formatNumber(cell) : cell)).join(' | ')} |`;
}

export function formatNumber(value: number): string {
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  return value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(2);
}

/** CPU time spent while a load ran: the whole machine's, and some processes' (from /proc, Linux). */
export interface CpuUse {
  /** Busy CPU-seconds of all cores together (user, system, interrupts). */
  machineSeconds: number;
  /** Share of the machine that was busy, 0..1. */
  machineBusy: number;
  /** CPU-seconds of each process named in `measureCpu`'s `pids`. */
  processSeconds: Record<string, number>;
}

/** Runs `load` and adds the CPU it cost the machine (and each of `pids`) meanwhile. */
export async function measureCpu<T>(
  load: () => Promise<T>,
  pids: Record<string, number | undefined> = {},
): Promise<T & { cpu: CpuUse }> {
  const named = Object.entries(pids).filter((entry): entry is [string, number] => entry[1] !== undefined);
  const before = machineJiffies();
  const processesBefore = named.map(([, pid]) => processJiffies(pid));
  const result = await load();
  const after = machineJiffies();
  const processesAfter = named.map(([, pid]) => processJiffies(pid));
  const total = after.total - before.total;
  const busy = total - (after.idle - before.idle);
  return {
    ...result,
    cpu: {
      machineSeconds: busy / CLOCK_TICKS,
      machineBusy: total > 0 ? busy / total : 0,
      processSeconds: Object.fromEntries(
        named.map(([name], index) => [
          name,
          (processesAfter[index]! - processesBefore[index]!) / CLOCK_TICKS,
        ]),
      ),
    },
  };
}

/** Microseconds of CPU per operation: `seconds` spread over `operations`. */
export function microsPer(seconds: number, operations: number): string {
  return operations > 0 ? `${Math.round((seconds * 1e6) / operations)} µs` : '–';
}

/** Linux's USER_HZ: /proc reports CPU time in these ticks. */
const CLOCK_TICKS = 100;

/** Jiffies of all CPUs together: total, and idle + iowait. */
export function machineJiffies(): { total: number; idle: number; cores: number } {
  const lines = readFileSync('/proc/stat', 'utf8').split('\n');
  const fields = lines[0]!.trim().split(/\s+/).slice(1).map(Number);
  const cores = lines.filter((line) => /^cpu\d+ /.test(line)).length;
  return { total: fields.reduce((sum, value) => sum + value, 0), idle: fields[3]! + (fields[4] ?? 0), cores };
}

/** User + system jiffies of one process (all its threads). */
function processJiffies(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}
