import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  BUS_USERS,
  renderBusAuthorization,
  SubjectPrefix,
  type BusSecret,
  type BusUser,
} from '@pf/contracts';
import { freePort } from './processes.js';
import { waitFor } from './wait.js';

/** Where Debian puts nats-server; PATH is searched first. */
const NATS_SERVER_DIRS = ['/usr/sbin', '/usr/local/bin', '/usr/bin'];
const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

export interface SecuredNatsOptions {
  /** The run's subject prefix: permissions are rendered for it. */
  prefix: string;
  /** Users that prove themselves with an nkey (public key `U…`) instead of a password. */
  nkeys?: Partial<Record<BusUser, string>>;
  /** Server TLS (PEM files); `verify` also demands a client certificate signed by the CA. */
  tls?: { certFile: string; keyFile: string; caFile?: string; verify?: boolean };
}

/**
 * A throwaway nats-server with JetStream on a free port, enforcing the per-service users of
 * `busPermissions` with random passwords. Never the machine's broker: tests that need the bus
 * locked start this and kill it by pid.
 */
export class SecuredNats {
  private constructor(
    readonly url: string,
    readonly port: number,
    private readonly passwords: Record<BusUser, string>,
    private readonly dir: string,
    private readonly child: ChildProcess,
    readonly output: string[],
  ) {}

  static async start(options: SecuredNatsOptions): Promise<SecuredNats> {
    const binary = findNatsServer();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pf-nats-'));
    const port = await freePort();
    const passwords = Object.fromEntries(
      BUS_USERS.map((user) => [user, randomBytes(18).toString('base64url')]),
    ) as Record<BusUser, string>;
    const secrets = Object.fromEntries(
      BUS_USERS.map((user): [BusUser, BusSecret] => {
        const nkey = options.nkeys?.[user];
        return [user, nkey ? { nkey } : { password: passwords[user] }];
      }),
    );
    const config = [
      `listen: "127.0.0.1:${port}"`,
      `jetstream { store_dir: ${JSON.stringify(path.join(dir, 'js'))} }`,
      ...(options.tls ? [tlsBlock(options.tls)] : []),
      renderBusAuthorization(new SubjectPrefix(options.prefix), secrets),
    ].join('\n');
    const configFile = path.join(dir, 'nats.conf');
    await writeFile(configFile, config, { mode: 0o600 });
    const child = spawn(binary, ['-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    const output: string[] = [];
    const collect = (chunk: Buffer) => output.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    const scheme = options.tls ? 'tls' : 'nats';
    const server = new SecuredNats(`${scheme}://127.0.0.1:${port}`, port, passwords, dir, child, output);
    try {
      await waitFor('secured nats-server', () => portAnswers(port), { timeoutMs: READY_TIMEOUT_MS });
    } catch (error) {
      await server.stop();
      throw new Error(`${(error as Error).message}\n${output.join('\n')}`);
    }
    return server;
  }

  password(user: BusUser): string {
    return this.passwords[user];
  }

  /** The variables an app needs to connect as `user`. */
  envFor(user: BusUser): Record<string, string> {
    return { NATS_URL: this.url, NATS_USER: user, NATS_PASSWORD: this.passwords[user] };
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

function tlsBlock(tls: NonNullable<SecuredNatsOptions['tls']>): string {
  const lines = [
    `  cert_file: ${JSON.stringify(tls.certFile)}`,
    `  key_file: ${JSON.stringify(tls.keyFile)}`,
  ];
  if (tls.caFile) lines.push(`  ca_file: ${JSON.stringify(tls.caFile)}`);
  if (tls.verify) lines.push('  verify: true');
  return ['tls {', ...lines, '}'].join('\n');
}

export function findNatsServer(): string {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), ...NATS_SERVER_DIRS];
  const found = dirs.map((dir) => path.join(dir, 'nats-server')).find((candidate) => existsSync(candidate));
  if (!found)
    throw new Error('nats-server is not installed (PATH, /usr/sbin): the bus security tests need one');
  return found;
}

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
