import { existsSync } from 'node:fs';
import path from 'node:path';
import { ManagedProcess, describeExit } from './children.js';
import { APP_NAMES, type AppName, type LauncherConfig } from './config.js';
import { complain, say } from './log.js';
import { isPortFree, sleep, waitAtMost } from './net.js';
import { LaunchError } from './launch-error.js';
import { StopRequested, type Supervisor } from './supervisor.js';

/** One app's migrations are a handful of DDL statements; a minute means something is stuck. */
const MIGRATE_TIMEOUT_MS = 60_000;
const HEALTH_REQUEST_TIMEOUT_MS = 1_000;
const HEALTH_POLL_INTERVAL_MS = 250;
const REPORT_LINES = 20;

export interface Connections {
  databaseUrl: string;
  natsUrl: string;
  /** Per-app NATS variables (its own bus user on the embedded server). */
  natsEnv?: Partial<Record<AppName, Record<string, string>>>;
}

export function appEntry(config: LauncherConfig, app: AppName): string {
  return path.join(config.rootDir, 'dist', 'apps', app, 'src', 'main.js');
}

/** Before anything slow: every app is built and (unless only migrating) its port is free. */
export async function assertAppsCanStart(config: LauncherConfig): Promise<void> {
  for (const app of APP_NAMES) {
    if (!existsSync(appEntry(config, app)))
      throw new LaunchError(
        `${appEntry(config, app)} is missing: run npm run build (npm start does it first)`,
      );
  }
  if (config.migrateOnly) return;
  const busy: AppName[] = [];
  for (const app of APP_NAMES) {
    if (!(await isPortFree(config.appPorts[app], config.host))) busy.push(app);
  }
  if (busy.length > 0) {
    const list = busy.map((app) => `${config.appPorts[app]} (${app}, ${app.toUpperCase()}_PORT)`).join(', ');
    throw new LaunchError(
      `ports in use on ${config.host}: ${list}. Stop whatever holds them or choose other ports.`,
    );
  }
}

/** The app's environment: everything the launcher got (LOG_LEVEL, NATS_PREFIX, …) plus the resolved connections and its port. */
function appEnv(config: LauncherConfig, app: AppName, connections: Connections): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DATABASE_URL: connections.databaseUrl,
    NATS_URL: connections.natsUrl,
    ...connections.natsEnv?.[app],
    HOST: config.host,
    PORT: String(config.appPorts[app]),
  };
}

function spawnApp(
  config: LauncherConfig,
  app: AppName,
  connections: Connections,
  extraArgs: string[],
): ManagedProcess {
  return new ManagedProcess({
    name: app,
    command: process.execPath,
    args: [appEntry(config, app), ...extraArgs],
    env: appEnv(config, app, connections),
    cwd: config.rootDir,
    echo: () => true,
    format: config.logFormat,
  });
}

/** Each app's `--migrate-only`, one after another so their DDL never contends. */
export async function runMigrations(
  config: LauncherConfig,
  supervisor: Supervisor,
  connections: Connections,
): Promise<void> {
  for (const app of APP_NAMES) {
    const task = spawnApp(config, app, connections, ['--migrate-only']);
    supervisor.adoptTask(task);
    const exit = await supervisor.step(waitAtMost(task.exited, MIGRATE_TIMEOUT_MS));
    if (!exit) {
      await task.stop('SIGTERM', 2_000);
      throw new LaunchError(`migrations of ${app} did not finish within ${MIGRATE_TIMEOUT_MS} ms`);
    }
    if (exit.code !== 0)
      throw new LaunchError(`migrations of ${app} failed (${describeExit(exit)}); its output is above`);
  }
}

export function startApps(
  config: LauncherConfig,
  supervisor: Supervisor,
  connections: Connections,
): Record<AppName, ManagedProcess> {
  const apps = {} as Record<AppName, ManagedProcess>;
  for (const app of APP_NAMES) {
    apps[app] = spawnApp(config, app, connections, []);
    supervisor.adoptApp(apps[app]);
  }
  say(
    `started ${APP_NAMES.map((app) => `${app} (pid ${apps[app].pid}, port ${config.appPorts[app]})`).join(', ')}`,
  );
  return apps;
}

/** A host to reach an app listening on `host`: a wildcard address is reached on loopback. */
export function reachableHost(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

/** Polls every app's GET /health until all answer 200, or reports the laggards and throws at the deadline. */
export async function waitUntilHealthy(
  config: LauncherConfig,
  supervisor: Supervisor,
  apps: Record<AppName, ManagedProcess>,
): Promise<void> {
  const deadline = Date.now() + config.startTimeoutMs;
  const last = new Map<AppName, string>();
  const pending = new Set<AppName>(APP_NAMES);
  while (pending.size > 0 && Date.now() < deadline && !supervisor.signal.aborted) {
    await Promise.all(
      [...pending].map(async (app) => {
        const answer = await checkHealth(
          `http://${reachableHost(config.host)}:${config.appPorts[app]}/health`,
        );
        if (answer === 'ok') pending.delete(app);
        else last.set(app, answer);
      }),
    );
    if (pending.size > 0) await sleep(HEALTH_POLL_INTERVAL_MS, supervisor.signal);
  }
  if (supervisor.stopReason) throw new StopRequested(supervisor.stopReason);
  if (pending.size === 0) return;
  for (const app of pending) {
    const lines = apps[app].lastLines(REPORT_LINES);
    complain(
      `${app} not healthy after ${config.startTimeoutMs} ms (last answer: ${last.get(app) ?? 'none'})${lines.length > 0 ? '; its last lines:' : '; no output'}`,
    );
    for (const line of lines) complain(`  ${line}`);
  }
  throw new LaunchError(
    `not healthy within ${config.startTimeoutMs} ms: ${[...pending].join(', ')} (raise START_TIMEOUT_MS if the machine is slow)`,
  );
}

async function checkHealth(url: string): Promise<string> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(HEALTH_REQUEST_TIMEOUT_MS) });
    const body = await response.text();
    return response.status === 200 ? 'ok' : `${response.status} ${body.slice(0, 200)}`;
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause;
    return cause?.code ?? (error as Error).message;
  }
}
