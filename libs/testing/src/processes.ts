import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectTestNats, deletePrefixedStreams, testNatsUrl } from './nats.js';
import { waitFor } from './wait.js';

export const APP_NAMES = ['casino', 'faucet', 'escrow', 'market', 'gateway'] as const;
export type AppName = (typeof APP_NAMES)[number];

/** The workspace root, found from this file whether it runs from sources or from dist/. */
export function workspaceRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'nx.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('workspace root (nx.json) not found');
    dir = parent;
  }
  return dir;
}

export function appEntry(app: AppName): string {
  const entry = path.join(workspaceRoot(), 'dist', 'apps', app, 'src', 'main.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run \`npm run build\` first`);
  return entry;
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A service running as a real child process, as in production. */
export class ServiceProcess {
  readonly output: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    readonly app: AppName,
    readonly port: number,
    readonly child: ChildProcess,
  ) {
    const collect = (chunk: Buffer) => this.output.push(...chunk.toString().split('\n').filter(Boolean));
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async waitUntilReady(timeoutMs = 45_000): Promise<void> {
    let exitedEarly = false;
    void this.exited.then(() => (exitedEarly = true));
    await waitFor(
      `${this.app} /health`,
      async () => {
        if (exitedEarly) throw new Error(`${this.app} exited:\n${this.output.join('\n')}`);
        const response = await fetch(`${this.url}/health`).catch(() => undefined);
        return response?.status === 200;
      },
      { timeoutMs, intervalMs: 100 },
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n--- ${this.app} output ---\n${this.output.slice(-30).join('\n')}`);
    });
  }

  /** Graceful stop (SIGTERM) and wait for the exit. */
  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    return this.exited;
  }

  /** Crash (SIGKILL): no shutdown hooks run. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

export interface SpawnOptions {
  env: Record<string, string>;
  port?: number;
  args?: string[];
}

export async function spawnService(app: AppName, options: SpawnOptions): Promise<ServiceProcess> {
  const port = options.port ?? (await freePort());
  // SERVICE_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") profiles the services a
  // test or benchmark starts; Node refuses --cpu-prof in NODE_OPTIONS.
  const nodeArgs = process.env.SERVICE_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...nodeArgs, appEntry(app), ...(options.args ?? [])], {
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn', PORT: String(port), ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new ServiceProcess(app, port, child);
}

export interface TestSystem {
  services: Record<AppName, ServiceProcess>;
  gatewayUrl: string;
  stop(): Promise<void>;
}

/**
 * Starts all four apps against one database and prefix, and waits until each is ready. `perApp`
 * adds variables to one app only (its own NATS user on a broker that enforces permissions).
 * `readyTimeoutMs` is each app's wait for /health (default: ServiceProcess's).
 */
export async function startSystem(
  env: Record<string, string>,
  apps: readonly AppName[] = APP_NAMES,
  options: { perApp?: Partial<Record<AppName, Record<string, string>>>; readyTimeoutMs?: number } = {},
): Promise<TestSystem> {
  const services = {} as Record<AppName, ServiceProcess>;
  for (const app of apps)
    services[app] = await spawnService(app, { env: { ...env, ...options.perApp?.[app] } });
  try {
    await Promise.all(apps.map((app) => services[app].waitUntilReady(options.readyTimeoutMs)));
  } catch (error) {
    await Promise.all(apps.map((app) => services[app].kill()));
    throw error;
  }
  return {
    services,
    gatewayUrl: services.gateway?.url ?? '',
    stop: async () => {
      await Promise.all(apps.map((app) => services[app].stop()));
      // The run's streams go with it: the broker outlives every run (CI reuses the machine's).
      // A broker that refuses anonymous clients is the test's own and goes away with it.
      if (env.NATS_PREFIX) {
        const nats = await connectTestNats(env.NATS_URL ?? testNatsUrl()).catch(() => undefined);
        if (nats) {
          await deletePrefixedStreams(nats, env.NATS_PREFIX)
            .catch(() => undefined)
            .finally(() => nats.close());
        }
      }
    },
  };
}

/** What the ops CLI printed (stdout and stderr together) and its exit code. */
export interface OpsOutcome {
  code: number | null;
  output: string;
}

/**
 * Runs the built ops CLI (dist/apps/ops) against one test system's database and NATS prefix,
 * e.g. `runOps(['verify', 'all', '--grace', '0'], …)` at the end of a suite, and waits for it.
 */
export function runOps(
  args: string[],
  target: { databaseUrl: string; natsPrefix: string },
): Promise<OpsOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [path.join(workspaceRoot(), 'dist', 'apps', 'ops', 'src', 'main.js'), ...args],
      {
        env: {
          PATH: process.env.PATH ?? '',
          DATABASE_URL: target.databaseUrl,
          NATS_URL: testNatsUrl(),
          NATS_PREFIX: target.natsPrefix,
        },
      },
    );
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}
