import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LogFormat } from './log.js';

export const APP_NAMES = ['casino', 'faucet', 'escrow', 'market', 'gateway'] as const;
export type AppName = (typeof APP_NAMES)[number];

/** Where each app listens unless its `<APP>_PORT` variable says otherwise. */
export const DEFAULT_APP_PORTS: Record<AppName, number> = {
  gateway: 3000,
  casino: 3001,
  faucet: 3002,
  escrow: 3003,
  market: 3004,
};

export interface LauncherConfig {
  /** The workspace root: dist/ and the default data directory live under it. */
  rootDir: string;
  /** `.data` by default: `postgres/` and `nats/` are created inside. */
  dataDir: string;
  /** Set: must answer. Unset: `defaultDatabaseUrl` is tried, then an embedded Postgres. */
  databaseUrl?: string;
  defaultDatabaseUrl: string;
  embeddedPostgresPort: number;
  natsUrl?: string;
  defaultNatsUrl: string;
  embeddedNatsPort: number;
  natsServerBin?: string;
  appPorts: Record<AppName, number>;
  /** The interface the apps listen on (their HOST). */
  host: string;
  startTimeoutMs: number;
  logFormat: LogFormat;
  migrateOnly: boolean;
}

/** A bad launcher setting, named so the operator can fix it. */
export class ConfigProblem extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable} ${problem}`);
    this.name = 'ConfigProblem';
  }
}

type Env = Record<string, string | undefined>;

export function readConfig(env: Env, argv: readonly string[], isTty: boolean): LauncherConfig {
  const rootDir = findWorkspaceRoot();
  const text = (name: string) => (env[name] === undefined || env[name] === '' ? undefined : env[name]);
  const appPorts = {} as Record<AppName, number>;
  for (const app of APP_NAMES) appPorts[app] = port(env, `${app.toUpperCase()}_PORT`, DEFAULT_APP_PORTS[app]);
  assertDistinctPorts(appPorts);
  const dataDir = path.resolve(rootDir, text('START_DATA_DIR') ?? '.data');
  return {
    rootDir,
    dataDir,
    databaseUrl: optionalUrl(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    defaultDatabaseUrl:
      optionalUrl(env, 'DEFAULT_DATABASE_URL', ['postgres:', 'postgresql:']) ??
      'postgres://postgres@127.0.0.1:5432/agent_marketplace',
    embeddedPostgresPort: port(env, 'EMBEDDED_POSTGRES_PORT', 5432),
    natsUrl: optionalUrl(env, 'NATS_URL', ['nats:', 'tls:']),
    defaultNatsUrl: optionalUrl(env, 'DEFAULT_NATS_URL', ['nats:']) ?? 'nats://127.0.0.1:4222',
    embeddedNatsPort: port(env, 'EMBEDDED_NATS_PORT', 4222),
    natsServerBin: text('NATS_SERVER_BIN'),
    appPorts,
    host: text('HOST') ?? '127.0.0.1',
    startTimeoutMs: integer(env, 'START_TIMEOUT_MS', 60_000, 1_000, 600_000),
    logFormat: logFormat(env, isTty),
    migrateOnly: argv.includes('--migrate-only'),
  };
}

/** Found by walking up to nx.json, so the launcher works from sources and from dist/. */
function findWorkspaceRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 8; depth += 1) {
    if (existsSync(path.join(dir, 'nx.json'))) return dir;
    dir = path.dirname(dir);
  }
  throw new Error('workspace root (nx.json) not found above the launcher');
}

function port(env: Env, name: string, defaultPort: number): number {
  return integer(env, name, defaultPort, 1, 65_535);
}

function integer(env: Env, name: string, defaultValue: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return defaultValue;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigProblem(
      name,
      `must be a whole number from ${min} to ${max} (got ${JSON.stringify(raw)})`,
    );
  }
  return value;
}

function optionalUrl(env: Env, name: string, protocols: readonly string[]): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  // NATS_URL may list several seed servers; each must parse.
  for (const item of raw.split(',')) {
    let protocol: string;
    try {
      protocol = new URL(item.trim()).protocol;
    } catch {
      protocol = '';
    }
    if (!protocols.includes(protocol)) {
      throw new ConfigProblem(
        name,
        `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')} (got ${JSON.stringify(raw)})`,
      );
    }
  }
  return raw;
}

function logFormat(env: Env, isTty: boolean): LogFormat {
  const raw = env.START_LOG_FORMAT;
  if (raw === undefined || raw === '') return isTty ? 'pretty' : 'json';
  if (raw === 'pretty' || raw === 'json') return raw;
  throw new ConfigProblem('START_LOG_FORMAT', `must be pretty or json (got ${JSON.stringify(raw)})`);
}

function assertDistinctPorts(ports: Record<AppName, number>): void {
  const seen = new Map<number, AppName>();
  for (const app of APP_NAMES) {
    const other = seen.get(ports[app]);
    if (other)
      throw new ConfigProblem(
        `${app.toUpperCase()}_PORT`,
        `is ${ports[app]}, the same as ${other.toUpperCase()}_PORT`,
      );
    seen.set(ports[app], app);
  }
}
