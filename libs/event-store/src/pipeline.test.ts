import { PipelinedTransaction } from './pipeline.js';
import { openStoreHarness, type StoreHarness } from './test-harness.js';

describe('PipelinedTransaction (real Postgres, pipeline mode)', () => {
  let harness: StoreHarness;
  const count = async () =>
    Number((await harness.dataSource.query('SELECT count(*)::int AS n FROM casino.pipeline_rows'))[0].n);

  beforeAll(async () => {
    harness = await openStoreHarness('pipeline', { poolMax: 2 });
    await harness.dataSource.query(
      'CREATE TABLE casino.pipeline_rows (id int PRIMARY KEY, note text NOT NULL)',
    );
  });

  afterAll(async () => {
    await harness?.close();
  });

  it('runs BEGIN with the first statements and COMMIT with the last ones, each statement answered in order', async () => {
    const [transaction, [inserted]] = await harness.store.beginPipelined([
      { text: 'INSERT INTO casino.pipeline_rows VALUES (1, $1) RETURNING id', values: ['one'] },
    ]);
    expect(inserted!.rows).toEqual([{ id: 1 }]);
    const [second, third] = await transaction.send([
      { text: 'INSERT INTO casino.pipeline_rows VALUES (2, $1) RETURNING id', values: ['two'] },
      { text: 'SELECT count(*)::int AS n FROM casino.pipeline_rows' },
    ]);
    expect(second!.rows).toEqual([{ id: 2 }]);
    expect(third!.rows).toEqual([{ n: 2 }]);
    // Not visible to others before the commit.
    expect(await count()).toBe(0);
    const [last] = await transaction.commit([
      { text: 'INSERT INTO casino.pipeline_rows VALUES (3, $1) RETURNING note', values: ['three'] },
    ]);
    expect(last!.rows).toEqual([{ note: 'three' }]);
    expect(await count()).toBe(3);
  });

  it('a statement that fails next to the COMMIT rolls everything back and rejects with its own error', async () => {
    const before = await count();
    const [transaction] = await harness.store.beginPipelined([
      { text: 'INSERT INTO casino.pipeline_rows VALUES (10, $1)', values: ['ten'] },
    ]);
    await expect(
      transaction.commit([
        { text: 'INSERT INTO casino.pipeline_rows VALUES (11, $1)', values: ['eleven'] },
        { text: `SELECT casino.event_store_fail('projection check failed: ' || $1)`, values: ['row 11'] },
      ]),
    ).rejects.toThrow('projection check failed: row 11');
    expect(await count()).toBe(before);
    // Both pooled connections are usable again (nothing left in an aborted transaction).
    await Promise.all([count(), count(), count()]);
    const [again] = await harness.store.beginPipelined([
      { text: 'INSERT INTO casino.pipeline_rows VALUES (10, $1)', values: ['ten'] },
    ]);
    await again.commit();
    expect(await count()).toBe(before + 1);
  });

  it('run: a whole transaction in one round trip commits every statement, or none when one fails', async () => {
    const before = await count();
    const [first, second] = await PipelinedTransaction.run(harness.dataSource, [
      { text: 'INSERT INTO casino.pipeline_rows VALUES (20, $1) RETURNING id', values: ['twenty'] },
      { text: 'SELECT count(*)::int AS n FROM casino.pipeline_rows' },
    ]);
    expect(first!.rows).toEqual([{ id: 20 }]);
    expect(second!.rows).toEqual([{ n: before + 1 }]);
    expect(await count()).toBe(before + 1);
    await expect(
      PipelinedTransaction.run(harness.dataSource, [
        { text: `SELECT casino.event_store_fail('stale: ' || $1)`, values: ['row 21'] },
        { text: 'INSERT INTO casino.pipeline_rows VALUES (21, $1)', values: ['twenty-one'] },
      ]),
    ).rejects.toThrow('stale: row 21');
    expect(await count()).toBe(before + 1);
    // The connections are usable again.
    await Promise.all([count(), count(), count()]);
  });

  it('a failure in the first round trip ends the transaction; the object refuses further use', async () => {
    await expect(
      harness.store.beginPipelined([
        { text: 'INSERT INTO casino.pipeline_rows VALUES (1, $1)', values: ['duplicate'] },
      ]),
    ).rejects.toThrow(/duplicate key/);
    const [transaction] = await harness.store.beginPipelined([]);
    await transaction.rollback();
    await expect(transaction.send([{ text: 'SELECT 1' }])).rejects.toThrow(
      'the transaction has already ended',
    );
  });
});
