/**
 * `npm run bench:floor`: what this machine's parts cost on their own, at concurrency 16 — the
 * floor under every service benchmark. Side by side, in one run:
 *   - raw single-row INSERT commits (the yardstick of bench:ledger and bench:escrow);
 *   - NATS request/reply to a responder that only echoes (no service code at all);
 *   - JetStream publishes with acks and a Nats-Msg-Id (what the outbox relay does per event);
 *   - HTTP POST of a small JSON body to a node:http server in its own process that answers with
 *     JSON (keep-alive, the client bench:escrow uses): what each of a lifecycle's three HTTP
 *     requests costs before the gateway does anything;
 *   - NATS request/reply to a responder in its own process that commits each request durably
 *     before answering: the requests waiting when a commit starts share it (one multi-row
 *     INSERT, one commit in flight, as casino runs its ledger batches; with 3 in flight it cost
 *     40% more per request) — the least any durable command service must do, and the ceiling
 *     for bench:ledger's holds (which also read, lock, check and publish).
 * A ledger hold needs one request/reply, one publish and its share of a transaction; an escrow
 * lifecycle five request/replies, six publishes, three HTTP requests and ~5 commits. Prints a
 * Markdown table.
 */
import { fork } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { createTestDatabase, deletePrefixedStreams, testNatsPrefix, waitFor } from '@pf/testing';
import {
  connectLoadNats,
  formatRow,
  machineJiffies,
  measureCpu,
  rawInsertRate,
  runLoad,
  type LoadResult,
} from './bench-kit.js';

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 4_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);

async function main(): Promise<void> {
  const database = await createTestDatabase('benchfloor');
  const prefix = testNatsPrefix();
  const requester = await connectLoadNats();
  const responder = await connectLoadNats();
  const payload = new TextEncoder().encode(
    JSON.stringify({
      holdId: 'bench-16-000123',
      from: 'ag_0123456789ab',
      amountMicros: '1000',
      service: 'bench',
    }),
  );
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

    const committingSubject = `${prefix}.floor.commit`;
    const committer = fork(process.argv[1]!, ['committing-responder', committingSubject, database.url], {
      stdio: 'inherit',
    });
    let committed: LoadResult & { busy: number };
    try {
      await waitFor(
        'committing responder',
        async () =>
          await requester.request(committingSubject, payload, { timeout: 1_000 }).then(
            () => true,
            () => false,
          ),
        { timeoutMs: 10_000 },
      );
      committed = await measured(() =>
        runLoad(CONCURRENCY, DURATION_MS, async () => {
          await requester.request(committingSubject, payload, { timeout: 5_000 });
        }),
      );
    } finally {
      committer.kill('SIGTERM');
    }

    const httpServer = fork(process.argv[1]!, ['http-echo'], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    let overHttp: LoadResult & { busy: number };
    try {
      const port = await new Promise<number>((resolve) =>
        httpServer.once('message', (message) => resolve(Number(message))),
      );
      const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
      const body = new TextDecoder().decode(payload);
      overHttp = await measured(() => runLoad(CONCURRENCY, DURATION_MS, () => postJson(agent, port, body)));
      agent.destroy();
    } finally {
      httpServer.kill('SIGTERM');
    }

    const rows: Array<[string, LoadResult & { busy: number }]> = [
      ['raw single-row INSERT commits (pg)', raw],
      ['NATS request/reply, echo responder', requestReply],
      ['JetStream publish with ack (Nats-Msg-Id)', publish],
      ['NATS request/reply, responder commits each request (batched)', committed],
      ['HTTP POST, JSON echo server (node:http, keep-alive)', overHttp],
    ];
    console.log(`\nFloor at concurrency ${CONCURRENCY} (${DURATION_MS / 1000} s each)\n`);
    console.log(
      '| operation | per second | p50 ms | p99 ms | errors | machine busy | machine CPU per operation |',
    );
    console.log('|---|---|---|---|---|---|---|');
    for (const [name, result] of rows) {
      const cpuMicros = (result.busy * CORES * 1e6) / result.perSecond;
      console.log(
        formatRow([
          name,
          result.perSecond,
          result.p50Ms,
          result.p99Ms,
          result.errors,
          `${(result.busy * 100).toFixed(0)}%`,
          `${cpuMicros.toFixed(0)} µs`,
        ]),
      );
    }
  } finally {
    await deletePrefixedStreams(requester, prefix).catch(() => undefined);
    await requester.close();
    await responder.close();
    await database.drop();
  }
}

const CORES = machineJiffies().cores;

/** Runs a load and adds the share of the whole machine's CPU that was busy meanwhile. */
async function measured(load: () => Promise<LoadResult>): Promise<LoadResult & { busy: number }> {
  const { cpu, ...result } = await measureCpu(load);
  return { ...result, busy: cpu.machineBusy };
}

/**
 * The child process of the last row: answers each request only once a row for it is committed.
 * Requests queue while a commit runs; the next commit takes everything queued (one INSERT of
 * many rows), one commit in flight at a time, as casino runs its ledger batches.
 */
async function committingResponder(subject: string, databaseUrl: string): Promise<void> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  await pool.query(
    'CREATE TABLE IF NOT EXISTS bench_floor_commits (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, payload text NOT NULL)',
  );
  const nats = await connectLoadNats();
  const queue: Array<{ respond: (data: Uint8Array) => boolean; data: Uint8Array }> = [];
  let running = 0;
  const start = (): void => {
    while (queue.length > 0 && running < 1) {
      const batch = queue.splice(0, 64);
      running += 1;
      void pool
        .query('INSERT INTO bench_floor_commits (payload) SELECT unnest($1::text[])', [
          batch.map((item) => new TextDecoder().decode(item.data)),
        ])
        .then(() => batch.forEach((item) => item.respond(item.data)))
        .finally(() => {
          running -= 1;
          start();
        });
    }
  };
  nats.subscribe(subject, {
    callback: (_error, message) => {
      queue.push({ respond: (data) => message.respond(data), data: message.data });
      start();
    },
  });
  await nats.flush();
  process.once('SIGTERM', () => {
    void nats
      .close()
      .then(() => pool.end())
      .then(() => process.exit(0));
  });
}

/** One JSON POST on a keep-alive connection; rejects on anything but 200. */
function postJson(agent: http.Agent, port: number, body: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        host: '127.0.0.1',
        port,
        path: '/echo',
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          JSON.parse(Buffer.concat(chunks).toString('utf8'));
          if (response.statusCode === 200) resolve();
          else reject(new Error(`status ${response.statusCode}`));
        });
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

/** The child process of the HTTP row: parses each JSON body and answers with it; tells the parent its port. */
function httpEcho(): void {
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const text = JSON.stringify(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      response.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
      });
      response.end(text);
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.send!((server.address() as AddressInfo).port));
  process.once('SIGTERM', () => server.close(() => process.exit(0)));
}

if (process.argv[2] === 'http-echo') {
  httpEcho();
} else if (process.argv[2] === 'committing-responder') {
  committingResponder(process.argv[3]!, process.argv[4]!).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
} else {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
