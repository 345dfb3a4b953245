/**
 * `npm run bench:event-store`: the event store's own numbers, each printed beside the raw
 * Postgres figure of the same run on the same database:
 * - append throughput at concurrency 1 and 16 (one event per append, new stream each time)
 *   vs plain single-row INSERT commits with `pg`;
 * - outbox publish lag (commit → message on the JetStream subject) at ~1,000 events/s, with
 *   the in-process wake-up and with polling only (what another replica's relay sees);
 * Rebuild rates are measured by `npm run bench:ops`, through the replay operators run (this
 * bench's own rebuild loop went with libs/event-store's unused projection runner).
 * Creates its own database and NATS prefix and removes both. Prints numbers; never asserts.
 */
import { randomUUID } from 'node:crypto';
import { SubjectPrefix } from '@pf/contracts';
import { EventStore, eventStoreMigrations, OutboxRelay, type NewEvent } from '@pf/event-store';
import { connectTestNats, createTestDatabase, deletePrefixedStreams, testNatsPrefix } from '@pf/testing';
import { jetstreamManager } from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/nats-core';
import { DataSource } from 'typeorm';
import { formatRow, percentile, rawInsertRate, runLoad, type LoadResult } from './bench-kit.js';

const SCHEMA = 'casino';
const APPEND_DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 5_000);
const LAG_EVENTS_PER_SECOND = 1_000;
const LAG_DURATION_MS = 5_000;
const LAG_WORKERS = 8;
const ACCOUNTS = 1_000;
/** The type of the bench's events (a transfer between two of ACCOUNTS). */
const TRANSFERRED_EVENT_TYPE = 'transferred';

interface Context {
  databaseUrl: string;
  dataSource: DataSource;
  store: EventStore;
  nats: NatsConnection;
  prefix: SubjectPrefix;
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const database = await createTestDatabase('benchevents');
  const prefixValue = testNatsPrefix();
  const nats = await connectTestNats();
  const dataSource = await openDataSource(database.url, 16);
  try {
    const context: Context = {
      databaseUrl: database.url,
      dataSource,
      store: new EventStore({ dataSource, schema: SCHEMA }),
      nats,
      prefix: new SubjectPrefix(prefixValue),
    };
    const appends = await benchAppends(context);
    const lags = await benchPublishLag(context);
    printReport(appends, lags, Date.now() - startedAt);
  } finally {
    await dataSource.destroy().catch(() => undefined);
    await deletePrefixedStreams(nats, prefixValue).catch(() => undefined);
    await nats.close();
    await database.drop();
  }
}

async function openDataSource(url: string, poolMax: number): Promise<DataSource> {
  const dataSource = new DataSource({
    type: 'postgres',
    url,
    schema: SCHEMA,
    migrations: eventStoreMigrations(SCHEMA),
    migrationsTableName: 'migrations',
    synchronize: false,
    logging: false,
    extra: { max: poolMax, application_name: 'bench-event-store', statement_timeout: 60_000 },
  });
  await dataSource.initialize();
  await dataSource.query(`CREATE SCHEMA IF NOT EXISTS "${SCHEMA}"`);
  await dataSource.runMigrations({ transaction: 'each' });
  return dataSource;
}

function transfer(index: number): NewEvent {
  return {
    eventId: randomUUID(),
    type: TRANSFERRED_EVENT_TYPE,
    data: {
      fromAccountId: `acct-${index % ACCOUNTS}`,
      toAccountId: `acct-${(index * 7 + 1) % ACCOUNTS}`,
      amountMicros: String(1_000 + (index % 997)),
    },
    metadata: { correlationId: `bench-${index}`, schemaVersion: 1 },
  };
}

interface AppendFigures {
  concurrency: number;
  raw: LoadResult;
  append: LoadResult;
  /** The same append inside `store.transaction` (what a command with inline projections pays). */
  inTransaction?: LoadResult;
}

async function benchAppends({ databaseUrl, store }: Context): Promise<AppendFigures[]> {
  const figures: AppendFigures[] = [];
  for (const concurrency of [1, 16]) {
    const raw = await rawInsertRate(databaseUrl, concurrency, APPEND_DURATION_MS);
    const append = await runLoad(concurrency, APPEND_DURATION_MS, async (_, index) => {
      await store.append(`bench-${concurrency}-${index}`, 0, [transfer(index)]);
    });
    const inTransaction =
      concurrency === 16
        ? await runLoad(concurrency, APPEND_DURATION_MS, async (_, index) => {
            await store.transaction((runner) =>
              store.appendInTransaction(runner, `bench-tx-${index}`, 0, [transfer(index)]),
            );
          })
        : undefined;
    figures.push({ concurrency, raw, append, inTransaction });
    process.stderr.write(
      `appends c${concurrency}: ${append.perSecond.toFixed(0)}/s (raw ${raw.perSecond.toFixed(0)}/s)\n`,
    );
  }
  return figures;
}

interface LagFigures {
  mode: string;
  events: number;
  ratePerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  duplicates: number;
}

async function benchPublishLag(context: Context): Promise<LagFigures[]> {
  const manager = await jetstreamManager(context.nats);
  await manager.streams.add({
    name: context.prefix.streamName('CASINO_EVENTS'),
    subjects: [context.prefix.subject('casino.events.>')],
    duplicate_window: nanos(120_000),
  });
  await context.dataSource.query(`DELETE FROM "${SCHEMA}".outbox`);
  // In-process wake-up: the relay runs beside the appender, as in a service.
  const woken = await measureLag(context, context.store, 'relay in the appending process (woken on commit)');
  // Polling only: the relay's store is another instance, so it never hears of these commits.
  const pollingStore = new EventStore({ dataSource: context.dataSource, schema: SCHEMA });
  const polled = await measureLag(context, pollingStore, 'relay in another replica (20 ms poll only)');
  return [woken, polled];
}

async function measureLag(context: Context, relayStore: EventStore, mode: string): Promise<LagFigures> {
  const committedAtMs = new Map<string, number>();
  const receivedAtMs = new Map<string, number>();
  const decoder = new TextDecoder();
  const subscription = context.nats.subscribe(context.prefix.subject('casino.events.>'), {
    callback: (_error, message) => {
      const id = (JSON.parse(decoder.decode(message.data)) as { id: string }).id;
      receivedAtMs.set(id, performance.now());
    },
  });
  const relay = new OutboxRelay({
    store: relayStore,
    service: 'casino',
    connection: context.nats,
    prefix: context.prefix,
    idlePollMs: 20,
  });
  relay.start();
  const total = Math.round((LAG_EVENTS_PER_SECOND * LAG_DURATION_MS) / 1000);
  const intervalMs = 1000 / LAG_EVENTS_PER_SECOND;
  const startedAt = performance.now();
  let next = 0;
  // Open loop: event i is due at start + i ms whatever the previous appends took.
  await Promise.all(
    Array.from({ length: LAG_WORKERS }, async () => {
      while (next < total) {
        const index = next++;
        const waitMs = startedAt + index * intervalMs - performance.now();
        if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
        const result = await context.store.append(`lag-${randomUUID()}`, 0, [transfer(index)]);
        committedAtMs.set(result.events[0]!.eventId, performance.now());
      }
    }),
  );
  const sentDurationMs = performance.now() - startedAt;
  const deadline = performance.now() + 10_000;
  while (receivedAtMs.size < total && performance.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 20));
  await relay.stop();
  subscription.unsubscribe();
  const lagsMs = [...committedAtMs].map(([id, committed]) =>
    Math.max(0, (receivedAtMs.get(id) ?? Number.POSITIVE_INFINITY) - committed),
  );
  lagsMs.sort((a, b) => a - b);
  process.stderr.write(
    `publish lag (${mode}): p50 ${percentile(lagsMs, 0.5).toFixed(1)} ms, p99 ${percentile(lagsMs, 0.99).toFixed(1)} ms\n`,
  );
  return {
    mode,
    events: total,
    ratePerSecond: (total / sentDurationMs) * 1000,
    p50Ms: percentile(lagsMs, 0.5),
    p99Ms: percentile(lagsMs, 0.99),
    maxMs: lagsMs.at(-1) ?? 0,
    duplicates: relay.stats.duplicates,
  };
}

function printReport(appends: AppendFigures[], lags: LagFigures[], totalMs: number): void {
  const percent = (part: number, whole: number) => `${((part / whole) * 100).toFixed(0)}%`;
  console.log(
    `\n### Appends (${APPEND_DURATION_MS / 1000} s per figure, one event per append, pool size = concurrency)\n`,
  );
  console.log(
    '| concurrency | raw INSERT commits/s | append/s | append / raw | append p50 ms | append p99 ms | append in `transaction()`/s |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const { concurrency, raw, append, inTransaction } of appends) {
    console.log(
      formatRow([
        concurrency,
        raw.perSecond,
        append.perSecond,
        percent(append.perSecond, raw.perSecond),
        append.p50Ms,
        append.p99Ms,
        inTransaction
          ? `${formatRow([inTransaction.perSecond]).slice(2, -2)} (${percent(inTransaction.perSecond, raw.perSecond)})`
          : '–',
      ]),
    );
  }
  console.log(
    `\n### Outbox publish lag, commit → message on JetStream (~${LAG_EVENTS_PER_SECOND} events/s for ${LAG_DURATION_MS / 1000} s)\n`,
  );
  console.log('| relay | events | offered rate/s | p50 ms | p99 ms | max ms | duplicate acks |');
  console.log('|---|---|---|---|---|---|---|');
  for (const lag of lags)
    console.log(
      formatRow([lag.mode, lag.events, lag.ratePerSecond, lag.p50Ms, lag.p99Ms, lag.maxMs, lag.duplicates]),
    );
  console.log(`\n(whole run ${(totalMs / 1000).toFixed(0)} s)`);
}

await main();
