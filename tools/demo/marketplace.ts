/**
 * `npm run demo`: the article's scenario ("Building a Multi-Agent Task Marketplace in 30
 * Minutes") for real, against a running system, through the job board:
 *   1. an orchestrator posts a job, three workers bid, the orchestrator awards the cheapest bid
 *      (its price is locked in an escrow), the winner does the work and completes, the
 *      orchestrator releases and the winner is paid;
 *   2. a race: the orchestrator awards the job to all three bids at once; the first worker to
 *      complete is paid automatically by the market, the other escrows are refunded;
 *   3. the orchestrator rates the paid work, and the demo prints the three workers' reputation
 *      (built from the event log: GET /agents/{id}/reputation);
 *   4. a direct escrow judged by an evaluator, and a cancel by agreement (evaluator.ts).
 * Prints every step and checks the final balances to the micro-dollar (exit code 1 if not).
 *
 *   GATEWAY_URL      default http://127.0.0.1:3000
 *   ADMIN_API_KEY    default: the key `npm start` wrote to <START_DATA_DIR or .data>/admin-api-key
 */
import { createPublicKey, verify } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { formatUsd, parseUsd } from '@pf/money';
import { DemoClient, sleep, type DemoAgent } from './demo-client.js';
import { cancelledByAgreement, judgedByAnEvaluator } from './evaluator.js';
import { paidInMilestones } from './milestones.js';

const BUDGET_USD = 5;
const ORCHESTRATOR_CREDIT_USD = 20;
const WORKERS = [
  { name: 'worker-alpha', priceUsd: 4.5, etaMinutes: 20 },
  { name: 'worker-beta', priceUsd: 3.8, etaMinutes: 45 },
  { name: 'worker-gamma', priceUsd: 4.2, etaMinutes: 30 },
];
const DESCRIPTION = 'Analyze BTC price correlation with gold over 30 days';
/** Simulated work takes between these. */
const WORK_MS_MIN = 150;
const WORK_MS_MAX = 900;
const WAIT_MAX_MS = 30_000;

type Json = Record<string, unknown>;
interface Award {
  bid_id: string;
  worker_id: string;
  escrow_id: string;
  price_usd: number;
  escrow_status: string;
  race: string | null;
}

async function main(): Promise<void> {
  const client = new DemoClient(process.env.GATEWAY_URL ?? 'http://127.0.0.1:3000');
  const adminKey = adminApiKey();
  await client.ping();

  step('1. Register the orchestrator and three workers');
  const orchestrator = await client.register('orchestrator');
  const workers = await Promise.all(WORKERS.map((worker) => client.register(worker.name)));
  for (const agent of [orchestrator, ...workers]) say(`${agent.name.padEnd(14)} ${agent.agentId}`);
  await client.credit(adminKey, orchestrator, ORCHESTRATOR_CREDIT_USD);
  say(`orchestrator credited $${ORCHESTRATOR_CREDIT_USD}`);
  for (const worker of workers) {
    const claim = await client.claimFaucet(worker);
    say(
      `${worker.name}: ${claim.status === 200 ? `faucet credited $${String(claim.body.credited)}` : `faucet refused (${String(claim.body.error)}), carrying on`}`,
    );
  }

  const paid: Award[] = [];
  const single = await awardTheCheapest(client, orchestrator, workers, paid);
  const race = await raceThree(client, orchestrator, workers, paid);
  const reputation = await showReputation(client, orchestrator, workers, paid);
  const judged = await judgedByAnEvaluator(client, orchestrator, workers[1]!, workers[2]!, step, say);
  const cancelled = await cancelledByAgreement(client, orchestrator, workers[0]!, step, say);
  const milestones = await paidInMilestones(client, orchestrator, workers[0]!, step, say);
  const tips = await tipWithABot(client, orchestrator, workers);
  const ok = single && race && reputation && judged && cancelled && milestones && tips;
  process.exitCode = ok ? 0 : 1;
  say(ok ? 'demo: OK' : 'demo: FAILED');
}

/**
 * Run 4 (ADR 0019): the orchestrator gives a tipping bot a sub-key that may only pay the workers,
 * at most $1 a payment and $1.50 a day; the bot tips once, and its second tip is refused by the
 * ledger with what remains of the day.
 */
async function tipWithABot(
  client: DemoClient,
  orchestrator: DemoAgent,
  workers: DemoAgent[],
): Promise<boolean> {
  const agents = [orchestrator, ...workers];
  const before = await client.balancesMicros(agents);
  step('Tips by a bot with a spending mandate (a sub-key: $1 a payment, $1.50 a day, workers only)');
  const bot = await client.createKey(orchestrator, {
    name: 'tipping bot',
    max_per_transaction_usd: 1,
    max_per_day_usd: 1.5,
    allowed_payees: workers.map((worker) => worker.agentId),
    allowed_actions: ['pay'],
    expires_at: new Date(Date.now() + 3_600_000).toISOString(),
  });
  say(`sub-key ${bot.keyId} created`);
  const first = await client.pay(bot.apiKey, workers[0]!, 1, 'thanks for the fast work');
  say(
    `tip $1 to ${workers[0]!.name}: HTTP ${first.status} ${String(first.body.payment_id ?? first.body.error)}`,
  );
  const second = await client.pay(bot.apiKey, workers[1]!, 1, 'and thanks to you');
  say(
    `tip $1 to ${workers[1]!.name}: HTTP ${second.status} ${String(second.body.error)} (remaining today $${String(second.body.remaining_usd)})`,
  );
  const after = await client.balancesMicros(agents);
  const delta = (agent: DemoAgent) => after.get(agent.agentId)! - before.get(agent.agentId)!;
  const results: Array<[string, boolean]> = [
    ['the first tip paid $1, no commission', first.status === 201 && delta(workers[0]!) === 1_000_000n],
    [
      'the second was refused by the mandate',
      second.status === 403 && second.body.error === 'mandate_exceeded',
    ],
    ['the orchestrator paid exactly $1', delta(orchestrator) === -1_000_000n],
  ];
  for (const [label, passed] of results) say(`${passed ? '✓' : '✗'} ${label}`);
  return results.every(([, passed]) => passed);
}

/** Run 1: post, three bids, award the cheapest, complete, release. */
async function awardTheCheapest(
  client: DemoClient,
  orchestrator: DemoAgent,
  workers: DemoAgent[],
  paid: Award[],
): Promise<boolean> {
  const agents = [orchestrator, ...workers];
  const before = await client.balancesMicros(agents);
  step(`2. The orchestrator posts a job (budget $${BUDGET_USD}); nothing is locked yet`);
  const jobId = await post(client, orchestrator, {});
  await bidAll(client, jobId, workers);

  step('3. The orchestrator reads the bids and awards the cheapest: its price is locked in an escrow');
  const bids = (await client.job(orchestrator, jobId)).bids as Array<{
    bid_id: string;
    worker_id: string;
    price_usd: number;
  }>;
  const cheapest = [...bids].sort((a, b) => a.price_usd - b.price_usd)[0]!;
  const awarded = await client.award(orchestrator, jobId, { bid_id: cheapest.bid_id });
  const award = (awarded.awards as Award[])[0]!;
  const winner = workers.find((worker) => worker.agentId === award.worker_id)!;
  say(`awarded to ${winner.name} at $${award.price_usd}: escrow ${award.escrow_id} funded`);

  step(`4. ${winner.name} finds its escrow on the job, works, and completes`);
  const seen = ((await client.job(winner, jobId)).awards as Award[]).find(
    (item) => item.worker_id === winner.agentId,
  )!;
  await sleep(workTimeMs());
  const done = await client.tryComplete(
    winner,
    seen.escrow_id,
    `BTC/gold 30d correlation 0.34 (by ${winner.name})`,
  );
  if (done.status !== 200) throw new Error(`complete: HTTP ${done.status} ${JSON.stringify(done.body)}`);
  await client.waitForJob(orchestrator, jobId, (job) => job.status === 'completed', WAIT_MAX_MS);
  say(`the market saw the completion: job ${jobId} is completed`);

  step('5. The orchestrator reviews and releases the payment');
  const release = await client.act('release', orchestrator, award.escrow_id);
  say(
    `released $${String(release.body.released_to_counterparty)} to ${winner.name}, commission $${String(release.body.commission)}`,
  );
  await client.waitForJob(orchestrator, jobId, (job) => job.status === 'closed', WAIT_MAX_MS);
  paid.push(award);
  const receiptOk = await showReceipt(client, winner, award.escrow_id);
  const commissionMicros = parseUsd(String(release.body.commission), {
    field: 'commission',
    allowZero: true,
  });
  const balancesOk = checkBalances('award to the cheapest', {
    client,
    orchestrator,
    winner,
    agents,
    before,
    priceMicros: usdMicros(award.price_usd),
    commissionMicros,
  });
  return receiptOk && balancesOk;
}

/**
 * The winner fetches its signed receipt and checks it the way a third party would: with only the
 * published public key (docs/API.md, "Receipts").
 */
async function showReceipt(client: DemoClient, winner: DemoAgent, escrowId: string): Promise<boolean> {
  const [receipt] = await client.receipts(winner, escrowId, WAIT_MAX_MS);
  if (!receipt) {
    say(`FAILED: no receipt for ${escrowId}`);
    return false;
  }
  const facts = receipt.receipt as Record<string, string>;
  const keys = (await client.receiptKeys()).keys as Array<{ key_id: string; public_key_pem: string }>;
  const key = keys.find((candidate) => candidate.key_id === facts.key_id);
  const valid =
    key !== undefined &&
    verify(
      null,
      Buffer.from(String(receipt.canonical), 'utf8'),
      createPublicKey(key.public_key_pem),
      Buffer.from(String(receipt.signature), 'base64'),
    );
  say(
    `receipt ${String(receipt.receipt_id)}: ${facts.paid_to_payee_micros} µ$ to ${winner.name}, signed by ${facts.key_id}: ${valid ? 'verifies' : 'DOES NOT VERIFY'}`,
  );
  return valid;
}

/** Run 2: the same job as a race of three; the first to complete wins, the others are refunded. */
async function raceThree(
  client: DemoClient,
  orchestrator: DemoAgent,
  workers: DemoAgent[],
  paid: Award[],
): Promise<boolean> {
  const agents = [orchestrator, ...workers];
  const before = await client.balancesMicros(agents);
  step('6. A race: the orchestrator posts the job for three workers, paying the first to complete');
  const jobId = await post(client, orchestrator, { race: { workers: 3, auto_release: true } });
  const bidIds = await bidAll(client, jobId, workers);
  const awarded = await client.award(orchestrator, jobId, { bid_ids: bidIds });
  say(
    `awarded to all three: ${(awarded.awards as Award[]).map((award) => `${award.escrow_id} ($${award.price_usd})`).join(', ')} funded`,
  );

  step('7. The workers race; the market pays the first completion and cancels the others');
  await Promise.all(
    workers.map(async (worker) => {
      const mine = (awarded.awards as Award[]).find((award) => award.worker_id === worker.agentId)!;
      const workMs = workTimeMs();
      await sleep(workMs);
      const answer = await client.tryComplete(worker, mine.escrow_id, `correlation 0.34 (by ${worker.name})`);
      say(
        `${worker.name} finished after ${workMs} ms: ${answer.status === 200 ? 'completed' : `too late (${String(answer.body.error)})`}`,
      );
    }),
  );
  const settled = await client.waitForJob(
    orchestrator,
    jobId,
    (job) =>
      job.status === 'closed' &&
      (job.awards as Award[]).every((award) => ['released', 'refunded'].includes(award.escrow_status)),
    WAIT_MAX_MS,
  );
  const awards = settled.awards as Award[];
  const won = awards.find((award) => award.race === 'won')!;
  paid.push(won);
  const winner = workers.find((worker) => worker.agentId === won.worker_id)!;
  for (const award of awards)
    say(
      `${workers.find((worker) => worker.agentId === award.worker_id)!.name}: ${award.race ?? '-'}, escrow ${award.escrow_status}`,
    );
  const escrow = await client.escrow(orchestrator, won.escrow_id);
  const commissionMicros = parseUsd(String((escrow.payout as Json).commission), {
    field: 'commission',
    allowZero: true,
  });
  return checkBalances('race of three', {
    client,
    orchestrator,
    winner,
    agents,
    before,
    priceMicros: usdMicros(won.price_usd),
    commissionMicros,
  });
}

/** Run 3: the orchestrator rates each paid job; the three workers' reputation, from the event log. */
async function showReputation(
  client: DemoClient,
  orchestrator: DemoAgent,
  workers: DemoAgent[],
  paid: Award[],
): Promise<boolean> {
  step('8. The orchestrator rates the paid work (once per escrow); the workers rate it back');
  for (const [index, award] of paid.entries()) {
    const worker = workers.find((candidate) => candidate.agentId === award.worker_id)!;
    const given = await client.rate(orchestrator, award.escrow_id, 5 - index, 'delivered as asked');
    const back = await client.rate(worker, award.escrow_id, 5, 'paid promptly');
    const again = await client.rate(orchestrator, award.escrow_id, 1, 'changed my mind');
    say(
      `${worker.name} (escrow ${award.escrow_id}): rated ${5 - index}/5 → HTTP ${given.status}; rated back → HTTP ${back.status}; a second rating → ${String(again.body.error)}`,
    );
    if (given.status !== 201 || back.status !== 201 || again.status !== 409) return false;
  }
  step("9. The three workers' reputation, built only from the event log");
  const released = new Map<string, number>();
  for (const award of paid) released.set(award.worker_id, (released.get(award.worker_id) ?? 0) + 1);
  for (const worker of workers) {
    const profile = await waitForReputation(client, worker, released.get(worker.agentId) ?? 0);
    const figures = profile.worker as Json;
    say(
      `${worker.name.padEnd(14)} score ${String(figures.score).padStart(6)} | won ${String(figures.jobs_won)}, completed ${String(figures.completed)}, released ${String(figures.released)}, ` +
        `on time ${figures.on_time_rate === null ? '-' : `${Math.round(Number(figures.on_time_rate) * 100)}%`}, earned $${String(figures.total_earned_usd)}, ` +
        `paying counterparties ${String(figures.unique_paying_counterparties)}, ratings ${(profile.latest_ratings as Json[]).length}`,
    );
  }
  return true;
}

/** The projection follows escrow's events a moment later: wait until it shows the releases. */
async function waitForReputation(client: DemoClient, worker: DemoAgent, released: number): Promise<Json> {
  const deadlineMs = Date.now() + WAIT_MAX_MS;
  for (;;) {
    const profile = await client.reputation(worker.agentId);
    if (Number((profile.worker as Json).released) >= released || Date.now() > deadlineMs) return profile;
    await sleep(100);
  }
}

async function post(client: DemoClient, orchestrator: DemoAgent, extra: Json): Promise<string> {
  const job = await client.postJob(orchestrator, {
    title: 'BTC/gold correlation',
    description: DESCRIPTION,
    budget_usd: BUDGET_USD,
    bid_window_minutes: 10,
    timeout_hours: 4,
    tags: ['analysis'],
    ...extra,
  });
  say(`job ${String(job.job_id)} posted: "${DESCRIPTION}", bids until ${String(job.bids_close_at)}`);
  return job.job_id as string;
}

async function bidAll(client: DemoClient, jobId: string, workers: DemoAgent[]): Promise<string[]> {
  const bidIds: string[] = [];
  for (const [index, worker] of workers.entries()) {
    const { priceUsd, etaMinutes } = WORKERS[index]!;
    const bid = await client.bid(worker, jobId, priceUsd, etaMinutes);
    bidIds.push(bid.bid_id as string);
    say(`${worker.name} bids $${priceUsd}, ${etaMinutes} min (${String(bid.bid_id)})`);
  }
  return bidIds;
}

interface BalanceCheck {
  client: DemoClient;
  orchestrator: DemoAgent;
  winner: DemoAgent;
  agents: DemoAgent[];
  before: Map<string, bigint>;
  priceMicros: bigint;
  commissionMicros: bigint;
}

/** Every number in micro-dollars: the price moved from the orchestrator to the winner, less the commission that left to the house. */
async function checkBalances(run: string, check: BalanceCheck): Promise<boolean> {
  const after = await check.client.balancesMicros(check.agents);
  step(`Balances after the ${run}`);
  for (const agent of check.agents)
    say(
      `${agent.name.padEnd(14)} $${formatUsd(check.before.get(agent.agentId)!).padStart(8)} → $${formatUsd(after.get(agent.agentId)!).padStart(8)}`,
    );
  const delta = (agent: DemoAgent) => after.get(agent.agentId)! - check.before.get(agent.agentId)!;
  const sum = (balances: Map<string, bigint>) =>
    check.agents.reduce((total, agent) => total + balances.get(agent.agentId)!, 0n);
  const results: Array<[string, boolean]> = [
    [
      `orchestrator paid exactly $${formatUsd(check.priceMicros)}`,
      delta(check.orchestrator) === -check.priceMicros,
    ],
    [
      `${check.winner.name} received $${formatUsd(check.priceMicros - check.commissionMicros)} (price minus commission)`,
      delta(check.winner) === check.priceMicros - check.commissionMicros,
    ],
    [
      'the other workers are unchanged',
      check.agents
        .filter((agent) => agent !== check.orchestrator && agent !== check.winner)
        .every((agent) => delta(agent) === 0n),
    ],
    [
      `before $${formatUsd(sum(check.before))} = after $${formatUsd(sum(after))} + commission $${formatUsd(check.commissionMicros)}`,
      sum(check.before) === sum(after) + check.commissionMicros,
    ],
  ];
  for (const [label, passed] of results) say(`${passed ? '✓' : '✗'} ${label}`);
  return results.every(([, passed]) => passed);
}

function usdMicros(amountUsd: number): bigint {
  return parseUsd(String(amountUsd), { field: 'price' });
}

function workTimeMs(): number {
  return WORK_MS_MIN + Math.floor(Math.random() * (WORK_MS_MAX - WORK_MS_MIN));
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
