import type { MigrationInterface, QueryRunner } from 'typeorm';
import { createProjectionTables, eventStoreMigrations, projectionTarget } from '@pf/event-store';
import { casinoProjection } from './ledger-projection.js';

export const CASINO_SCHEMA = 'casino';

class CasinoProjectionTables1764000000001 implements MigrationInterface {
  readonly name = 'CasinoProjectionTables1764000000001';

  async up(runner: QueryRunner): Promise<void> {
    await createProjectionTables(runner, casinoProjection, projectionTarget(CASINO_SCHEMA));
  }

  async down(runner: QueryRunner): Promise<void> {
    for (const table of casinoProjection.tables) await runner.query(`DROP TABLE IF EXISTS ${CASINO_SCHEMA}.${table}`);
  }
}

export const casinoMigrations: Array<new () => MigrationInterface> = [...eventStoreMigrations(CASINO_SCHEMA), CasinoProjectionTables1764000000001];
