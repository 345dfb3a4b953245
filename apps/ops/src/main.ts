#!/usr/bin/env node
/**
 * `ops`: the operators' command line, against a running or stopped system. Configured like the
 * services (DATABASE_URL, NATS_URL, NATS_PREFIX). Exit codes: 0 ok, 1 violations found
 * (verify), 2 bad input or an unreachable dependency (then nothing was changed).
 *
 * Replay and verify run each service's own ops entry (dist/apps/<service>/src/ops.js) as a
 * child process: only the service knows its projections, and apps never import apps.
 */
import { ExitCode, oneLine, UsageError } from '@pf/ops-kit';
import { readConfig } from './config.js';

/** Commands load their modules on demand: `ops tail` need not load TypeORM, `ops replay` not NATS. */
async function run(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(`${await usage()}\n`);
    return command === undefined ? ExitCode.usage : ExitCode.ok;
  }
  const config = readConfig();
  switch (command) {
    case 'replay':
      return (await import('./commands/replay.js')).replayCommand(rest);
    case 'verify':
      return (await import('./commands/verify.js')).verifyCommand(rest, config);
    case 'tail':
      return (await import('./commands/tail.js')).tailCommand(rest, config);
    case 'streams':
      return (await import('./commands/streams.js')).streamsCommand(rest, config);
    case 'dlq':
      return (await import('./commands/dlq.js')).dlqCommand(rest, config);
    case 'credit':
      return (await import('./commands/credit.js')).creditCommand(rest, config);
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)} (ops help lists them)`);
  }
}

async function usage(): Promise<string> {
  const texts = await Promise.all([
    import('./commands/replay.js').then((module) => module.replayUsage),
    import('./commands/verify.js').then((module) => module.verifyUsage),
    import('./commands/tail.js').then((module) => module.tailUsage),
    import('./commands/streams.js').then((module) => module.streamsUsage),
    import('./commands/dlq.js').then((module) => module.dlqUsage),
    import('./commands/credit.js').then((module) => module.creditUsage),
  ]);
  return `usage: ops <command> [options]   (npm run ops -- <command>)

${texts.join('\n\n')}

Environment: DATABASE_URL, NATS_URL, NATS_PREFIX, and NATS_USER/NATS_PASSWORD, NATS_TOKEN, NATS_CREDS,
NATS_NKEY_SEED, NATS_TLS_CA/NATS_TLS_CERT/NATS_TLS_KEY (as for the services; ops connects as the ops user).
Exit codes: 0 ok, 1 violations (verify), 2 bad input or unreachable Postgres/NATS.`;
}

try {
  process.exitCode = await run(process.argv.slice(2));
} catch (error) {
  // One line, no stack: an operator's typo or a dead server, not a bug report. Anything else
  // still says what failed.
  process.stderr.write(`ops: ${error instanceof UsageError ? error.message : `failed: ${oneLine(error)}`}\n`);
  process.exitCode = ExitCode.usage;
}
