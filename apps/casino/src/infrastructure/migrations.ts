import type { MigrationInterface } from 'typeorm';
import { eventStoreMigrations, projectionMigration } from '@pf/event-store';
import { CasinoApiKeys1765900000019 } from './keys-projection.js';
import { casinoProjection } from './ledger-projection.js';

export const CASINO_SCHEMA = 'casino';

const CasinoProjectionTables1764000000001 = projectionMigration(
  'CasinoProjectionTables1764000000001',
  CASINO_SCHEMA,
  casinoProjection,
);

export const casinoMigrations: Array<new () => MigrationInterface> = [
  ...eventStoreMigrations(CASINO_SCHEMA),
  CasinoProjectionTables1764000000001,
  // Sub-keys and their spends (ADR 0019): a projection of its own, with fixed DDL.
  CasinoApiKeys1765900000019,
];
