import { eventStoreDdl, eventStoreFailFunctionDdl, projectionTarget } from '@pf/event-store';
import { migratedAndExpectedShapes, pickTables } from '@pf/testing';
import { escrowProjection } from './escrow-projection.js';
import { ESCROW_SCHEMA, escrowMigrations } from './migrations.js';

/**
 * Migrations are frozen text (see frozenMigration), so nothing ties them to the code that reads
 * the tables but this test: a database migrated from zero must have exactly the shape the event
 * store's DDL and the projection's createTables give (a rebuild by ops replay creates the
 * latter and swaps it in, so the two must never differ). Tables outside the projection are
 * named here, so a new one is a conscious addition.
 */
const OPERATIONAL_TABLES = ['migrations', 'settlements'];

describe('escrow migrations', () => {
  it('given a fresh database, when migrated from zero, then its schema is the one the escrow projection creates', async () => {
    const target = projectionTarget(ESCROW_SCHEMA);
    const { migrated, expected } = await migratedAndExpectedShapes({
      label: 'escrowmigrations',
      schema: ESCROW_SCHEMA,
      migrations: escrowMigrations,
      expectedDdl: [
        ...eventStoreDdl(ESCROW_SCHEMA),
        eventStoreFailFunctionDdl(ESCROW_SCHEMA),
        ...escrowProjection.createTables(target),
      ],
    });

    expect(Object.keys(migrated.tables).sort()).toEqual(
      [...Object.keys(expected.tables), ...OPERATIONAL_TABLES].sort(),
    );
    expect(pickTables(migrated, Object.keys(expected.tables))).toEqual(expected.tables);
    expect(migrated.functions).toEqual(expected.functions);
  });
});
