import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { ManagedProcess, waitUntilServerAnswers } from './children.js';
import { APP_NAMES, type AppName, type LauncherConfig } from './config.js';
import { busUserEnv, resolveBusPasswords, writeNatsServerConfig } from './nats-users.js';
import { complain, say } from './log.js';
import { pickPort } from './net.js';
import { LaunchError } from './launch-error.js';
import type { Supervisor } from './supervisor.js';

const PROBE_TIMEOUT_MS = 2_000;
const EMBEDDED_READY_TIMEOUT_MS = 15_000;
/** nats-server flushes JetStream and exits on SIGTERM; 10 s is plenty on a developer machine. */
const EMBEDDED_STOP_TIMEOUT_MS = 10_000;
const POLL_INTERVAL_MS = 100;
/** Where Debian's package and manual installs put nats-server when it is not on PATH. */
const EXTRA_BIN_DIRS = ['/usr/sbin', '/usr/local/bin', '/usr/bin'];
const INFO_BYTES_MAX = 64 * 1024;
/** Empty counts as unset: an ambient NATS_TOKEN or creds file must not override the app's user. */
const OTHER_AUTH_UNSET = { NATS_TOKEN: '', NATS_CREDS: '', NATS_NKEY_SEED: '' };

export interface NatsChoice {
  url: string;
  summary: string;
  /**
   * Per-app NATS variables: each app's own user on the embedded server. Empty for an external
   * server, whose credentials (NATS_USER, NATS_CREDS, NATS_TLS_*…) the apps inherit as given.
   */
  appEnv: Partial<Record<AppName, Record<string, string>>>;
}

type Probe = { kind: 'ok'; jetstream: boolean; version: string } | { kind: 'unreachable'; detail: string };

/**
 * NATS_URL set: it must answer. Unset: the default URL is used when a server answers there;
 * otherwise `nats-server -js` is started with its store under `.data/nats`.
 */
export async function ensureNats(config: LauncherConfig, supervisor: Supervisor): Promise<NatsChoice> {
  if (config.natsUrl) {
    const probe = await probeNats(config.natsUrl);
    if (probe.kind !== 'ok') {
      throw new LaunchError(
        `NATS_URL=${config.natsUrl} does not answer (${probe.detail}). Start that server or fix the URL; unset NATS_URL to let npm start use or start a local one.`,
      );
    }
    warnWithoutJetStream(config.natsUrl, probe);
    return {
      url: config.natsUrl,
      summary: `external ${config.natsUrl} (nats-server ${probe.version})`,
      appEnv: {},
    };
  }
  const probe = await probeNats(config.defaultNatsUrl);
  if (probe.kind === 'ok') {
    warnWithoutJetStream(config.defaultNatsUrl, probe);
    return {
      url: config.defaultNatsUrl,
      summary: `external ${config.defaultNatsUrl} (nats-server ${probe.version})`,
      appEnv: externalBusUsers(),
    };
  }
  return startNatsServer(config, supervisor, `nothing answers on ${config.defaultNatsUrl}`);
}

/**
 * An external server with per-service users (docker-compose's NATS): NATS_<APP>_PASSWORD, the
 * variables docker-compose.yml reads, makes that app connect as its own user. Apps without one
 * inherit NATS_USER/NATS_PASSWORD, NATS_CREDS, NATS_TLS_*… as given.
 */
function externalBusUsers(): Partial<Record<AppName, Record<string, string>>> {
  const entries = APP_NAMES.flatMap((app) => {
    const password = process.env[`NATS_${app.toUpperCase()}_PASSWORD`];
    return password ? [[app, { NATS_USER: app, NATS_PASSWORD: password }] as const] : [];
  });
  return Object.fromEntries(entries);
}

/** A NATS server greets every new connection with `INFO {json}`; that line is the whole probe. */
export function probeNats(url: string): Promise<Probe> {
  const first = new URL(url.split(',')[0]!.trim());
  const port = Number(first.port || '4222');
  return new Promise((resolve) => {
    const socket = net.connect({ host: first.hostname, port });
    let received = '';
    const finish = (probe: Probe) => {
      socket.destroy();
      clearTimeout(timer);
      resolve(probe);
    };
    const timer = setTimeout(
      () => finish({ kind: 'unreachable', detail: `no INFO within ${PROBE_TIMEOUT_MS} ms` }),
      PROBE_TIMEOUT_MS,
    );
    socket.on('error', (error) => finish({ kind: 'unreachable', detail: error.message }));
    socket.on('close', () => finish({ kind: 'unreachable', detail: 'connection closed before INFO' }));
    socket.on('data', (chunk) => {
      received += chunk.toString('utf8');
      const end = received.indexOf('\r\n');
      if (end < 0 && received.length < INFO_BYTES_MAX) return;
      finish(parseInfo(received.slice(0, end < 0 ? undefined : end)));
    });
  });
}

function parseInfo(line: string): Probe {
  if (!line.startsWith('INFO '))
    return { kind: 'unreachable', detail: `not a NATS server (said ${JSON.stringify(line.slice(0, 40))})` };
  try {
    const info = JSON.parse(line.slice(5)) as { jetstream?: boolean; version?: string };
    return { kind: 'ok', jetstream: info.jetstream === true, version: info.version ?? 'unknown' };
  } catch {
    return { kind: 'unreachable', detail: 'unreadable INFO line' };
  }
}

function warnWithoutJetStream(url: string, probe: Extract<Probe, { kind: 'ok' }>): void {
  // A warning, not a stop: behind a leaf node or account setup INFO may not tell the whole story.
  if (!probe.jetstream)
    complain(
      `warning: the NATS server at ${url} does not announce JetStream; the apps need it (nats-server -js)`,
    );
}

async function startNatsServer(
  config: LauncherConfig,
  supervisor: Supervisor,
  why: string,
): Promise<NatsChoice> {
  const binary = await findNatsServer(config.natsServerBin);
  if (!binary) {
    throw new LaunchError(
      `${why}, and no nats-server was found (PATH, ${EXTRA_BIN_DIRS.join(', ')}). Get one of:\n` +
        '  - Debian/Ubuntu: apt-get install nats-server\n' +
        '  - Docker: docker compose up -d nats   (then npm start uses it on 127.0.0.1:4222)\n' +
        '  - a release binary from the NATS project, on PATH or named by NATS_SERVER_BIN\n' +
        'or point NATS_URL at a running server.',
    );
  }
  const storeDir = path.join(config.dataDir, 'nats');
  await mkdir(storeDir, { recursive: true, mode: 0o755 });
  const port = await pickPort(config.embeddedNatsPort, '127.0.0.1');
  if (port !== config.embeddedNatsPort)
    say(`port ${config.embeddedNatsPort} is taken: nats-server listens on ${port}`);
  say(`${why}: starting ${binary} -js (store ${storeDir})`);
  // The bus is not open even on a laptop: each app gets its own user and permissions (ADR 0010).
  const { passwords, file: passwordsFile } = resolveBusPasswords(config.dataDir);
  const configFile = writeNatsServerConfig(config.dataDir, process.env.NATS_PREFIX ?? '', passwords);
  say(`nats: one user per service (permissions in ${configFile}; passwords in ${passwordsFile})`);

  const server = new ManagedProcess({
    name: 'nats',
    command: binary,
    args: ['-c', configFile, '-js', '-a', '127.0.0.1', '-p', String(port), '-sd', storeDir],
    env: process.env,
    // nats-server logs `[pid] time [INF] …`; only warnings and errors are worth a line at start.
    echo: (line) => /\[(WRN|ERR|FTL)\]/.test(line),
    format: config.logFormat,
  });
  supervisor.adoptServer(server, 'SIGTERM', EMBEDDED_STOP_TIMEOUT_MS);

  const url = `nats://127.0.0.1:${port}`;
  await supervisor.step(waitUntilAnswers(url, server));
  const appEnv = Object.fromEntries(
    APP_NAMES.map((app) => [app, { ...OTHER_AUTH_UNSET, ...busUserEnv(app, passwords) }]),
  );
  return { url, summary: `embedded ${url} (pid ${server.pid}, store ${storeDir})`, appEnv };
}

function waitUntilAnswers(url: string, server: ManagedProcess): Promise<void> {
  // The probe creates the database on its first answer (Postgres) or checks JetStream (NATS).
  return waitUntilServerAnswers(
    'nats-server',
    server,
    () => probeNats(url),
    EMBEDDED_READY_TIMEOUT_MS,
    POLL_INTERVAL_MS,
  );
}

export async function findNatsServer(explicit: string | undefined): Promise<string | undefined> {
  if (explicit) {
    if (await isExecutable(explicit)) return explicit;
    throw new LaunchError(`NATS_SERVER_BIN=${explicit} is not an executable file`);
  }
  const pathDirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  for (const dir of [...pathDirs, ...EXTRA_BIN_DIRS]) {
    const candidate = path.join(dir, 'nats-server');
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
