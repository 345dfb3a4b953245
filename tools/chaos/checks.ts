import pg from 'pg';
import { releaseSplit, splitByBasisPoints } from '@pf/money';
import { waitFor } from '@pf/testing';
import type { ChaosAgent, Lifecycle } from './workload.js';

const FINAL_STATUSES = new Set(['released', 'refunded', 'split', 'rejected']);
/** A deadline may be this late before it counts as missed (the sweep runs every second). */
const DEADLINE_SLACK_SECONDS = 10;

interface EscrowRow {
  escrow_id: string;
  status: string;
  creator_id: string;
  counterparty_id: string;
  amount_micros: string;
  commission_bps: number;
}

export interface ModelResult {
  violations: string[];
  /** Σ of (expected − actual) over agents where positive: money the system lost. */
  lostMicros: bigint;
  /** Σ of (actual − expected) over agents where positive: money it invented or paid twice. */
  duplicatedMicros: bigint;
  escrowsByStatus: Record<string, number>;
}

/**
 * Waits until the sweeps are done: no escrow left in a non-final state, and no settlement
 * (casino post or void of a decided escrow) still queued for retry — a settlement whose casino
 * call failed during the faults backs off up to a minute. Returns what is still open.
 */
export async function waitForSettled(
  databaseUrl: string,
  timeoutMs: number,
): Promise<{ escrows: number; settlements: number }> {
  let open = { escrows: -1, settlements: -1 };
  await waitFor(
    'every escrow final and every settlement carried out',
    async () => {
      open = await withClient(databaseUrl, async (client) => {
        const { rows } = await client.query<{ escrows: string; settlements: string }>(
          `SELECT (SELECT count(*) FROM escrow.escrows WHERE status NOT IN ('released', 'refunded', 'split', 'rejected')) AS escrows,
                  (SELECT count(*) FROM escrow.settlements) AS settlements`,
        );
        return { escrows: Number(rows[0]!.escrows), settlements: Number(rows[0]!.settlements) };
      }).catch(() => ({ escrows: -1, settlements: -1 }));
      return open.escrows === 0 && open.settlements === 0;
    },
    { timeoutMs, intervalMs: 500 },
  ).catch(() => undefined);
  return open;
}

/**
 * Each agent's balance against the model built from what the client did (amounts, the
 * operator's split shares) and the final status of each escrow: to the micro-dollar, with the
 * commission rounded as libs/money rounds it. Also: no escrow without a create of ours, no
 * second escrow for one create, statuses agree with the client's definitive answers, and no
 * deadline missed.
 */
export async function checkModel(
  databaseUrl: string,
  agents: readonly ChaosAgent[],
  lifecycles: readonly Lifecycle[],
  createKeysByCreator: Map<number, number>,
): Promise<ModelResult> {
  return withClient(databaseUrl, async (client) => {
    const violations: string[] = [];
    const { rows: escrows } = await client.query<EscrowRow>(
      `SELECT escrow_id, status, creator_id, counterparty_id, amount_micros::text, commission_bps FROM escrow.escrows`,
    );
    const byId = new Map(escrows.map((row) => [row.escrow_id, row]));
    const escrowsByStatus: Record<string, number> = {};
    for (const row of escrows) escrowsByStatus[row.status] = (escrowsByStatus[row.status] ?? 0) + 1;
    const indexOf = new Map(agents.map((agent) => [agent.agentId, agent.index]));
    const shareById = new Map(
      lifecycles.filter((l) => l.escrowId && l.shareBps !== undefined).map((l) => [l.escrowId!, l.shareBps!]),
    );

    for (const lifecycle of lifecycles) {
      for (const unexpected of lifecycle.unexpected)
        violations.push(`unexpected answer (${lifecycle.plan}): ${unexpected}`);
      if (!lifecycle.escrowId) continue;
      const row = byId.get(lifecycle.escrowId);
      if (!row) violations.push(`escrow ${lifecycle.escrowId} answered 201 but does not exist`);
      else if (lifecycle.confirmed && row.status !== lifecycle.confirmed)
        violations.push(
          `escrow ${row.escrow_id}: the client was told ${lifecycle.confirmed}, it is ${row.status}`,
        );
    }
    const escrowsPerCreator = new Map<number, number>();
    const expected = new Map(agents.map((agent) => [agent.index, agent.creditedMicros]));
    for (const row of escrows) {
      const creator = indexOf.get(row.creator_id);
      const counterparty = indexOf.get(row.counterparty_id);
      if (creator === undefined || counterparty === undefined) {
        violations.push(`escrow ${row.escrow_id} belongs to agents this run did not create`);
        continue;
      }
      escrowsPerCreator.set(creator, (escrowsPerCreator.get(creator) ?? 0) + 1);
      if (!FINAL_STATUSES.has(row.status)) violations.push(`escrow ${row.escrow_id} is still ${row.status}`);
      const [creatorDelta, counterpartyDelta] = settlementDeltas(
        row,
        shareById.get(row.escrow_id),
        violations,
      );
      expected.set(creator, expected.get(creator)! + creatorDelta);
      expected.set(counterparty, expected.get(counterparty)! + counterpartyDelta);
    }
    for (const [creator, count] of escrowsPerCreator) {
      const keys = createKeysByCreator.get(creator) ?? 0;
      if (count > keys)
        violations.push(`agent #${creator} has ${count} escrows for ${keys} creates: a duplicate`);
    }

    const { rows: accounts } = await client.query<{ account_id: string; total: string; held: string }>(
      `SELECT account_id, (available_micros + held_micros)::text AS total, held_micros::text AS held FROM casino.accounts WHERE account_id = ANY($1)`,
      [agents.map((agent) => agent.agentId)],
    );
    const actual = new Map(accounts.map((row) => [row.account_id, row]));
    let lostMicros = 0n;
    let duplicatedMicros = 0n;
    for (const agent of agents) {
      const row = actual.get(agent.agentId);
      const actualMicros = row ? BigInt(row.total) : 0n;
      const want = expected.get(agent.index)!;
      if (actualMicros < want) lostMicros += want - actualMicros;
      if (actualMicros > want) duplicatedMicros += actualMicros - want;
      if (actualMicros !== want)
        violations.push(
          `agent #${agent.index} ${agent.agentId}: balance ${actualMicros} µ$, model says ${want} µ$`,
        );
      if (row && BigInt(row.held) !== 0n)
        violations.push(`agent #${agent.index}: ${row.held} µ$ still held with every escrow final`);
    }
    const { rows: late } = await client.query<{ escrow_id: string }>(
      `SELECT escrow_id FROM escrow.deadlines WHERE due_at < now() - make_interval(secs => $1) LIMIT 10`,
      [DEADLINE_SLACK_SECONDS],
    );
    for (const row of late)
      violations.push(
        `escrow ${row.escrow_id} is past its deadline by more than ${DEADLINE_SLACK_SECONDS} s`,
      );
    return { violations, lostMicros, duplicatedMicros, escrowsByStatus };
  });
}

/** What an escrow's final status moves: [creator, counterparty], in micro-dollars. */
function settlementDeltas(
  row: EscrowRow,
  shareBps: number | undefined,
  violations: string[],
): [bigint, bigint] {
  const amountMicros = BigInt(row.amount_micros);
  switch (row.status) {
    case 'released':
      return [-amountMicros, releaseSplit(amountMicros, row.commission_bps, false).counterpartyMicros];
    case 'split': {
      if (shareBps === undefined) {
        violations.push(`escrow ${row.escrow_id} was split but the client never asked for a split`);
        return [0n, 0n];
      }
      const [releasedMicros] = splitByBasisPoints(amountMicros, [shareBps, 10_000 - shareBps]);
      return [-releasedMicros!, releaseSplit(releasedMicros!, row.commission_bps, false).counterpartyMicros];
    }
    default:
      // refunded and rejected move nothing in the end; a non-final escrow is reported above.
      return [0n, 0n];
  }
}

async function withClient<T>(databaseUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}
