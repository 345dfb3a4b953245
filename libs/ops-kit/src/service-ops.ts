import type { Projection } from '@pf/event-store';
import { DataSource } from 'typeorm';
import { booleanFlag, ExitCode, parseArgs, stringFlag, UsageError, type FlagSpec } from './args.js';
import {
  encodeMessage,
  type OpsMessage,
  type OpsPhase,
  type VerifyFact,
  type Violation,
} from './protocol.js';
import { ReplayEngine } from './replay.js';
import { parseBatchSize, parseReplayOptions, REPLAY_FLAGS, type ReplayOptions } from './replay-options.js';
import { qualify } from './sql.js';
import { identifyingFields, tableExists } from './tables.js';

/** What a service plugs into the ops tooling: its schema, its projections and its own checks. */
export interface ServiceOpsDefinition {
  /** Service name, also its Postgres schema. */
  service: string;
  /** Inline projections, in the order the service's writers lock their tables. */
  projections: readonly Projection[];
  /** Invariants only this service can check from its own log (books balance, no negative balance…). */
  checks?: (context: ServiceOpsContext) => Promise<ServiceCheckReport>;
  /** Facts from this service's log for the cross-service checks of the `ops` CLI. */
  facts?: (context: ServiceOpsContext, emit: (fact: VerifyFact) => Promise<void>) => Promise<void>;
}

export interface ServiceOpsContext {
  dataSource: DataSource;
  schema: string;
  progress: (phase: OpsPhase, done: number, total: number) => void;
}

export interface ServiceCheckReport {
  eventsChecked: number;
  violations: Violation[];
}

const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/agent_marketplace';
const CONNECT_TIMEOUT_MS = 5_000;
/** Progress lines at most this often (the CLI redraws from them). */
const PROGRESS_INTERVAL_MS = 200;

const FLAGS: Record<string, FlagSpec> = {
  replay: { ...REPLAY_FLAGS, 'if-deployed': 'boolean' },
  verify: { 'batch-size': 'string', 'if-deployed': 'boolean', 'no-compare': 'boolean' },
};

/**
 * The main function of a service's ops entry (`apps/<service>/src/ops.ts`):
 *   replay [--to-position N | --to-time ISO] [--into NAME] [--swap] [--batch-size N] [--if-deployed]
 *   verify [--batch-size N] [--no-compare] [--if-deployed]
 * Speaks the JSON-lines protocol of protocol.ts on stdout and sets the exit code
 * (0 ok, 1 violations, 2 bad input or failure). Configured by DATABASE_URL.
 */
export async function runServiceOps(
  definition: ServiceOpsDefinition,
  argv: readonly string[] = process.argv.slice(2),
): Promise<void> {
  const out = new MessageWriter(definition.service);
  let dataSource: DataSource | undefined;
  try {
    const [command, ...rest] = argv;
    const spec = command ? FLAGS[command] : undefined;
    if (!command || !spec)
      throw new UsageError(`usage: ops.js replay|verify [options] (got ${JSON.stringify(command ?? '')})`);
    const args = parseArgs(rest, spec);
    if (args.positionals.length > 0)
      throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[0])}`);
    const plan = command === 'replay' ? parseReplayOptions(args) : undefined;
    const batchSize = parseBatchSize(stringFlag(args, 'batch-size'));
    dataSource = await connect(definition.service, process.env.DATABASE_URL || DEFAULT_DATABASE_URL);
    if (!(await tableExists(dataSource, definition.service, 'events'))) {
      const reason = `no event log in this database (${qualify(definition.service, 'events')} does not exist)`;
      if (!booleanFlag(args, 'if-deployed')) throw new UsageError(reason);
      await out.send({
        type: 'result',
        command: command as 'replay' | 'verify',
        service: definition.service,
        ok: true,
        skipped: reason,
        maxRssBytes: maxRssBytes(),
      });
      process.exitCode = ExitCode.ok;
      return;
    }
    const engine = new ReplayEngine({
      dataSource,
      schema: definition.service,
      projections: definition.projections,
      batchSize,
      onProgress: out.progress,
    });
    process.exitCode = plan
      ? await runReplay(definition, engine, plan, out)
      : await runVerify(
          definition,
          engine,
          { dataSource, schema: definition.service, progress: out.progress },
          out,
          !booleanFlag(args, 'no-compare'),
        );
  } catch (error) {
    await out.send({ type: 'error', service: definition.service, message: oneLine(error) });
    process.exitCode = ExitCode.usage;
  } finally {
    await dataSource?.destroy().catch(() => undefined);
  }
}

async function runReplay(
  definition: ServiceOpsDefinition,
  engine: ReplayEngine,
  plan: ReplayOptions,
  out: MessageWriter,
): Promise<number> {
  const release = await engine.exclusive(plan.suffix);
  try {
    const startedAt = performance.now();
    const goalPosition = await engine.goalPosition(plan.bound);
    const outcome = await engine.replay(plan.suffix, goalPosition);
    let swappedEvents = 0;
    if (plan.swap) {
      out.flushProgress();
      swappedEvents = (await engine.swap(plan.suffix, goalPosition)).events;
    }
    const durationMs = performance.now() - startedAt;
    const events = outcome.events + swappedEvents;
    const tables = engine
      .tables()
      .map((table) =>
        plan.swap ? `${definition.service}.${table}` : `${definition.service}.${table}${plan.suffix}`,
      );
    await out.send({
      type: 'result',
      command: 'replay',
      service: definition.service,
      ok: true,
      events,
      goalPosition,
      tables,
      swapped: plan.swap,
      durationMs: Math.round(durationMs),
      eventsPerSecond: Math.round(outcome.events / Math.max(outcome.durationMs / 1000, 1e-3)),
      maxRssBytes: maxRssBytes(),
    });
    return ExitCode.ok;
  } finally {
    await release();
  }
}

/**
 * The service's own checks, then its facts, then "each projection equals its replay": a
 * replay into `_verify` tables compared with the live ones at one instant, then dropped.
 */
async function runVerify(
  definition: ServiceOpsDefinition,
  engine: ReplayEngine,
  context: ServiceOpsContext,
  out: MessageWriter,
  compare: boolean,
): Promise<number> {
  const startedAt = performance.now();
  let violations = 0;
  let eventsChecked = 0;
  const report = async (violation: Violation) => {
    violations += 1;
    await out.send({ type: 'violation', service: definition.service, ...violation });
  };
  if (definition.checks) {
    const checked = await definition.checks(context);
    eventsChecked = checked.eventsChecked;
    for (const violation of checked.violations) await report(violation);
  }
  if (definition.facts)
    await definition.facts(context, (fact) => out.send({ type: 'fact', service: definition.service, fact }));
  if (compare && definition.projections.length > 0) {
    const compared = await compareWithReplay(engine);
    eventsChecked = Math.max(eventsChecked, compared.events);
    for (const violation of compared.violations) await report(violation);
  }
  await out.send({
    type: 'result',
    command: 'verify',
    service: definition.service,
    ok: violations === 0,
    violations,
    eventsChecked,
    durationMs: Math.round(performance.now() - startedAt),
    maxRssBytes: maxRssBytes(),
  });
  return violations === 0 ? ExitCode.ok : ExitCode.violations;
}

const VERIFY_SUFFIX = '_verify';

async function compareWithReplay(engine: ReplayEngine): Promise<{ events: number; violations: Violation[] }> {
  const release = await engine.exclusive(VERIFY_SUFFIX);
  try {
    const goalPosition = await engine.goalPosition({ kind: 'head' });
    const { events } = await engine.replay(VERIFY_SUFFIX, goalPosition);
    const differences = await engine.compare(VERIFY_SUFFIX, goalPosition);
    const violations = differences.flatMap((difference) =>
      difference.rows.map(({ side, row }): Violation => ({
        check: 'projection_differs_from_replay',
        ids: { table: difference.table, ...identifyingFields(row) },
        detail: `${side === 'live' ? 'live row missing from the replay of' : 'replayed row missing from live'} ${difference.table} (${difference.count} differing row(s) in all): ${JSON.stringify(row).slice(0, 400)}`,
      })),
    );
    return { events, violations };
  } finally {
    await engine.drop(VERIFY_SUFFIX).catch(() => undefined);
    await release();
  }
}

async function connect(service: string, url: string): Promise<DataSource> {
  const dataSource = new DataSource({
    type: 'postgres',
    url,
    schema: service,
    synchronize: false,
    logging: false,
    extra: { max: 8, application_name: `${service}-ops`, connectionTimeoutMillis: CONNECT_TIMEOUT_MS },
  });
  try {
    await dataSource.initialize();
    await dataSource.query('SELECT 1');
  } catch (error) {
    throw new UsageError(`cannot reach Postgres at ${redactedUrl(url)}: ${oneLine(error)}`);
  }
  return dataSource;
}

/** The URL without its password, for error messages. */
export function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable URL)';
  }
}

export function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message || error.name : String(error);
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 500 ? `${flat.slice(0, 499)}…` : flat;
}

export function maxRssBytes(): number {
  // resourceUsage().maxRSS is in kilobytes.
  return process.resourceUsage().maxRSS * 1024;
}

/** Writes protocol lines to stdout, waiting when the pipe is full (facts can be many). */
class MessageWriter {
  private lastProgressMs = -Infinity;
  private pending: { phase: OpsPhase; done: number; total: number } | undefined;

  constructor(private readonly service: string) {}

  readonly progress = (phase: OpsPhase, done: number, total: number): void => {
    this.pending = { phase, done, total };
    const nowMs = performance.now();
    if (nowMs - this.lastProgressMs < PROGRESS_INTERVAL_MS && done < total && done > 0) return;
    this.flushProgress();
  };

  flushProgress(): void {
    if (!this.pending) return;
    this.lastProgressMs = performance.now();
    process.stdout.write(encodeMessage({ type: 'progress', service: this.service, ...this.pending }));
    this.pending = undefined;
  }

  async send(message: OpsMessage): Promise<void> {
    if (message.type !== 'progress') this.flushProgress();
    if (!process.stdout.write(encodeMessage(message)))
      await new Promise((resolve) => process.stdout.once('drain', resolve));
  }
}
