import { eventStoreDdl, eventStoreFailFunctionDdl, projectionTarget } from '@pf/event-store';
import { migratedAndExpectedShapes, pickTables } from '@pf/testing';
import { marketProjection } from './market-projection.js';
import { reputationProjection } from './reputation-projection.js';
import { MARKET_SCHEMA, marketMigrations } from './migrations.js';

/**
 * Migrations are frozen text (see frozenMigration), so nothing ties them to the code that reads
 * the tables but this test: a database migrated from zero must have exactly the shape the event
 * store's DDL and the projection's createTables give (a rebuild by ops replay creates the
 * latter and swaps it in, so the two must never differ). Tables outside the projection are
 * named here, so a new one is a conscious addition.
 */
const OPERATIONAL_TABLES = ['migrations', 'escrow_orders'];

describe('market migrations', () => {
  it('given a fresh database, when migrated from zero, then its schema is the one the job and reputation projections create', async () => {
    const target = projectionTarget(MARKET_SCHEMA);
    const { migrated, expected } = await migratedAndExpectedShapes({
      label: 'marketmigrations',
      schema: MARKET_SCHEMA,
      migrations: marketMigrations,
      expectedDdl: [
        ...eventStoreDdl(MARKET_SCHEMA),
        eventStoreFailFunctionDdl(MARKET_SCHEMA),
        ...marketProjection.createTables(target),
        ...reputationProjection.createTables(target),
      ],
    });

    expect(Object.keys(migrated.tables).sort()).toEqual(
      [...Object.keys(expected.tables), ...OPERATIONAL_TABLES].sort(),
    );
    expect(pickTables(migrated, Object.keys(expected.tables))).toEqual(expected.tables);
    expect(migrated.functions).toEqual(expected.functions);
  });
});
