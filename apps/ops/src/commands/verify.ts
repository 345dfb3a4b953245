import type { ServiceName } from '@pf/contracts';
import {
  booleanFlag,
  ExitCode,
  formatCount,
  parseArgs,
  parseDurationMs,
  stringFlag,
  UsageError,
  type OpsMessage,
  type Violation,
} from '@pf/ops-kit';
import {
  checkAwardsAgainstEscrows,
  checkClaimsAgainstTransfers,
  checkHoldsAgainstEscrows,
  FactSet,
} from '../cross-checks.js';
import { formatIds, formatSeconds, note, progressRenderer, say } from '../output.js';
import type { OpsConfig } from '../config.js';
import {
  natsVerifyRecorder,
  verifyResultRecord,
  type VerifyRecorder,
  type VerifyRunSummary,
} from '../verify-record.js';
import { hasServiceEntry, runServiceEntry, selectServices, serviceEntryPath } from '../service-entries.js';

const FLAGS = { grace: 'string', json: 'boolean', 'no-compare': 'boolean' } as const;
const DEFAULT_GRACE_MS = 10_000;

export const verifyUsage = `ops verify [casino|faucet|escrow|all] [--grace 10s] [--no-compare] [--json]
  Recomputes everything from the logs and checks the invariants: the books balance, no agent
  below zero, live holds match funded/completed escrows one to one, faucet claims match treasury
  transfers one to one, and each projection equals its replay. Exit code 1 if anything is off.
  --grace: cross-service facts younger than this are not reported (sagas in flight).`;

/**
 * `ops verify`: each service entry checks its own log and projections and states its facts;
 * the cross-service checks join those facts here (no service reads another's tables).
 */
export async function verifyCommand(
  argv: readonly string[],
  config: OpsConfig,
  record: VerifyRecorder = natsVerifyRecorder(config),
): Promise<number> {
  const summary: VerifyRunSummary = {
    selection: 'all',
    servicesVerified: [],
    exitCode: ExitCode.usage,
    checks: [],
    lines: [],
  };
  let ran = false;
  try {
    summary.exitCode = await runVerify(argv, summary, () => (ran = true));
    return summary.exitCode;
  } finally {
    // Whatever the outcome (a service that could not be verified too), once the run started the
    // operator view learns of it; bad arguments (nothing ran) are not a result.
    if (ran) await record(verifyResultRecord(summary, new Date()));
  }
}

async function runVerify(
  argv: readonly string[],
  summary: VerifyRunSummary,
  started: () => void,
): Promise<number> {
  const args = parseArgs(argv, FLAGS);
  if (args.positionals.length > 1) throw new UsageError(`usage: ${verifyUsage.split('\n')[0]}`);
  const { selection, services } = selectServices(args.positionals[0] ?? 'all');
  const graceText = stringFlag(args, 'grace');
  const graceMs =
    graceText === undefined
      ? DEFAULT_GRACE_MS
      : graceText === '0'
        ? 0
        : parseDurationMs(graceText, '--grace');
  const json = booleanFlag(args, 'json');
  summary.selection = selection;
  started();
  let violations = 0;
  const countFor = (name: string) => {
    let check = summary.checks.find((entry) => entry.name === name);
    if (!check) summary.checks.push((check = { name, status: 'ran', violations: 0 }));
    return check;
  };
  const report = (service: string, violation: Violation, checkName: string = service) => {
    violations += 1;
    countFor(checkName).violations += 1;
    summary.lines.push(formatViolation(service, violation));
    say(
      json
        ? JSON.stringify({ type: 'violation', service, ...violation })
        : formatViolation(service, violation),
    );
  };

  const facts = new FactSet();
  const verified = new Set<ServiceName>();
  const renderer = progressRenderer();
  for (const service of services) {
    if (!hasServiceEntry(service)) {
      if (selection !== 'all')
        throw new UsageError(`${service} has no ops entry in this build (${serviceEntryPath(service)})`);
      note(`${service}: skipped (no ops entry in this build)`);
      continue;
    }
    const entryArgs = [
      'verify',
      '--if-deployed',
      ...(booleanFlag(args, 'no-compare') ? ['--no-compare'] : []),
    ];
    const outcome = await runServiceEntry(service, entryArgs, renderer, (message: OpsMessage) => {
      if (message.type === 'violation') {
        const { type: _type, service: from, ...violation } = message;
        report(from, violation);
      } else if (message.type === 'fact') facts.add(message.fact);
      else if (message.type === 'note') note(`${message.service}: ${message.message}`);
    });
    if (outcome.exitCode === ExitCode.usage || !outcome.result) {
      note(`ops: ${service}: ${outcome.error ?? `verify failed (exit code ${outcome.exitCode})`}`);
      return ExitCode.usage;
    }
    const result = outcome.result;
    if ('skipped' in result) {
      note(`${service}: skipped: ${result.skipped}`);
      continue;
    }
    verified.add(service);
    summary.servicesVerified.push(service);
    countFor(service);
    if (result.command === 'verify') {
      const line = `${service}: ${result.violations === 0 ? 'ok' : `${result.violations} violation(s)`} (${formatCount(result.eventsChecked)} events checked in ${formatSeconds(result.durationMs)})`;
      if (json) say(JSON.stringify(result));
      else note(line);
    }
  }

  const options = { nowMs: Date.now(), graceMs };
  const crossChecks: Array<{ name: string; needs: ServiceName[]; run: () => Violation[] }> = [
    {
      name: 'holds vs escrows',
      needs: ['casino', 'escrow'],
      run: () => checkHoldsAgainstEscrows(facts, options),
    },
    {
      name: 'faucet claims vs treasury transfers',
      needs: ['casino', 'faucet'],
      run: () => checkClaimsAgainstTransfers(facts, options),
    },
    {
      name: 'market awards vs escrows',
      needs: ['escrow', 'market'],
      run: () => checkAwardsAgainstEscrows(facts, options),
    },
  ];
  for (const check of crossChecks) {
    const missing = check.needs.filter((service) => !verified.has(service));
    if (missing.length > 0) {
      if (selection === 'all') summary.checks.push({ name: check.name, status: 'skipped', violations: 0 });
      if (selection === 'all')
        note(`cross-check ${check.name}: skipped (${missing.join(', ')} not verified)`);
      continue;
    }
    countFor(check.name);
    for (const violation of check.run()) report('cross-service', violation, check.name);
  }
  if (!json) say(violations === 0 ? 'verify: ok, no violations' : `verify: ${violations} violation(s)`);
  return violations === 0 ? ExitCode.ok : ExitCode.violations;
}

/** `VIOLATION casino projection_mismatch account=ag_… expected=… actual=…: detail` */
export function formatViolation(service: string, violation: Violation): string {
  const values = [
    formatIds(violation.ids),
    violation.expected !== undefined ? `expected=${violation.expected}` : '',
    violation.actual !== undefined ? `actual=${violation.actual}` : '',
  ].filter(Boolean);
  return `VIOLATION ${service} ${violation.check}${values.length > 0 ? ` ${values.join(' ')}` : ''}: ${violation.detail}`;
}
