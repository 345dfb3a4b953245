// npm run chaos [-- --duration 120s --agents 8 --cluster --lifecycles 100000 --kill-every 3s --seed 1 --json]
//
// The system under faults, end to end: its own Postgres and NATS (or a 3-node NATS cluster
// with R3 streams), K agents running full escrow lifecycles through the gateway with
// Idempotency-Keys and retries, while apps are SIGKILLed, NATS restarts and Postgres crashes.
// Then every balance is checked against the agents' own model to the micro-dollar, plus
// `ops verify`. Exit code 1 on any violation. See docs/RELIABILITY.md.
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { APP_NAMES, NatsServers, workspaceRoot } from '@pf/testing';
import { AppSupervisor } from './apps.js';
import { checkModel, waitForSettled } from './checks.js';
import { RetryingClient, sleep } from './client.js';
import { ThrowawayPostgres } from './postgres.js';
import { Workload } from './workload.js';

interface ChaosOptions {
  durationMs: number;
  agents: number;
  lifecyclesMax: number;
  cluster: boolean;
  replicas: number;
  killEveryMs: number;
  seed: number;
  json: boolean;
}

export interface ChaosReport {
  mode: 'single' | 'cluster';
  durationMs: number;
  lifecycles: number;
  escrowsByStatus: Record<string, number>;
  faults: { appKills: number; natsRestarts: number; postgresCrashes: number };
  retriesByCode: Record<string, number>;
  internalErrors: number;
  lostMicros: string;
  duplicatedMicros: string;
  opsVerify: string;
  violations: string[];
}

const ADMIN_API_KEY = `chaos-admin-${randomBytes(12).toString('hex')}`;
/** Bounded waits after the faults stop: apps ready again, sweeps finished. */
const SETTLE_TIMEOUT_MS = 120_000;

function parseArgs(argv: readonly string[]): ChaosOptions {
  const value = (name: string): string | undefined => {
    const index = argv.indexOf(`--${name}`);
    return index >= 0 ? argv[index + 1] : undefined;
  };
  const cluster = argv.includes('--cluster');
  return {
    durationMs: parseDurationMs(value('duration') ?? '120s'),
    agents: Number(value('agents') ?? 8),
    lifecyclesMax: Number(value('lifecycles') ?? 100_000),
    cluster,
    replicas: Number(value('replicas') ?? (cluster ? 2 : 1)),
    killEveryMs: parseDurationMs(value('kill-every') ?? '3s'),
    seed: Number(value('seed') ?? Date.now() % 1_000_000),
    json: argv.includes('--json'),
  };
}

function parseDurationMs(text: string): number {
  const match = /^(\d+)(ms|s|m)?$/.exec(text);
  if (!match) throw new Error(`not a duration: ${text} (e.g. 30s, 2m, 500ms)`);
  const amount = Number(match[1]);
  return match[2] === 'ms' ? amount : match[2] === 'm' ? amount * 60_000 : amount * 1_000;
}

/** A small deterministic generator (mulberry32): a seed reproduces the plans and the faults' targets. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function log(options: ChaosOptions, message: string): void {
  if (!options.json) process.stderr.write(`chaos: ${message}\n`);
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const random = seededRandom(options.seed);
  const startedAtMs = Date.now();
  log(
    options,
    `seed ${options.seed}, ${options.cluster ? '3-node NATS cluster, R3 streams' : 'single NATS'}, ${options.replicas} replica(s) per app, ${options.agents} agents, ${options.durationMs / 1000} s`,
  );
  const postgres = await ThrowawayPostgres.start();
  let nats: NatsServers | undefined;
  let apps: AppSupervisor | undefined;
  const cleanup = async () => {
    await apps?.stop().catch(() => undefined);
    await nats?.stop().catch(() => undefined);
    await postgres.stop().catch(() => undefined);
  };
  const onSignal = () => void cleanup().finally(() => process.exit(130));
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  try {
    nats = await NatsServers.start(options.cluster ? 3 : 1);
    const env = {
      DATABASE_URL: postgres.url(),
      NATS_URL: nats.url,
      NATS_PREFIX: '',
      NATS_STREAM_REPLICAS: options.cluster ? '3' : '1',
      ADMIN_API_KEY,
      ESCROW_MIN_TIMEOUT_SECONDS: '1',
      RATE_LIMIT_PER_IP_PER_MINUTE: '0',
      RATE_LIMIT_PER_KEY_PER_MINUTE: '0',
      FAUCET_IP_LIMIT_PER_DAY: '0',
      // The idempotency lease then defaults to COMMAND_TIMEOUT_MS × 2 + 1 s = 7 s: a client whose
      // gateway was killed mid-request retries after that, never while the first may still run.
      COMMAND_TIMEOUT_MS: '3000',
      STARTUP_TIMEOUT_MS: '120000',
      DB_POOL_MAX: '3',
    };
    apps = new AppSupervisor(env, APP_NAMES, options.replicas);
    await apps.start();
    log(options, `system up in ${Date.now() - startedAtMs} ms; running the workload under faults`);
    return await underFaults(options, random, postgres, nats, apps);
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
  }
}

async function underFaults(
  options: ChaosOptions,
  random: () => number,
  postgres: ThrowawayPostgres,
  nats: NatsServers,
  apps: AppSupervisor,
): Promise<ChaosReport> {
  const client = new RetryingClient(apps.urls('gateway'), random);
  const workload = new Workload(
    client,
    {
      adminKey: ADMIN_API_KEY,
      agents: options.agents,
      creditUsd: 1_000,
      lifecyclesMax: options.lifecyclesMax,
      runId: randomBytes(4).toString('hex'),
      shortTimeoutSeconds: 2,
      longTimeoutSeconds: 30,
    },
    random,
  );
  await workload.setUp();
  const runStartedMs = Date.now();
  let stop = false;
  const faults = { appKills: 0, natsRestarts: 0, postgresCrashes: 0 };
  const faultLoop = injectFaults(options, random, postgres, nats, apps, faults, () => stop);
  const timer = setTimeout(() => (stop = true), options.durationMs);
  const running = workload.run(() => stop);
  // The workload may end first (its lifecycle budget); the faults stop with it.
  await Promise.race([running, faultLoop]);
  stop = true;
  clearTimeout(timer);
  await Promise.all([running, faultLoop]);
  const durationMs = Date.now() - runStartedMs;
  log(
    options,
    `faults stopped after ${durationMs} ms (${workload.lifecycles.length} lifecycles); waiting for the apps and the sweeps`,
  );

  await apps.waitAllReady();
  await workload.resolvePending();
  const open = await waitForSettled(postgres.url(), SETTLE_TIMEOUT_MS);
  const model = await checkModel(
    postgres.url(),
    workload.agents,
    workload.lifecycles,
    workload.createKeysByCreator,
  );
  const verify = await opsVerify(postgres.url(), nats.url);
  const violations = [...model.violations];
  if (open.escrows !== 0 || open.settlements !== 0) {
    violations.push(
      `${open.escrows} escrow(s) not final and ${open.settlements} settlement(s) pending ${SETTLE_TIMEOUT_MS / 1000} s after the faults stopped`,
    );
  }
  if (verify.code !== 0) violations.push(`ops verify exited ${verify.code}: ${verify.output.slice(-2_000)}`);
  for (const error of client.internalErrors.slice(0, 20)) violations.push(`500 internal_error: ${error}`);
  if (client.internalErrors.length > 20)
    violations.push(`… and ${client.internalErrors.length - 20} more 500s`);
  if (violations.length > 0) for (const tail of apps.tails.slice(-10)) log(options, `app errors: ${tail}`);
  return {
    mode: options.cluster ? 'cluster' : 'single',
    durationMs,
    lifecycles: workload.lifecycles.length,
    escrowsByStatus: model.escrowsByStatus,
    faults,
    retriesByCode: Object.fromEntries([...client.retriesByCode].sort(([a], [b]) => a.localeCompare(b))),
    internalErrors: client.internalErrors.length,
    lostMicros: model.lostMicros.toString(),
    duplicatedMicros: model.duplicatedMicros.toString(),
    opsVerify: verify.code === 0 ? 'ok' : `exit ${verify.code}`,
    violations,
  };
}

/**
 * SIGKILLs a random app every `killEveryMs`; restarts NATS (one node at a time on a cluster)
 * and crashes Postgres at evenly spread moments: at least once each per run.
 */
async function injectFaults(
  options: ChaosOptions,
  random: () => number,
  postgres: ThrowawayPostgres,
  nats: NatsServers,
  apps: AppSupervisor,
  faults: ChaosReport['faults'],
  stopped: () => boolean,
): Promise<void> {
  const startMs = Date.now();
  // Staggered so that each fault's recovery is seen on its own.
  const natsAt = spread(Math.max(1, Math.floor(options.durationMs / 45_000)), options.durationMs, 0.3, 0.9);
  const postgresAt = spread(
    Math.max(1, Math.floor(options.durationMs / 60_000)),
    options.durationMs,
    0.55,
    0.75,
  );
  let nextKillMs = options.killEveryMs;
  while (!stopped()) {
    const elapsedMs = Date.now() - startMs;
    if (elapsedMs >= nextKillMs) {
      nextKillMs += options.killEveryMs;
      const killed = await apps.killRandom(random);
      if (killed) faults.appKills += 1;
      log(options, `+${(elapsedMs / 1000).toFixed(1)} s SIGKILL ${killed}`);
    }
    if (natsAt.length > 0 && elapsedMs >= natsAt[0]!) {
      natsAt.shift();
      const node = Math.floor(random() * nats.size);
      log(options, `+${(elapsedMs / 1000).toFixed(1)} s NATS ${nats.nodeName(node)} killed`);
      await nats.kill(node);
      await sleep(1_500);
      await nats.restart(node);
      faults.natsRestarts += 1;
    }
    if (postgresAt.length > 0 && elapsedMs >= postgresAt[0]!) {
      postgresAt.shift();
      log(options, `+${(elapsedMs / 1000).toFixed(1)} s Postgres crashed`);
      await postgres.crash();
      await sleep(1_500);
      await postgres.restart();
      faults.postgresCrashes += 1;
    }
    await sleep(100);
  }
}

/** `count` moments spread over the run, from `firstFraction` to `lastFraction` of it. */
function spread(count: number, durationMs: number, firstFraction: number, lastFraction: number): number[] {
  const firstMs = durationMs * firstFraction;
  const stepMs = count > 1 ? (durationMs * lastFraction - firstMs) / (count - 1) : 0;
  return Array.from({ length: count }, (_, index) => firstMs + index * stepMs);
}

function opsVerify(databaseUrl: string, natsUrl: string): Promise<{ code: number | null; output: string }> {
  const entry = path.join(workspaceRoot(), 'dist', 'apps', 'ops', 'src', 'main.js');
  const child = spawn(process.execPath, [entry, 'verify', 'all', '--grace', '0'], {
    env: { PATH: process.env.PATH ?? '', DATABASE_URL: databaseUrl, NATS_URL: natsUrl, NATS_PREFIX: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

export function formatReport(report: ChaosReport): string {
  const retries = Object.entries(report.retriesByCode).map(([code, count]) => `${code}: ${count}`);
  return [
    `chaos (${report.mode}): ${report.lifecycles} lifecycles in ${(report.durationMs / 1000).toFixed(1)} s`,
    `  escrows: ${Object.entries(report.escrowsByStatus)
      .map(([status, count]) => `${status} ${count}`)
      .join(', ')}`,
    `  faults: ${report.faults.appKills} app SIGKILLs, ${report.faults.natsRestarts} NATS restarts, ${report.faults.postgresCrashes} Postgres crashes`,
    `  client retries: ${retries.length > 0 ? retries.join(', ') : 'none'}; 500s: ${report.internalErrors}`,
    `  µ$ lost: ${report.lostMicros}, µ$ duplicated: ${report.duplicatedMicros}; ops verify: ${report.opsVerify}`,
    report.violations.length === 0
      ? '  violations: 0'
      : `  violations: ${report.violations.length}\n${report.violations.map((line) => `    ${line}`).join('\n')}`,
  ].join('\n');
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const report = await runChaos(options);
  process.stdout.write(options.json ? `${JSON.stringify(report)}\n` : `${formatReport(report)}\n`);
  process.exitCode = report.violations.length === 0 ? 0 : 1;
}

if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  main().catch((error: unknown) => {
    process.stderr.write(
      `chaos: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(2);
  });
}
