import type { QueryRunner } from 'typeorm';
import type { Projection, ProjectionTarget } from './projection.js';
import type { RecordedEvent } from './types.js';

/** The payload of the reference `transferred` event: integer micro-dollars as a string. */
export interface TransferredData {
  fromAccountId: string;
  toAccountId: string;
  amountMicros: string;
}

export const TRANSFERRED_EVENT_TYPE = 'transferred';

/**
 * A test fixture, deliberately not exported from the library's index: balances per account
 * from `transferred` events. It folds a whole batch into one delta per account and
 * writes them with one statement, which is what makes rebuilds fast.
 */
export function transferBalancesProjection(name = 'transfer_balances'): Projection {
  return {
    name,
    tables: ['balances'],
    createTables: (target: ProjectionTarget) => [
      `CREATE TABLE IF NOT EXISTS ${target.table('balances')} (
        account_id text PRIMARY KEY,
        balance_micros bigint NOT NULL,
        transfers integer NOT NULL
      )`,
    ],
    apply: async (runner: QueryRunner, events: readonly RecordedEvent[], target: ProjectionTarget) => {
      const deltas = new Map<string, { amountMicros: bigint; transfers: number }>();
      const add = (accountId: string, amountMicros: bigint) => {
        const delta = deltas.get(accountId) ?? { amountMicros: 0n, transfers: 0 };
        delta.amountMicros += amountMicros;
        delta.transfers += 1;
        deltas.set(accountId, delta);
      };
      for (const event of events) {
        if (event.type !== TRANSFERRED_EVENT_TYPE) continue;
        const data = event.data as unknown as TransferredData;
        const amountMicros = BigInt(data.amountMicros);
        add(data.fromAccountId, -amountMicros);
        add(data.toAccountId, amountMicros);
      }
      if (deltas.size === 0) return;
      // Rows in one fixed order, so concurrent appends lock accounts in the same order and
      // never deadlock each other.
      const accountIds = [...deltas.keys()].sort();
      const table = target.table('balances');
      await runner.query(
        `INSERT INTO ${table} AS b (account_id, balance_micros, transfers)
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::int[]) ORDER BY 1
         ON CONFLICT (account_id) DO UPDATE
           SET balance_micros = b.balance_micros + EXCLUDED.balance_micros, transfers = b.transfers + EXCLUDED.transfers`,
        [
          accountIds,
          accountIds.map((accountId) => deltas.get(accountId)!.amountMicros.toString()),
          accountIds.map((accountId) => deltas.get(accountId)!.transfers),
        ],
      );
    },
  };
}
