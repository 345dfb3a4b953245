import { createTestDatabase, type TestDatabase } from '@pf/testing';
import { randomUUID } from 'node:crypto';
import { projectionTarget } from '@pf/event-store';
import { DataSource } from 'typeorm';
import { encodeLedgerEvent } from '../infrastructure/ledger-codec.js';
import { casinoProjection } from '../infrastructure/ledger-projection.js';
import { CASINO_SCHEMA, casinoMigrations } from '../infrastructure/migrations.js';
import { ledgerCheckSql, ledgerLoadSql } from './ledger.service.js';

/**
 * The ledger batch's load statement runs as a named prepared statement from the first command
 * on, usually on empty tables: its generic plan must reach the log and the balance rows by key,
 * or it would scan them on every batch as they grow (until autovacuum's first ANALYZE).
 */
describe('ledger batch load statement plan (real Postgres)', () => {
  let database: TestDatabase;
  let dataSource: DataSource;

  beforeAll(async () => {
    database = await createTestDatabase('ledgerplan');
    dataSource = new DataSource({
      type: 'postgres',
      url: database.url,
      schema: CASINO_SCHEMA,
      migrations: casinoMigrations,
      extra: { max: 1 },
    });
    await dataSource.initialize();
    await dataSource.query(`CREATE SCHEMA ${CASINO_SCHEMA}`);
    await dataSource.runMigrations({ transaction: 'each' });
  });

  afterAll(async () => {
    await dataSource?.destroy();
    await database?.drop();
  });

  /** The plan Postgres caches for `sql` when it is prepared on the tables as they are (force_generic_plan), shown for `args`. */
  async function genericPlan(
    name: string,
    types: readonly string[],
    sql: string,
    args: readonly string[],
  ): Promise<string> {
    const runner = dataSource.createQueryRunner();
    await runner.connect();
    try {
      await runner.query('SET plan_cache_mode = force_generic_plan');
      await runner.query(`PREPARE ${name}(${types.join(', ')}) AS ${sql}`);
      const rows: Array<Record<string, string>> = await runner.query(
        `EXPLAIN EXECUTE ${name}(${args.join(', ')})`,
      );
      return rows.map((row) => row['QUERY PLAN']).join('\n');
    } finally {
      await runner.query('DEALLOCATE ALL').catch(() => undefined);
      await runner.query('RESET plan_cache_mode').catch(() => undefined);
      await runner.release();
    }
  }

  it('looks streams and balance rows up by index with a generic plan made on empty tables', async () => {
    const plan = await genericPlan('ledger_load', ['text[]', 'text[]'], ledgerLoadSql(CASINO_SCHEMA), [
      `'{op-a,op-b}'`,
      `'{ag_000000000001}'`,
    ]);
    expect(plan).toMatch(/Index Scan (using|on) events_stream_version_unique/);
    expect(plan).toMatch(/Index Scan using accounts_pkey on accounts/);
    expect(plan).not.toMatch(/Seq Scan on (events|accounts)/);
  });

  it('the cached batch check locks balance rows by key with a generic plan made on empty tables', async () => {
    const plan = await genericPlan(
      'ledger_check',
      ['text[]', 'bigint[]', 'bigint[]'],
      ledgerCheckSql(CASINO_SCHEMA),
      [`'{ag_000000000001}'`, `'{5}'`, `'{0}'`],
    );
    expect(plan).toMatch(/Index Scan using accounts_pkey on accounts/);
    expect(plan).not.toMatch(/Seq Scan on accounts/);
  });

  it('the pipelined projection updates balance rows and finds events by key with a generic plan made on empty tables', async () => {
    const event = encodeLedgerEvent({
      type: 'hold_placed',
      holdId: 'plan-hold',
      from: 'ag_000000000001',
      amountMicros: 5n,
      reason: 'escrow',
    });
    const [statement] = casinoProjection.statements!(
      [{ streamId: 'op-plan-hold', eventId: randomUUID(), type: event.type, data: event.data, metadata: {} }],
      projectionTarget(CASINO_SCHEMA),
    );
    const types = [
      'text[]',
      ...Array<string>(8).fill('bigint[]'),
      'uuid[]',
      'text[]',
      'text[]',
      'text[]',
      'bigint[]',
      'bigint[]',
      'text[]',
      'text[]',
      'text[]',
    ];
    expect(statement!.values).toHaveLength(types.length);
    const literal = (value: unknown) =>
      `'{${(value as unknown[]).map((item) => (item === null ? 'NULL' : `"${String(item)}"`)).join(',')}}'`;
    const plan = await genericPlan(
      'ledger_projection',
      types,
      statement!.text,
      statement!.values!.map(literal),
    );
    expect(plan).toMatch(/Index Scan using accounts_pkey on accounts/);
    expect(plan).toMatch(/Tid Scan on accounts a/);
    expect(plan).toMatch(/Index Scan using events_event_id_unique on events/);
    expect(plan).not.toMatch(/Seq Scan on (events|accounts)/);
  });

  it('the cached batch check passes only when every balance row holds exactly the cached amounts', async () => {
    await dataSource.query(
      `INSERT INTO ${CASINO_SCHEMA}.accounts (account_id, available_micros, held_micros) VALUES ('ag_0000000000c1', 7, 3), ('ag_0000000000c2', 0, 0)`,
    );
    const check = (ids: string[], available: number[], held: number[]) =>
      dataSource.query(ledgerCheckSql(CASINO_SCHEMA), [ids, available, held]);
    await expect(check(['ag_0000000000c1', 'ag_0000000000c2'], [7, 0], [3, 0])).resolves.toEqual([
      { ok: true },
    ]);
    await expect(check(['ag_0000000000c1', 'ag_0000000000c2'], [7, 0], [2, 0])).rejects.toThrow(
      'ledger: cached balance is stale for ag_0000000000c1',
    );
    await expect(check(['ag_0000000000c1', 'ag_0000000000c2'], [7, 1], [3, 0])).rejects.toThrow(
      'ledger: cached balance is stale for ag_0000000000c2',
    );
    // A row that is gone (or never was) is stale too.
    await expect(check(['ag_0000000000zz'], [0], [0])).rejects.toThrow(
      'ledger: cached balance is stale for ag_0000000000zz',
    );
  });
});
