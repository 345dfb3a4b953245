/**
 * The demo's milestone run (docs/adr/0017), called from marketplace.ts: the orchestrator locks
 * $3 for worker-alpha in two milestones; each is completed and released on its own, the
 * commission taken on each part only. Checks every balance to the micro-dollar.
 */
import { formatUsd, parseUsd } from '@pf/money';
import type { DemoAgent, DemoClient } from './demo-client.js';

const MILESTONES = [
  { description: 'Collect 30 days of BTC and gold prices', amount_usd: 1.25 },
  { description: 'Compute and explain the correlation', amount_usd: 1.75 },
];

type Say = (line: string) => void;

/** Run 6: two milestones, paid one by one. */
export async function paidInMilestones(
  client: DemoClient,
  orchestrator: DemoAgent,
  worker: DemoAgent,
  step: Say,
  say: Say,
): Promise<boolean> {
  const amountUsd = MILESTONES.reduce((sum, milestone) => sum + milestone.amount_usd, 0);
  const before = await client.balancesMicros([orchestrator, worker]);
  step(
    `14. Milestones: the orchestrator locks $${amountUsd} for ${worker.name}, in ${MILESTONES.length} parts`,
  );
  const escrow = await client.createEscrow(orchestrator, worker, amountUsd, 'BTC/gold study in two parts', {
    milestones: MILESTONES,
  });
  const escrowId = escrow.escrow_id as string;
  say(`escrow ${escrowId}: ${MILESTONES.map((m, i) => `#${i} $${m.amount_usd}`).join(', ')}`);

  let commissionMicros = 0n;
  for (const [index, milestone] of MILESTONES.entries()) {
    step(
      `${15 + index}. ${worker.name} completes milestone ${index} ("${milestone.description}"); the orchestrator releases it`,
    );
    await client.act('complete', worker, escrowId, {
      milestone: index,
      result_summary: `part ${index} done`,
    });
    const release = await client.act('release', orchestrator, escrowId, { milestone: index });
    commissionMicros += usdMicros(release.body.commission as number);
    say(
      `released $${String(release.body.released_to_counterparty)} (commission $${String(release.body.commission)} on this part); escrow ${String(release.body.status)}, ${String(release.body.milestones_open)} open`,
    );
  }
  const after = await client.balancesMicros([orchestrator, worker]);
  const delta = (agent: DemoAgent) => after.get(agent.agentId)! - before.get(agent.agentId)!;
  const amountMicros = usdMicros(amountUsd);
  const results: Array<[string, boolean]> = [
    [`orchestrator paid exactly $${formatUsd(amountMicros)}`, delta(orchestrator) === -amountMicros],
    [
      `${worker.name} received the amount minus the commission of each part ($${formatUsd(commissionMicros)})`,
      delta(worker) === amountMicros - commissionMicros,
    ],
  ];
  for (const [label, passed] of results) say(`${passed ? '✓' : '✗'} ${label}`);
  return results.every(([, passed]) => passed);
}

function usdMicros(amountUsd: number): bigint {
  return parseUsd(String(amountUsd), { field: 'amount', allowZero: true });
}
