/**
 * `npm run demo`: the article's scenario ("Building a Multi-Agent Task Marketplace in 30
 * Minutes") against a running system. An orchestrator is credited, posts one job to three
 * workers (one escrow each), the workers race, the first to finish completes and is paid, the
 * others decline and their escrows are refunded. Prints every step, the final balances and the
 * check that they add up (before = after + commission), and exits non-zero if they do not.
 *
 *   GATEWAY_URL      default http://127.0.0.1:3000
 *   ADMIN_API_KEY    default: the key `npm start` wrote to <START_DATA_DIR or .data>/admin-api-key
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { formatUsd, parseUsd } from '@pf/money';
import { DemoClient, sleep, type DemoAgent } from './demo-client.js';

const JOB_USD = 5;
const ORCHESTRATOR_CREDIT_USD = 20;
const WORKER_NAMES = ['worker-alpha', 'worker-beta', 'worker-gamma'];
const JOB = 'Analyze BTC price correlation with gold over 30 days';
/** Simulated work takes between these; the fastest worker wins. */
const WORK_MS_MIN = 150;
const WORK_MS_MAX = 900;
const POLL_INTERVAL_MS = 100;
const WAIT_MAX_MS = 30_000;

interface Job {
  worker: DemoAgent;
  escrowId: string;
}

async function main(): Promise<void> {
  const client = new DemoClient(process.env.GATEWAY_URL ?? 'http://127.0.0.1:3000');
  const adminKey = adminApiKey();
  await client.ping();

  step('1. Register the orchestrator and three workers');
  const orchestrator = await client.register('orchestrator');
  const workers = await Promise.all(WORKER_NAMES.map((name) => client.register(name)));
  for (const agent of [orchestrator, ...workers]) say(`${agent.name.padEnd(14)} ${agent.agentId}`);

  step(
    `2. Fund them: $${ORCHESTRATOR_CREDIT_USD} deposit for the orchestrator, the $1 faucet for each worker`,
  );
  await client.credit(adminKey, orchestrator, ORCHESTRATOR_CREDIT_USD);
  say(`orchestrator credited $${ORCHESTRATOR_CREDIT_USD}`);
  for (const worker of workers) {
    const claim = await client.claimFaucet(worker);
    say(
      `${worker.name}: ${claim.status === 200 ? `faucet credited $${String(claim.body.credited)}` : `faucet refused (${String(claim.body.error)}), carrying on`}`,
    );
  }
  const agents = [orchestrator, ...workers];
  const before = await client.balancesMicros(agents);

  step(`3. The orchestrator posts the job to every worker: $${JOB_USD} locked in one escrow each`);
  const jobs: Job[] = [];
  for (const worker of workers) {
    const escrow = await client.createEscrow(orchestrator, worker, JOB_USD, JOB);
    jobs.push({ worker, escrowId: escrow.escrow_id as string });
    say(
      `escrow ${String(escrow.escrow_id)} for ${worker.name}: $${String(escrow.amount_usd)} locked, $${String(escrow.net_to_counterparty)} on release`,
    );
  }
  const locked = await client.balance(orchestrator);
  say(`orchestrator: balance $${String(locked.balance_usd)}, held $${String(locked.held_usd)}`);

  step('4. Workers find the job, race, and the first to finish claims it');
  const board: { winner?: DemoAgent } = {};
  const racing = Promise.all(jobs.map((job) => race(client, job, board)));
  // Awaited after the release; until then a failing worker must not crash the process unseen.
  racing.catch(() => undefined);
  const won = await waitForCompletion(client, orchestrator, jobs);
  step(`5. The orchestrator reviews the first completed job and releases it`);
  const release = await client.act('release', orchestrator, won.escrowId);
  say(
    `released $${String(release.body.released_to_counterparty)} to ${won.worker.name}, commission $${String(release.body.commission)}`,
  );
  await racing;
  for (const job of jobs.filter((job) => job !== won)) {
    const status = await client.waitForStatus(orchestrator, job.escrowId, ['refunded'], WAIT_MAX_MS);
    say(`escrow ${job.escrowId} (${job.worker.name}): ${status}, $${JOB_USD} back to the orchestrator`);
  }

  step('6. Final balances');
  const after = await client.balancesMicros(agents);
  for (const agent of agents)
    say(
      `${agent.name.padEnd(14)} $${formatUsd(before.get(agent.agentId)!).padStart(8)} → $${formatUsd(after.get(agent.agentId)!).padStart(8)}`,
    );
  const ok = checkBalances({
    orchestrator,
    winner: won.worker,
    agents,
    before,
    after,
    commissionMicros: parseUsd(String(release.body.commission), { field: 'commission', allowZero: true }),
  });
  if (!ok) process.exitCode = 1;
}

/** A worker: finds its job among its pending escrows, works, then completes it or, if taken, declines. */
async function race(client: DemoClient, job: Job, board: { winner?: DemoAgent }): Promise<void> {
  const pending = await client.pending(job.worker);
  if (!pending.some((escrow) => escrow.escrow_id === job.escrowId))
    throw new Error(`${job.worker.name} does not see its job`);
  const workMs = WORK_MS_MIN + Math.floor(Math.random() * (WORK_MS_MAX - WORK_MS_MIN));
  say(`${job.worker.name} accepts ${job.escrowId} and works for ${workMs} ms`);
  await sleep(workMs);
  // The job board is the agents' shared coordination point: the first to finish takes the job.
  if (!board.winner) {
    board.winner = job.worker;
    await client.act('complete', job.worker, job.escrowId, {
      result_summary: `BTC/gold 30d correlation 0.34 (by ${job.worker.name})`,
    });
    say(`${job.worker.name} finished first and marked ${job.escrowId} complete`);
    return;
  }
  await client.act('decline', job.worker, job.escrowId);
  say(`${job.worker.name} finished too late (${board.winner.name} won) and declined: its escrow is refunded`);
}

/** The article's loop: poll every escrow until one is completed. */
async function waitForCompletion(client: DemoClient, orchestrator: DemoAgent, jobs: Job[]): Promise<Job> {
  const deadlineMs = Date.now() + WAIT_MAX_MS;
  while (Date.now() < deadlineMs) {
    for (const job of jobs) {
      const escrow = await client.escrow(orchestrator, job.escrowId);
      if (escrow.status === 'completed') {
        say(`orchestrator sees ${job.escrowId} completed: "${String(escrow.result_summary)}"`);
        return job;
      }
    }
    await sleep(POLL_INTERVAL_MS);
  }
  throw new Error(`no worker completed within ${WAIT_MAX_MS} ms`);
}

interface BalanceCheck {
  orchestrator: DemoAgent;
  winner: DemoAgent;
  agents: DemoAgent[];
  before: Map<string, bigint>;
  after: Map<string, bigint>;
  commissionMicros: bigint;
}

/** Every number in micro-dollars: the money only moved, except the commission that left to the house. */
function checkBalances(check: BalanceCheck): boolean {
  const jobMicros = BigInt(JOB_USD) * 1_000_000n;
  const delta = (agent: DemoAgent) => check.after.get(agent.agentId)! - check.before.get(agent.agentId)!;
  const sum = (balances: Map<string, bigint>) =>
    check.agents.reduce((total, agent) => total + balances.get(agent.agentId)!, 0n);
  const results: Array<[string, boolean]> = [
    [`orchestrator paid exactly $${JOB_USD}`, delta(check.orchestrator) === -jobMicros],
    [
      `${check.winner.name} received $${formatUsd(jobMicros - check.commissionMicros)} ($${JOB_USD} minus commission)`,
      delta(check.winner) === jobMicros - check.commissionMicros,
    ],
    [
      'the other workers are unchanged (refunded)',
      check.agents
        .filter((agent) => agent !== check.orchestrator && agent !== check.winner)
        .every((agent) => delta(agent) === 0n),
    ],
    [
      `before $${formatUsd(sum(check.before))} = after $${formatUsd(sum(check.after))} + commission $${formatUsd(check.commissionMicros)}`,
      sum(check.before) === sum(check.after) + check.commissionMicros,
    ],
  ];
  for (const [label, passed] of results) say(`${passed ? '✓' : '✗'} ${label}`);
  const ok = results.every(([, passed]) => passed);
  say(ok ? 'balances check: OK' : 'balances check: FAILED');
  return ok;
}

function adminApiKey(): string {
  if (process.env.ADMIN_API_KEY) return process.env.ADMIN_API_KEY;
  const file = path.resolve(process.env.START_DATA_DIR ?? '.data', 'admin-api-key');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  throw new Error(`no admin key: set ADMIN_API_KEY or run \`npm start\` first (it writes ${file})`);
}

function step(title: string): void {
  console.log(`\n${title}`);
}

function say(line: string): void {
  console.log(`  ${line}`);
}

main().catch((error: unknown) => {
  console.error(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
