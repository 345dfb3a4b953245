import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort, waitFor } from '@pf/testing';

const run = promisify(execFile);
/** Postgres refuses to run as root; the Debian package's account runs it then. */
const POSTGRES_OS_USER = 'postgres';
const READY_TIMEOUT_MS = 60_000;
const DATABASE_NAME = 'chaos';

/** The newest Debian-packaged Postgres (`/usr/lib/postgresql/<version>/bin`), or PG_BIN_DIR. */
function postgresBinDir(): string {
  if (process.env.PG_BIN_DIR) return process.env.PG_BIN_DIR;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((name) => /^\d+$/.test(name)) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (!newest)
    throw new Error(
      'no Postgres binaries found under /usr/lib/postgresql; set PG_BIN_DIR to a directory with initdb and postgres',
    );
  return path.join(root, newest, 'bin');
}

/**
 * The chaos suite's own Postgres: a fresh `initdb` cluster on a free port in a temporary
 * directory, so it can be crashed and restarted at will without touching the machine's
 * server. `crash()` is an immediate shutdown (SIGQUIT to the postmaster: no checkpoint, crash
 * recovery on the next start), as a killed or failed-over database would be.
 */
export class ThrowawayPostgres {
  private child?: ChildProcess;
  crashes = 0;

  private constructor(
    private readonly directory: string,
    private readonly binDir: string,
    readonly port: number,
    private readonly asUser: boolean,
  ) {}

  static async start(): Promise<ThrowawayPostgres> {
    const directory = await mkdtemp(path.join(os.tmpdir(), 'pf-chaos-pg-'));
    const asUser = process.getuid?.() === 0;
    const binDir = postgresBinDir();
    if (asUser) {
      const { stdout } = await run('id', ['-u', POSTGRES_OS_USER]);
      const { stdout: gid } = await run('id', ['-g', POSTGRES_OS_USER]);
      await chown(directory, Number(stdout.trim()), Number(gid.trim()));
    }
    const server = new ThrowawayPostgres(directory, binDir, await freePort(), asUser);
    await server.command(path.join(binDir, 'initdb'), [
      `--pgdata=${server.dataDir}`,
      '--username=postgres',
      '--auth=trust',
      '--encoding=UTF8',
      '--no-locale',
    ]);
    await server.spawnServer();
    const admin = new pg.Client({ connectionString: server.url('postgres') });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${DATABASE_NAME}`);
    await admin.end();
    return server;
  }

  private get dataDir(): string {
    return path.join(this.directory, 'data');
  }

  url(database = DATABASE_NAME): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  private command(file: string, args: string[]): Promise<unknown> {
    return this.asUser ? run('runuser', ['-u', POSTGRES_OS_USER, '--', file, ...args]) : run(file, args);
  }

  private async spawnServer(): Promise<void> {
    // fsync off: the faults are process crashes, which the OS page cache survives; it spares the shared disk.
    const args = [
      '-D',
      this.dataDir,
      '-p',
      String(this.port),
      '-k',
      this.directory,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'fsync=off',
      '-c',
      'max_connections=200',
    ];
    const binary = path.join(this.binDir, 'postgres');
    this.child = this.asUser
      ? spawn('runuser', ['-u', POSTGRES_OS_USER, '--', binary, ...args], { stdio: 'ignore' })
      : spawn(binary, args, { stdio: 'ignore' });
    await waitFor(
      'the chaos Postgres',
      async () => {
        const client = new pg.Client({
          connectionString: this.url('postgres'),
          connectionTimeoutMillis: 1_000,
        });
        client.on('error', () => undefined);
        try {
          await client.connect();
          await client.query('SELECT 1');
          return true;
        } finally {
          await client.end().catch(() => undefined);
        }
      },
      { timeoutMs: READY_TIMEOUT_MS, intervalMs: 200 },
    );
  }

  /** The postmaster's pid, from its pid file (the child may be `runuser`). */
  async pid(): Promise<number | undefined> {
    const text = await readFile(path.join(this.dataDir, 'postmaster.pid'), 'utf8').catch(() => '');
    const pid = Number(text.split('\n')[0]);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  }

  /** Immediate shutdown, as a crash: every connection drops, no checkpoint. */
  async crash(): Promise<void> {
    signal(await this.pid(), 'SIGQUIT');
    const child = this.child;
    this.child = undefined;
    if (child && child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve));
    this.crashes += 1;
  }

  restart(): Promise<void> {
    return this.spawnServer();
  }

  async stop(): Promise<void> {
    const pid = await this.pid();
    if (pid && this.child) {
      const child = this.child;
      const exited =
        child.exitCode === null ? new Promise((resolve) => child.once('exit', resolve)) : Promise.resolve();
      signal(pid, 'SIGQUIT');
      await exited;
    }
    this.child = undefined;
    await rm(this.directory, { recursive: true, force: true });
  }
}

/** A pid file can outlive its process: a signal to nobody is not an error here. */
function signal(pid: number | undefined, name: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(pid, name);
  } catch {
    // ESRCH: already gone.
  }
}
