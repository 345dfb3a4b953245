/**
 * `npm run bench:ops`: `ops replay all` over a large casino log, against a raw streaming SELECT
 * of the same log in the same run.
 *
 *   1. a fresh database (dropped at the end), casino migrations applied;
 *   2. BENCH_OPS_EVENTS events (default 1,000,000) written by bulk SQL (seed-casino-log.ts);
 *   3. a raw streaming SELECT of the log (pg-cursor, the columns a replay reads), the baseline;
 *   4. `node dist/apps/ops/src/main.js replay all --json` as a child process: events/s from its
 *      result, peak RSS of the CLI (VmHWM, polled) and of the casino entry (its own maxRSS);
 *   5. the baseline again, and the ratio replay / best baseline.
 * Prints a markdown table for docs/BENCHMARKS.md ("## Ops replay").
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import Cursor from 'pg-cursor';
import { createTestDatabase, workspaceRoot } from '@pf/testing';
import { seedCasinoLog } from './seed-casino-log.js';

const EVENTS = Number(process.env.BENCH_OPS_EVENTS ?? 1_000_000);
const AGENTS = Number(process.env.BENCH_OPS_AGENTS ?? 10_000);
const CURSOR_BATCH = 10_000;
const RSS_POLL_MS = 50;

interface ReplayRun {
  events: number;
  wallMs: number;
  entryEventsPerSecond: number;
  entryMaxRssBytes: number;
  cliMaxRssBytes: number;
}

async function main(): Promise<void> {
  const root = workspaceRoot();
  const database = await createTestDatabase('opsbench');
  const client = new pg.Client({ connectionString: database.url });
  try {
    migrateCasino(root, database.url);
    await client.connect();
    const seedStartedAt = performance.now();
    let lastReport = 0;
    const written = await seedCasinoLog(client, {
      events: EVENTS,
      agents: AGENTS,
      onProgress: (done, total) => {
        if (performance.now() - lastReport < 2_000 && done < total) return;
        lastReport = performance.now();
        process.stderr.write(`seed: ${done}/${total} events\n`);
      },
    });
    const seedMs = performance.now() - seedStartedAt;
    await client.query('VACUUM ANALYZE casino.events');
    process.stderr.write(`seed: ${written} events in ${(seedMs / 1000).toFixed(1)} s\n`);

    const before = await rawSelect(client);
    const replay = await runReplay(root, database.url);
    const after = await rawSelect(client);
    const baseline = Math.max(before, after);
    const replayRate = replay.events / (replay.wallMs / 1000);
    const mb = (bytes: number) => `${Math.round(bytes / 1_048_576)} MB`;
    process.stdout.write(
      [
        `| measure | value |`,
        `|---|---|`,
        `| events in the log | ${written.toLocaleString('en-US')} (${AGENTS.toLocaleString('en-US')} agents) |`,
        `| raw streaming SELECT (pg-cursor, ${CURSOR_BATCH} rows/fetch) | ${Math.round(before).toLocaleString('en-US')} and ${Math.round(after).toLocaleString('en-US')} events/s (before / after the replay) |`,
        `| \`ops replay all\`, wall clock of the CLI | ${(replay.wallMs / 1000).toFixed(1)} s, ${Math.round(replayRate).toLocaleString('en-US')} events/s |`,
        `| replay phase inside the casino entry | ${replay.entryEventsPerSecond.toLocaleString('en-US')} events/s |`,
        `| ratio replay (wall) / raw SELECT (best) | ${((replayRate / baseline) * 100).toFixed(0)}% |`,
        `| peak RSS: casino ops entry / ops CLI | ${mb(replay.entryMaxRssBytes)} / ${mb(replay.cliMaxRssBytes)} |`,
        '',
      ].join('\n'),
    );
  } finally {
    await client.end().catch(() => undefined);
    await database.drop();
  }
}

function migrateCasino(root: string, databaseUrl: string): void {
  const result = spawnSync(
    process.execPath,
    [path.join(root, 'dist/apps/casino/src/main.js'), '--migrate-only'],
    {
      env: { PATH: process.env.PATH ?? '', DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' },
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  if (result.status !== 0) throw new Error(`casino migrations failed: ${result.stderr}`);
}

/** Streams the whole log through a server-side cursor and parses every row; events/s. */
async function rawSelect(client: pg.Client): Promise<number> {
  const startedAt = performance.now();
  const cursor = client.query(
    new Cursor(`SELECT global_position::text AS global_position, transaction_id::text AS transaction_id, stream_id, stream_version,
       event_id::text AS event_id, type, data, metadata, recorded_at FROM casino.events AS e ORDER BY e.global_position`),
  );
  let rows = 0;
  for (;;) {
    const batch = await cursor.read(CURSOR_BATCH);
    if (batch.length === 0) break;
    rows += batch.length;
  }
  await cursor.close();
  const rate = rows / ((performance.now() - startedAt) / 1000);
  process.stderr.write(`raw SELECT: ${rows} rows, ${Math.round(rate)} rows/s\n`);
  return rate;
}

async function runReplay(root: string, databaseUrl: string): Promise<ReplayRun> {
  const startedAt = performance.now();
  const child = spawn(
    process.execPath,
    [path.join(root, 'dist/apps/ops/src/main.js'), 'replay', 'all', '--json'],
    {
      env: { ...process.env, DATABASE_URL: databaseUrl },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  let cliMaxRssBytes = 0;
  const poll = setInterval(
    () => (cliMaxRssBytes = Math.max(cliMaxRssBytes, highWaterMarkBytes(child.pid))),
    RSS_POLL_MS,
  );
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  clearInterval(poll);
  const wallMs = performance.now() - startedAt;
  if (code !== 0) throw new Error(`ops replay all exited with ${code}: ${stdout}`);
  const results = stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { events?: number; eventsPerSecond?: number; maxRssBytes: number });
  return {
    events: results.reduce((sum, result) => sum + (result.events ?? 0), 0),
    wallMs,
    entryEventsPerSecond: Math.max(...results.map((result) => result.eventsPerSecond ?? 0)),
    entryMaxRssBytes: Math.max(...results.map((result) => result.maxRssBytes)),
    cliMaxRssBytes,
  };
}

/** VmHWM (peak resident set) of a running process, from /proc; 0 once it is gone. */
function highWaterMarkBytes(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

await main();
