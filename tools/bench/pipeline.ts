/**
 * `npm run bench:pipeline`: what group commit costs and saves. The same commands (load a short
 * stream by folding, decide, append one event) run through CommandPipeline with and without
 * `groupCommit`, at concurrency 1 and 16, each for BENCH_DURATION_MS (default 3 s), with an
 * outbox relay publishing the events to JetStream meanwhile. Per configuration: commands/s,
 * latency p50/p99, CPU per command of this process and of the Postgres backends serving it,
 * and the statements and round trips per command (the pipeline's) and per event (the relay's),
 * counted on the pg client. Creates its own database and NATS prefix and removes both.
 * Prints a Markdown table; never asserts.
 */
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { SubjectPrefix } from '@pf/contracts';
import {
  CommandPipeline,
  EventStore,
  eventStoreMigrations,
  loadByFolding,
  OutboxRelay,
  type GroupCommitOptions,
  type RecordedEvent,
} from '@pf/event-store';
import { connectTestNats, createTestDatabase, deletePrefixedStreams, testNatsPrefix } from '@pf/testing';
import { jetstreamManager } from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/nats-core';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { formatRow, runLoad, type LoadResult } from './bench-kit.js';

const SCHEMA = 'casino';
const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 3_000);
const POOL_MAX = Number(process.env.DB_POOL_MAX ?? 4);
/** Events per stream before a worker moves to a fresh stream: the fold stays short. */
const EVENTS_PER_STREAM = 8;
const COMMANDS_APP = 'bench-pipeline-commands';
const RELAY_APP = 'bench-pipeline-relay';

interface Configuration {
  label: string;
  concurrency: number;
  groupCommit?: GroupCommitOptions;
}

const CONFIGURATIONS: Configuration[] = [
  { label: 'off', concurrency: 1 },
  { label: 'on', concurrency: 1, groupCommit: {} },
  { label: 'off', concurrency: 16 },
  { label: 'on', concurrency: 16, groupCommit: {} },
  { label: 'on, 2 batches in flight', concurrency: 16, groupCommit: { maxBatchesInFlight: 2 } },
];

/** Statements and round trips sent by the pg clients of one application_name. */
interface Traffic {
  statements: number;
  roundTrips: number;
}

const traffic = new Map<string, Traffic>();

/**
 * Counts on the pg client itself, so nothing the code under test does is missed: every query
 * call, its statements (a simple-protocol text may hold several), and round trips — queries
 * issued in one synchronous burst on one connection (a pipelined send) count as one.
 */
function countQueries(): void {
  const inBurst = new WeakSet<object>();
  const original = pg.Client.prototype.query as (...args: unknown[]) => unknown;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const app = (this as unknown as { connectionParameters?: { application_name?: string } })
      .connectionParameters?.application_name;
    if (app) {
      const counted = traffic.get(app) ?? { statements: 0, roundTrips: 0 };
      traffic.set(app, counted);
      const config = args[0] as string | { text?: string; name?: string; values?: unknown[] };
      const text = typeof config === 'string' ? config : (config.text ?? '');
      const simple = typeof config === 'string' ? args[1] === undefined : !config.name && !config.values;
      counted.statements += simple ? text.split(';').filter((part) => part.trim() !== '').length : 1;
      if (!inBurst.has(this)) {
        inBurst.add(this);
        counted.roundTrips += 1;
        queueMicrotask(() => inBurst.delete(this));
      }
    }
    return original.apply(this, args);
  } as typeof pg.Client.prototype.query;
}

function snapshot(app: string): Traffic {
  return { ...(traffic.get(app) ?? { statements: 0, roundTrips: 0 }) };
}

function since(before: Traffic, app: string): Traffic {
  const now = snapshot(app);
  return { statements: now.statements - before.statements, roundTrips: now.roundTrips - before.roundTrips };
}

interface Deposited {
  type: 'deposited';
  amountMicros: bigint;
}

const balanceDecider = {
  initialState: () => 0n,
  evolve: (balance: bigint, event: Deposited) => balance + event.amountMicros,
};

interface RunResult {
  configuration: Configuration;
  load: LoadResult;
  processCpuMicros: number;
  postgresCpuMicros: number;
  relayPostgresCpuMicros: number;
  commands: Traffic;
  relay: Traffic;
  relayed: number;
  averageBatch: number;
}

async function main(): Promise<void> {
  countQueries();
  const database = await createTestDatabase('benchpipeline');
  const prefixValue = testNatsPrefix();
  const prefix = new SubjectPrefix(prefixValue);
  const nats = await connectTestNats();
  const commands = await openDataSource(database.url, POOL_MAX, COMMANDS_APP, true);
  const relaySource = await openDataSource(database.url, 2, RELAY_APP, false);
  try {
    const manager = await jetstreamManager(nats);
    await manager.streams.add({
      name: prefix.streamName('CASINO_EVENTS'),
      subjects: [prefix.subject('casino.events.>')],
      duplicate_window: nanos(120_000),
    });
    const results: RunResult[] = [];
    for (const configuration of CONFIGURATIONS)
      results.push(await run(configuration, commands, relaySource, nats, prefix));
    printReport(results);
  } finally {
    await commands.destroy().catch(() => undefined);
    await relaySource.destroy().catch(() => undefined);
    await deletePrefixedStreams(nats, prefixValue).catch(() => undefined);
    await nats.close();
    await database.drop();
  }
}

async function run(
  configuration: Configuration,
  commands: DataSource,
  relaySource: DataSource,
  nats: NatsConnection,
  prefix: SubjectPrefix,
): Promise<RunResult> {
  const store = new EventStore({ dataSource: commands, schema: SCHEMA });
  const relayStore = new EventStore({ dataSource: relaySource, schema: SCHEMA });
  const pipeline = new CommandPipeline(store, { groupCommit: configuration.groupCommit });
  // The relay wakes on commits of its own store: forward the commands' commits to it, as one
  // process's store would.
  const relay = new OutboxRelay({ store: relayStore, service: 'casino', connection: nats, prefix });
  const unsubscribe = store.onCommitted(() => relay.wake());
  relay.start();
  const runId = randomUUID().slice(0, 8);
  const deposit = (worker: number, index: number) => {
    const streamId = `acct-${runId}-${worker}-${Math.floor(index / EVENTS_PER_STREAM)}`;
    return pipeline.execute({
      streamId,
      load: (runner) =>
        loadByFolding(store, runner, streamId, balanceDecider, (recorded: RecordedEvent) => ({
          type: 'deposited' as const,
          amountMicros: BigInt(recorded.data.amountMicros as string),
        })),
      decide: () => [{ type: 'deposited' as const, amountMicros: 1_000n }],
      encode: (event) => ({ type: event.type, data: { amountMicros: event.amountMicros.toString() } }),
      reply: (decision) => decision.recorded.length,
    });
  };
  // Warm up: connections open, statements prepared, JIT done.
  await deposit(0, 0);
  await runLoad(configuration.concurrency, 300, async (worker, index) => {
    await deposit(worker, index);
  });
  await waitForEmptyOutbox(commands);
  const pids = await backendPids(commands, COMMANDS_APP);
  const relayPids = await backendPids(commands, RELAY_APP);
  const commandsBefore = snapshot(COMMANDS_APP);
  const relayBefore = snapshot(RELAY_APP);
  const publishedBefore = relay.stats.published;
  const passesBefore = relay.stats.passes;
  const cpuBefore = process.cpuUsage();
  const postgresBefore = sumJiffies(pids);
  const relayPostgresBefore = sumJiffies(relayPids);
  // Each worker counts its own commands so that streams stay per worker.
  const counters = Array.from({ length: configuration.concurrency }, () => 1_000_000);
  const load = await runLoad(configuration.concurrency, DURATION_MS, async (worker) => {
    counters[worker]! += 1;
    await deposit(worker, counters[worker]!);
  });
  const cpu = process.cpuUsage(cpuBefore);
  const postgresJiffies = sumJiffies(pids) - postgresBefore;
  const commandTraffic = since(commandsBefore, COMMANDS_APP);
  await pipeline.drain();
  await waitForEmptyOutbox(commands);
  // The relay is read once it has caught up: its figures are per event it published.
  const relayPostgresJiffies = sumJiffies(relayPids) - relayPostgresBefore;
  await relay.stop();
  unsubscribe();
  const relayed = relay.stats.published - publishedBefore;
  const passes = relay.stats.passes - passesBefore;
  return {
    configuration,
    load,
    processCpuMicros: (cpu.user + cpu.system) / load.operations,
    postgresCpuMicros: (postgresJiffies * 10_000) / load.operations,
    relayPostgresCpuMicros: (relayPostgresJiffies * 10_000) / Math.max(relayed, 1),
    commands: commandTraffic,
    relay: since(relayBefore, RELAY_APP),
    relayed,
    averageBatch: passes > 0 ? relayed / passes : 0,
  };
}

async function waitForEmptyOutbox(dataSource: DataSource): Promise<void> {
  for (let attempt = 0; attempt < 500; attempt += 1) {
    const [row] = await dataSource.query(`SELECT count(*)::int AS n FROM "${SCHEMA}".outbox`);
    if (row.n === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('the outbox did not drain');
}

/** The Postgres backends of one pool (their CPU is the database's share of its work). */
async function backendPids(dataSource: DataSource, app: string): Promise<number[]> {
  const rows: Array<{ pid: number }> = await dataSource.query(
    'SELECT pid FROM pg_stat_activity WHERE application_name = $1',
    [app],
  );
  return rows.map((row) => row.pid);
}

function sumJiffies(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += Number(fields[11]) + Number(fields[12]);
    } catch {
      // Not on this machine's /proc (a remote database): reported as 0.
    }
  }
  return total;
}

async function openDataSource(url: string, max: number, app: string, migrate: boolean): Promise<DataSource> {
  const dataSource = new DataSource({
    type: 'postgres',
    url,
    schema: SCHEMA,
    migrations: eventStoreMigrations(SCHEMA),
    migrationsTableName: 'migrations',
    synchronize: false,
    logging: false,
    // As libs/platform's createDataSource opens it for the services.
    extra: {
      max,
      application_name: app,
      statement_timeout: 60_000,
      // Connections stay open for the whole run: the backends' CPU is read by process id.
      idleTimeoutMillis: 0,
      pipeline: true,
      options: '-c default_transaction_isolation=read\\ committed',
    },
  });
  await dataSource.initialize();
  if (migrate) {
    await dataSource.query(`CREATE SCHEMA IF NOT EXISTS "${SCHEMA}"`);
    await dataSource.runMigrations({ transaction: 'each' });
  }
  return dataSource;
}

function printReport(results: readonly RunResult[]): void {
  console.log(
    `\nCommandPipeline: fold a short stream, decide, append one event; relay publishing meanwhile (${DURATION_MS / 1000} s per row, DB_POOL_MAX=${POOL_MAX})\n`,
  );
  console.log(
    '| group commit | concurrency | commands/s | p50 ms | p99 ms | errors | CPU/command (process) | CPU/command (Postgres backends) | statements/command | round trips/command | relay statements/event | relay round trips/event | relay events/pass | relay Postgres CPU/event |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const result of results) {
    const operations = Math.max(result.load.operations, 1);
    const relayed = Math.max(result.relayed, 1);
    console.log(
      formatRow([
        result.configuration.label,
        result.configuration.concurrency,
        result.load.perSecond,
        result.load.p50Ms,
        result.load.p99Ms,
        result.load.errors,
        `${Math.round(result.processCpuMicros)} µs`,
        `${Math.round(result.postgresCpuMicros)} µs`,
        result.commands.statements / operations,
        result.commands.roundTrips / operations,
        result.relay.statements / relayed,
        result.relay.roundTrips / relayed,
        result.averageBatch,
        `${Math.round(result.relayPostgresCpuMicros)} µs`,
      ]),
    );
  }
}

await main();
