import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import {
  connectTestNats,
  createTestDatabase,
  deletePrefixedStreams,
  freePort,
  testNatsPrefix,
  testNatsUrl,
  waitFor,
  workspaceRoot,
  type TestDatabase,
} from '@pf/testing';

/**
 * `npm start` for real: the launcher (dist/tools/start/main.js, built by `npm test`) as a child
 * process, with its four apps, against the shared Postgres and NATS (external mode) or servers
 * it starts itself in a temporary data directory (embedded mode).
 */

const launcherEntry = path.join(workspaceRoot(), 'dist', 'tools', 'start', 'main.js');
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;

interface AppPorts {
  GATEWAY_PORT: string;
  CASINO_PORT: string;
  FAUCET_PORT: string;
  ESCROW_PORT: string;
  MARKET_PORT: string;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

class Launcher {
  readonly output: string[] = [];
  readonly exited: Promise<Exit>;
  private readonly child: ChildProcess;

  /** `via: 'npm'` runs it as `npm start` does: npm → sh → node (without the build step). */
  constructor(env: Record<string, string>, via: 'node' | 'npm' = 'node') {
    if (!existsSync(launcherEntry)) throw new Error(`${launcherEntry} is missing: run npm run build first`);
    const [command, args] =
      via === 'node'
        ? [process.execPath, [launcherEntry]]
        : ['npm', ['exec', '--offline', '-c', `true && "${process.execPath}" "${launcherEntry}"`]];
    // Only what the test chooses: an ambient DATABASE_URL or NATS_URL must not leak in.
    this.child = spawn(command, args, {
      cwd: workspaceRoot(),
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/root',
        LOG_LEVEL: 'warn',
        START_LOG_FORMAT: 'json',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const collect = (chunk: Buffer) => this.output.push(...chunk.toString().split('\n').filter(Boolean));
    this.child.stdout!.on('data', collect);
    this.child.stderr!.on('data', collect);
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => resolve({ code, signal })),
    );
  }

  get text(): string {
    return this.output.join('\n');
  }

  get isRunning(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number {
    return this.child.pid!;
  }

  async waitForLine(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    return waitFor(
      `launcher output ${pattern}`,
      () => {
        if (!this.isRunning && !pattern.test(this.text)) throw new Error(`launcher exited:\n${this.text}`);
        return this.text.match(pattern) ?? undefined;
      },
      { timeoutMs, intervalMs: 100 },
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n--- launcher output ---\n${this.output.slice(-60).join('\n')}`);
    });
  }

  waitUntilReady(): Promise<RegExpMatchArray> {
    return this.waitForLine(/\[start\]\s+ready in [\d.]+ s: gateway (http:\/\/\S+)/, READY_TIMEOUT_MS);
  }

  signal(signal: NodeJS.Signals): void {
    if (this.isRunning) this.child.kill(signal);
  }

  /** The pids of the apps, from the launcher's "started casino (pid N, …)" line. */
  appPids(): Record<string, number> {
    const pids: Record<string, number> = {};
    for (const match of this.text.matchAll(/(casino|faucet|escrow|market|gateway) \(pid (\d+)/g))
      pids[match[1]!] = Number(match[2]);
    return pids;
  }

  /** Teardown even after a failed test: SIGTERM, bounded wait, then SIGKILL of what is left. */
  async cleanUp(): Promise<void> {
    if (!this.isRunning) return;
    this.signal('SIGTERM');
    if ((await within(this.exited, STOP_TIMEOUT_MS)) !== 'timeout') return;
    this.signal('SIGKILL');
    for (const pid of [...Object.values(this.appPids()), ...serverPids(this.text)]) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
}

/** Every live process below `rootPid` (from /proc), the root excluded. */
function descendants(rootPid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    const parentPid = statOf(Number(entry))?.parentPid;
    if (parentPid !== undefined) children.set(parentPid, [...(children.get(parentPid) ?? []), Number(entry)]);
  }
  const found: number[] = [];
  const queue = [rootPid];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

/** State and parent of a process, or undefined when it is gone (a zombie counts as gone). */
function statOf(pid: number): { parentPid: number } | undefined {
  if (!Number.isInteger(pid)) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' ? undefined : { parentPid: Number(fields[1]) };
  } catch {
    return undefined;
  }
}

function serverPids(text: string): number[] {
  return [...text.matchAll(/embedded \S+ \(pid (\d+)/g)].map((match) => Number(match[1]));
}

/** The promise's value, or 'timeout'; the timer is cleared so it never holds jest open. */
async function within<T>(promise: Promise<T>, timeoutMs: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function appPorts(): Promise<AppPorts> {
  return {
    GATEWAY_PORT: String(await freePort()),
    CASINO_PORT: String(await freePort()),
    FAUCET_PORT: String(await freePort()),
    ESCROW_PORT: String(await freePort()),
    MARKET_PORT: String(await freePort()),
  };
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setTimeout(1_000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

async function expectPing(gatewayUrl: string): Promise<void> {
  const response = await fetch(`${gatewayUrl}/api/v1/ping`, { signal: AbortSignal.timeout(10_000) });
  expect(response.status).toBe(200);
  const body = (await response.json()) as { services: Array<{ name: string }> };
  expect(body.services.map((service) => service.name)).toEqual(['casino', 'faucet', 'escrow', 'market']);
}

/** SIGINT, then: exit code 0 within a few seconds, and nothing answers on the given ports any more. */
async function expectCleanStop(launcher: Launcher, ports: number[]): Promise<void> {
  const stopAtMs = Date.now();
  launcher.signal('SIGINT');
  const exit = await within(launcher.exited, STOP_TIMEOUT_MS);
  expect(exit).toEqual({ code: 0, signal: null });
  expect(Date.now() - stopAtMs).toBeLessThan(10_000);
  expect(launcher.text).toMatch(/SIGINT received: stopping everything/);
  for (const port of ports) expect(await answers(port)).toBe(false);
}

describe('npm start launcher, external Postgres and NATS', () => {
  let database: TestDatabase;
  const prefix = testNatsPrefix();
  const launchers: Launcher[] = [];

  beforeAll(async () => {
    database = await createTestDatabase('launcher');
  });

  afterAll(async () => {
    await Promise.all(launchers.map((launcher) => launcher.cleanUp()));
    const nats = await connectTestNats();
    await deletePrefixedStreams(nats, prefix).finally(() => nats.close());
    await database?.drop();
  }, 60_000);

  it('starts the four apps on the given URLs, answers ping, and stops everything on SIGINT with exit code 0', async () => {
    const ports = await appPorts();
    const launcher = new Launcher({
      DATABASE_URL: database.url,
      NATS_URL: testNatsUrl(),
      NATS_PREFIX: prefix,
      ...ports,
    });
    launchers.push(launcher);
    const [, gatewayUrl] = await launcher.waitUntilReady();
    expect(gatewayUrl).toBe(`http://127.0.0.1:${ports.GATEWAY_PORT}`);
    expect(launcher.text).toMatch(
      /postgres: external postgres:\/\/.*\| nats: external nats:\/\/127\.0\.0\.1:4222/,
    );
    await expectPing(gatewayUrl!);
    await expectCleanStop(launcher, Object.values(ports).map(Number));
  }, 90_000);

  it('stops everything with exit code 1 when an app dies on its own', async () => {
    const ports = await appPorts();
    const launcher = new Launcher({
      DATABASE_URL: database.url,
      NATS_URL: testNatsUrl(),
      NATS_PREFIX: prefix,
      ...ports,
    });
    launchers.push(launcher);
    await launcher.waitUntilReady();
    process.kill(launcher.appPids().casino!, 'SIGKILL');
    const exit = await within(launcher.exited, STOP_TIMEOUT_MS);
    expect(exit).toEqual({ code: 1, signal: null });
    expect(launcher.text).toMatch(/casino exited unexpectedly \(killed by SIGKILL\): stopping everything/);
    for (const port of Object.values(ports)) expect(await answers(Number(port))).toBe(false);
  }, 90_000);

  it.each([
    ['SIGTERM to npm alone (`npm start &` then `kill $!`)', 'SIGTERM'],
    ['SIGHUP to npm alone (its terminal went away)', 'SIGHUP'],
    ['the death of npm (SIGKILL: no chance to forward anything)', 'SIGKILL'],
  ] as const)(
    '%s stops the launcher and every process it started',
    async (_name, signal) => {
      const ports = await appPorts();
      const launcher = new Launcher(
        { DATABASE_URL: database.url, NATS_URL: testNatsUrl(), NATS_PREFIX: prefix, ...ports },
        'npm',
      );
      launchers.push(launcher);
      await launcher.waitUntilReady();
      const tree = descendants(launcher.pid);
      // sh, the launcher and its four apps at least.
      expect(tree.length).toBeGreaterThanOrEqual(6);
      for (const app of Object.values(launcher.appPids())) expect(tree).toContain(app);

      process.kill(launcher.pid, signal);
      await waitFor('every process of the tree gone', () => tree.every((pid) => statOf(pid) === undefined), {
        timeoutMs: 20_000,
        intervalMs: 200,
      }).catch((error: Error) => {
        throw new Error(
          `${error.message}: still running ${tree.filter((pid) => statOf(pid) !== undefined).join(', ')}\n${launcher.text}`,
        );
      });
      for (const port of Object.values(ports)) expect(await answers(Number(port))).toBe(false);
    },
    90_000,
  );

  it('refuses a DATABASE_URL that does not answer, naming it, without starting anything', async () => {
    const deadPort = await freePort();
    const launcher = new Launcher({
      DATABASE_URL: `postgres://postgres@127.0.0.1:${deadPort}/agent_marketplace`,
      NATS_URL: testNatsUrl(),
      ...(await appPorts()),
    });
    launchers.push(launcher);
    const exit = await within(launcher.exited, 15_000);
    expect(exit).toEqual({ code: 1, signal: null });
    expect(launcher.text).toMatch(
      new RegExp(
        `DATABASE_URL=postgres://postgres@127\\.0\\.0\\.1:${deadPort}/agent_marketplace does not answer`,
      ),
    );
    expect(launcher.text).not.toMatch(/initialising an embedded Postgres|started casino/);
  }, 30_000);

  it('refuses a NATS_URL that does not answer, naming it', async () => {
    const deadPort = await freePort();
    const launcher = new Launcher({
      DATABASE_URL: database.url,
      NATS_URL: `nats://127.0.0.1:${deadPort}`,
      ...(await appPorts()),
    });
    launchers.push(launcher);
    const exit = await within(launcher.exited, 15_000);
    expect(exit).toEqual({ code: 1, signal: null });
    expect(launcher.text).toMatch(new RegExp(`NATS_URL=nats://127\\.0\\.0\\.1:${deadPort} does not answer`));
    expect(launcher.text).not.toMatch(/started casino/);
  }, 30_000);
});

describe('npm start launcher, embedded Postgres and nats-server', () => {
  let dataDir: string;
  const launchers: Launcher[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'launcher-data-'));
    // The embedded Postgres runs as the `postgres` OS user when the tests run as root: it must be able to enter the directory.
    await chmod(dataDir, 0o755);
  });

  afterAll(async () => {
    await Promise.all(launchers.map((launcher) => launcher.cleanUp()));
    await rm(dataDir, { recursive: true, force: true });
  }, 60_000);

  it('starts its own servers when nothing answers, and a second start reuses their data', async () => {
    const postgresPort = await freePort();
    const natsPort = await freePort();
    const env = {
      START_DATA_DIR: dataDir,
      // Nothing listens there: the launcher's "is there a Postgres/NATS already?" probe fails.
      DEFAULT_DATABASE_URL: `postgres://postgres@127.0.0.1:${postgresPort}/agent_marketplace`,
      EMBEDDED_POSTGRES_PORT: String(postgresPort),
      DEFAULT_NATS_URL: `nats://127.0.0.1:${natsPort}`,
      EMBEDDED_NATS_PORT: String(natsPort),
    };
    const embeddedUrl = `postgres://postgres@127.0.0.1:${postgresPort}/agent_marketplace`;

    const ports = await appPorts();
    const first = new Launcher({ ...env, ...ports });
    launchers.push(first);
    const [, gatewayUrl] = await first.waitUntilReady();
    expect(first.text).toMatch(/initialising an embedded Postgres in/);
    expect(first.text).toMatch(
      new RegExp(`postgres: embedded ${embeddedUrl} \\(pid \\d+, data ${dataDir}/postgres, new\\)`),
    );
    expect(first.text).toMatch(
      new RegExp(`nats: embedded nats://127\\.0\\.0\\.1:${natsPort} \\(pid \\d+, store ${dataDir}/nats\\)`),
    );
    await expectPing(gatewayUrl!);
    await withClient(embeddedUrl, async (client) => {
      await client.query('CREATE TABLE launcher_marker (note text)');
      await client.query('INSERT INTO launcher_marker VALUES ($1)', ['first run']);
    });
    // The embedded broker is not open: strangers are refused, the apps and ops have their own users.
    await expect(
      connect({ servers: `nats://127.0.0.1:${natsPort}`, timeout: 5_000, maxReconnectAttempts: 0 }),
    ).rejects.toThrow(/Authorization Violation/i);
    expect(statSync(path.join(dataDir, 'nats-users.json')).mode & 0o777).toBe(0o600);
    await withStreamManager(dataDir, natsPort, (manager) =>
      manager.streams.add({ name: 'LAUNCHER_MARKER', subjects: ['launcher.marker'] }).then(() => undefined),
    );
    await expectCleanStop(first, [...Object.values(ports).map(Number), postgresPort, natsPort]);

    const again = new Launcher({ ...env, ...(await appPorts()) });
    launchers.push(again);
    const [, secondGatewayUrl] = await again.waitUntilReady();
    expect(again.text).not.toMatch(/initialising/);
    expect(again.text).toMatch(/starting the embedded Postgres on .* \(existing data\)/);
    expect(again.text).toMatch(/postgres: embedded .*, reused\)/);
    await expectPing(secondGatewayUrl!);
    const notes = await withClient(
      embeddedUrl,
      async (client) => (await client.query<{ note: string }>('SELECT note FROM launcher_marker')).rows,
    );
    expect(notes).toEqual([{ note: 'first run' }]);
    const streams = await withStreamManager(dataDir, natsPort, async (manager) =>
      (await manager.streams.names().next()).filter((name) => name === 'LAUNCHER_MARKER'),
    );
    expect(streams).toEqual(['LAUNCHER_MARKER']);
    await expectCleanStop(again, [postgresPort, natsPort]);
  }, 150_000);
});

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function withStreamManager<T>(
  dataDir: string,
  natsPort: number,
  work: (manager: Awaited<ReturnType<typeof jetstreamManager>>) => Promise<T>,
): Promise<T> {
  // As the ops user, with the password npm start made (JetStream management is ops' job).
  const passwords = JSON.parse(readFileSync(path.join(dataDir, 'nats-users.json'), 'utf8')) as {
    ops: string;
  };
  const connection = await connectTestNats(
    `nats://127.0.0.1:${natsPort}`,
    {},
    { user: 'ops', security: { NATS_USER: 'ops', NATS_PASSWORD: passwords.ops } },
  );
  try {
    return await work(await jetstreamManager(connection));
  } finally {
    await connection.close();
  }
}
