import type { DataSource } from 'typeorm';
import { SystemAccount } from '../domain/accounts.js';
import { CASINO_SCHEMA } from '../infrastructure/migrations.js';
import { operationStream, type LedgerService } from './ledger.service.js';
import { openLedgerHarness, type LedgerHarness } from './test-harness.js';

/**
 * How LedgerService forms batches, observed in the log: the events of one batch share its
 * transaction id. Run in-process on a real Postgres, so the commands are issued at known moments.
 */
describe('ledger batching (real Postgres)', () => {
  let harness: LedgerHarness;
  let dataSource: DataSource;
  let ledger: LedgerService;

  const deposit = (transferId: string) =>
    ledger.execute(
      {
        kind: 'transfer',
        transferId,
        from: SystemAccount.world,
        to: SystemAccount.faucetTreasury,
        amountMicros: 1n,
        reason: 'deposit',
      },
      { service: 'test' },
    );

  const transactionsOf = async (operationIds: readonly string[]): Promise<number> => {
    const [row] = (await dataSource.query(
      `SELECT count(DISTINCT transaction_id)::int AS transactions FROM ${CASINO_SCHEMA}.events WHERE stream_id = ANY($1::text[])`,
      [operationIds.map(operationStream)],
    )) as Array<{ transactions: number }>;
    return row!.transactions;
  };

  beforeAll(async () => {
    harness = await openLedgerHarness('ledger-batching');
    ({ dataSource, ledger } = harness);
  });

  afterAll(async () => {
    await harness?.close();
  });

  it('commands issued in one event-loop turn, while nothing is in flight, commit as one batch', async () => {
    const ids = Array.from({ length: 5 }, (_, index) => `gather-${index}`);
    const replies = await Promise.all(ids.map(deposit));
    expect(replies.map((reply) => reply.status)).toEqual(ids.map(() => 'transferred'));
    // Without the one-turn wait the first command would leave alone, the other four after it.
    expect(await transactionsOf(ids)).toBe(1);
  });

  it('a lone command still commits on its own and is answered', async () => {
    const reply = await deposit('alone-1');
    expect(reply).toMatchObject({ status: 'transferred', operationId: 'alone-1' });
    expect(await transactionsOf(['alone-1'])).toBe(1);
  });

  it('commands that arrive while a batch is in flight wait for it and go together in the next one', async () => {
    const first = deposit('inflight-first');
    // Let the first batch start (one turn) before the others are issued.
    await new Promise((resolve) => setImmediate(resolve));
    const later = ['inflight-a', 'inflight-b', 'inflight-c'];
    await Promise.all([first, ...later.map(deposit)]);
    expect(await transactionsOf(['inflight-first'])).toBe(1);
    expect(await transactionsOf(later)).toBe(1);
    expect(await transactionsOf(['inflight-first', ...later])).toBe(2);
    // Each deposit reached the treasury exactly once.
    const [row] = (await dataSource.query(
      `SELECT count(*)::int AS entries, sum(amount_micros)::text AS micros FROM ${CASINO_SCHEMA}.ledger_entries WHERE account_id = $1 AND operation_id = ANY($2::text[])`,
      [SystemAccount.faucetTreasury, ['inflight-first', ...later]],
    )) as Array<{ entries: number; micros: string }>;
    expect(row).toEqual({ entries: 4, micros: '4' });
  });
});
