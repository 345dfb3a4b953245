import { eventStoreDdl, eventStoreFailFunctionDdl, projectionTarget } from '@pf/event-store';
import { migratedAndExpectedShapes, pickTables } from '@pf/testing';
import { faucetProjection } from './faucet-projection.js';
import { FAUCET_SCHEMA, faucetMigrations } from './migrations.js';

/**
 * Migrations are frozen text (see frozenMigration), so nothing ties them to the code that reads
 * the tables but this test: a database migrated from zero must have exactly the shape the event
 * store's DDL and the projection's createTables give (a rebuild by ops replay creates the
 * latter and swaps it in, so the two must never differ). Tables outside the projection are
 * named here, so a new one is a conscious addition.
 */
const OPERATIONAL_TABLES = ['migrations', 'depositors', 'ip_claims'];

describe('faucet migrations', () => {
  it('given a fresh database, when migrated from zero, then its schema is the one the faucet projection creates', async () => {
    const target = projectionTarget(FAUCET_SCHEMA);
    const { migrated, expected } = await migratedAndExpectedShapes({
      label: 'faucetmigrations',
      schema: FAUCET_SCHEMA,
      migrations: faucetMigrations,
      expectedDdl: [
        ...eventStoreDdl(FAUCET_SCHEMA),
        eventStoreFailFunctionDdl(FAUCET_SCHEMA),
        ...faucetProjection.createTables(target),
      ],
    });

    expect(Object.keys(migrated.tables).sort()).toEqual(
      [...Object.keys(expected.tables), ...OPERATIONAL_TABLES].sort(),
    );
    expect(pickTables(migrated, Object.keys(expected.tables))).toEqual(expected.tables);
    expect(migrated.functions).toEqual(expected.functions);
  });
});
