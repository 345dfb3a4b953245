/**
 * The demo's escrow-beyond-the-peers runs (docs/adr/0016), called from marketplace.ts:
 *   4. an evaluator judges: the orchestrator opens a direct escrow whose release belongs to a
 *      third agent (paid a fee); the worker hands over a deliverable (URL, SHA-256, media type),
 *      the evaluator sends it back once, the worker delivers again, the evaluator releases;
 *   5. a cancel by agreement: the orchestrator asks to cancel, the worker consents, the money
 *      comes back in full.
 * Each checks the balances to the micro-dollar.
 */
import { createHash } from 'node:crypto';
import { formatUsd, parseUsd } from '@pf/money';
import type { DemoAgent, DemoClient } from './demo-client.js';

const JUDGED_AMOUNT_USD = 4;
const EVALUATOR_FEE_BPS = 250;
const CANCELLED_AMOUNT_USD = 1;

type Say = (line: string) => void;

/** Run 4: worker-beta works for the orchestrator, worker-gamma judges the work. */
export async function judgedByAnEvaluator(
  client: DemoClient,
  orchestrator: DemoAgent,
  worker: DemoAgent,
  evaluator: DemoAgent,
  step: Say,
  say: Say,
): Promise<boolean> {
  const agents = [orchestrator, worker, evaluator];
  const before = await client.balancesMicros(agents);
  step(
    `10. An evaluator: the orchestrator locks $${JUDGED_AMOUNT_USD} for ${worker.name}; only ${evaluator.name} may release it (fee ${EVALUATOR_FEE_BPS / 100}%)`,
  );
  const escrow = await client.createEscrow(
    orchestrator,
    worker,
    JUDGED_AMOUNT_USD,
    'BTC/gold correlation, 30 days',
    {
      evaluator_agent_id: evaluator.agentId,
      evaluator_fee_bps: EVALUATOR_FEE_BPS,
    },
  );
  const escrowId = escrow.escrow_id as string;
  say(`escrow ${escrowId}: evaluator ${String(escrow.evaluator_id)}`);

  step(`11. ${worker.name} hands over a deliverable; ${evaluator.name} sends it back once`);
  await client.act('complete', worker, escrowId, deliverableOf('7 days of data'));
  const seen = await client.escrow(evaluator, escrowId);
  say(`${evaluator.name} sees the deliverable: ${JSON.stringify(seen.deliverable)}`);
  const rejected = await client.act('reject', evaluator, escrowId, {
    reason: 'The CSV covers 7 days, not 30.',
  });
  say(
    `rejected: the escrow is ${String(rejected.body.status)} again ("${String(rejected.body.rejection_reason)}")`,
  );

  step(`12. ${worker.name} delivers again; ${evaluator.name} releases`);
  await client.act('complete', worker, escrowId, deliverableOf('30 days of data'));
  const release = await client.act('release', evaluator, escrowId);
  say(
    `released $${String(release.body.released_to_counterparty)} to ${worker.name}, commission $${String(release.body.commission)}, evaluator fee $${String(release.body.evaluator_fee_usd)}`,
  );
  const amountMicros = usdMicros(JUDGED_AMOUNT_USD);
  const commissionMicros = usdMicros(release.body.commission as number);
  const feeMicros = usdMicros(release.body.evaluator_fee_usd as number);
  const after = await client.balancesMicros(agents);
  const delta = (agent: DemoAgent) => after.get(agent.agentId)! - before.get(agent.agentId)!;
  const results: Array<[string, boolean]> = [
    [`orchestrator paid exactly $${formatUsd(amountMicros)}`, delta(orchestrator) === -amountMicros],
    [
      `${evaluator.name} received its fee $${formatUsd(feeMicros)} (${EVALUATOR_FEE_BPS} bps of the amount)`,
      delta(evaluator) === feeMicros && feeMicros === (amountMicros * BigInt(EVALUATOR_FEE_BPS)) / 10_000n,
    ],
    [
      `${worker.name} received the amount minus commission minus fee`,
      delta(worker) === amountMicros - commissionMicros - feeMicros,
    ],
  ];
  for (const [label, passed] of results) say(`${passed ? '✓' : '✗'} ${label}`);
  return results.every(([, passed]) => passed);
}

/** Run 5: the orchestrator asks to cancel, the worker consents, the money comes back in full. */
export async function cancelledByAgreement(
  client: DemoClient,
  orchestrator: DemoAgent,
  worker: DemoAgent,
  step: Say,
  say: Say,
): Promise<boolean> {
  const before = await client.balancesMicros([orchestrator]);
  step(
    `13. A cancel by agreement: $${CANCELLED_AMOUNT_USD} locked for ${worker.name}, then both agree to stop`,
  );
  const escrow = await client.createEscrow(
    orchestrator,
    worker,
    CANCELLED_AMOUNT_USD,
    'A job nobody needs anymore',
  );
  const escrowId = escrow.escrow_id as string;
  const asked = await client.act('cancel', orchestrator, escrowId);
  say(`orchestrator asks: ${String(asked.body.message)}`);
  const agreed = await client.act('consent-cancel', worker, escrowId);
  say(`${worker.name} consents: ${String(agreed.body.message)}`);
  const after = await client.balancesMicros([orchestrator]);
  const passed =
    agreed.body.status === 'refunded' && after.get(orchestrator.agentId) === before.get(orchestrator.agentId);
  say(
    `${passed ? '✓' : '✗'} the orchestrator's balance is back to $${formatUsd(after.get(orchestrator.agentId)!)}`,
  );
  return passed;
}

/** A deliverable as a worker would send it: where the file is, its digest and type. */
function deliverableOf(content: string) {
  return {
    result_summary: `BTC/gold correlation (${content})`,
    deliverable: {
      url: `https://files.example/btc-gold-${content.replace(/\W+/g, '-')}.csv`,
      sha256: createHash('sha256').update(content).digest('hex'),
      mime: 'text/csv',
    },
  };
}

function usdMicros(amountUsd: number): bigint {
  return parseUsd(String(amountUsd), { field: 'amount', allowZero: true });
}
