import { eventStoreDdl, eventStoreFailFunctionDdl, projectionTarget } from '@pf/event-store';
import { migratedAndExpectedShapes, pickTables } from '@pf/testing';
import { casinoKeysProjection } from './keys-projection.js';
import { casinoProjection } from './ledger-projection.js';
import { CASINO_SCHEMA, casinoMigrations } from './migrations.js';

/**
 * Migrations are frozen text (see frozenMigration), so nothing ties them to the code that reads
 * the tables but this test: a database migrated from zero must have exactly the shape the event
 * store's DDL and the projection's createTables give (a rebuild by ops replay creates the
 * latter and swaps it in, so the two must never differ). Tables outside the projection are
 * named here, so a new one is a conscious addition.
 */
const OPERATIONAL_TABLES = ['migrations'];

describe('casino migrations', () => {
  it('given a fresh database, when migrated from zero, then its schema is the one the ledger and keys projections create', async () => {
    const target = projectionTarget(CASINO_SCHEMA);
    const { migrated, expected } = await migratedAndExpectedShapes({
      label: 'casinomigrations',
      schema: CASINO_SCHEMA,
      migrations: casinoMigrations,
      expectedDdl: [
        ...eventStoreDdl(CASINO_SCHEMA),
        eventStoreFailFunctionDdl(CASINO_SCHEMA),
        ...casinoProjection.createTables(target),
        ...casinoKeysProjection.createTables(target),
      ],
    });

    expect(Object.keys(migrated.tables).sort()).toEqual(
      [...Object.keys(expected.tables), ...OPERATIONAL_TABLES].sort(),
    );
    expect(pickTables(migrated, Object.keys(expected.tables))).toEqual(expected.tables);
    expect(migrated.functions).toEqual(expected.functions);
  });
});
