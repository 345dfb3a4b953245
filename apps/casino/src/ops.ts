/**
 * The casino's ops entry: `node dist/apps/casino/src/ops.js replay|verify [options]`, run by the
 * `ops` CLI (apps/ops) as a child process so that the CLI never imports service code. It knows
 * the casino's projection and invariants; the machinery (replay into shadow tables, swap,
 * comparison, JSON-lines protocol) is libs/ops-kit.
 */
import 'reflect-metadata';
import { runServiceOps } from '@pf/ops-kit';
import { casinoKeysProjection } from './infrastructure/keys-projection.js';
import { casinoProjection } from './infrastructure/ledger-projection.js';
import { CASINO_SCHEMA } from './infrastructure/migrations.js';
import { casinoChecks, casinoFacts } from './infrastructure/ops-checks.js';

await runServiceOps({
  service: CASINO_SCHEMA,
  projections: [casinoProjection, casinoKeysProjection],
  checks: casinoChecks,
  facts: casinoFacts,
});
