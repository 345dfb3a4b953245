import { readFileSync } from 'node:fs';
import { busInboxPrefix, SubjectPrefix } from '@pf/contracts';
import {
  connect,
  credsAuthenticator,
  nkeyAuthenticator,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
  type Authenticator,
  type ConnectionOptions,
  type NatsConnection,
} from '@nats-io/transport-node';

/**
 * How every process (apps, ops CLI, tools, tests) authenticates to NATS and protects the link.
 * All optional: with none set the connection is as before (a local, unauthenticated broker).
 */
export const NATS_SECURITY_VARIABLES = [
  'NATS_USER',
  'NATS_PASSWORD',
  'NATS_TOKEN',
  'NATS_CREDS',
  'NATS_NKEY_SEED',
  'NATS_TLS_CA',
  'NATS_TLS_CERT',
  'NATS_TLS_KEY',
] as const;
export type NatsSecurityVariable = (typeof NATS_SECURITY_VARIABLES)[number];
export type NatsSecurityEnv = Partial<Record<NatsSecurityVariable, string | undefined>>;

/** A NATS security setting that cannot work; names the variable, never its value. */
export class NatsSecurityError extends Error {
  constructor(
    readonly variable: NatsSecurityVariable,
    readonly problem: string,
  ) {
    super(`invalid configuration: ${variable} ${problem}`);
    this.name = 'NatsSecurityError';
  }
}

export interface NatsConnectSettings {
  servers: string[];
  /** Connection name shown by the server (`casino-3fa2c1`). */
  name: string;
  /** The bus user this process acts as: it picks the inbox its replies arrive on (busInboxPrefix). */
  user: string;
  prefix: SubjectPrefix;
  security: NatsSecurityEnv;
}

/**
 * The one way to open a NATS connection: servers, credentials, TLS and the user's own inbox.
 * `extra` carries what differs between a long-running service and a one-shot command
 * (reconnect policy, timeouts).
 */
export function natsConnectOptions(
  settings: NatsConnectSettings,
  extra: Partial<ConnectionOptions> = {},
): ConnectionOptions {
  return {
    servers: settings.servers,
    name: settings.name,
    inboxPrefix: busInboxPrefix(settings.user, settings.prefix),
    ...natsSecurityOptions(settings.security),
    ...extra,
  };
}

export function connectWith(
  settings: NatsConnectSettings,
  extra: Partial<ConnectionOptions> = {},
): Promise<NatsConnection> {
  return connect(natsConnectOptions(settings, extra));
}

/** Credentials and TLS from the NATS_* variables, validated and with their files read once. */
export function natsSecurityOptions(env: NatsSecurityEnv): Partial<ConnectionOptions> {
  const value = (variable: NatsSecurityVariable) => (env[variable] === '' ? undefined : env[variable]);
  const options: Partial<ConnectionOptions> = {};
  const authenticator = chooseAuthenticator(value);
  if (authenticator) options.authenticator = authenticator;
  const tls = tlsOptions(value);
  if (tls) options.tls = tls;
  return options;
}

type Lookup = (variable: NatsSecurityVariable) => string | undefined;

function chooseAuthenticator(value: Lookup): Authenticator | undefined {
  const user = value('NATS_USER');
  const password = value('NATS_PASSWORD');
  if (user !== undefined && password === undefined)
    throw new NatsSecurityError('NATS_PASSWORD', 'must be set when NATS_USER is set');
  if (password !== undefined && user === undefined)
    throw new NatsSecurityError('NATS_USER', 'must be set when NATS_PASSWORD is set');
  const chosen = (['NATS_USER', 'NATS_TOKEN', 'NATS_CREDS', 'NATS_NKEY_SEED'] as const).filter(
    (variable) => value(variable) !== undefined,
  );
  if (chosen.length > 1) {
    throw new NatsSecurityError(
      chosen[1]!,
      `cannot be combined with ${chosen[0]}: choose one way to authenticate`,
    );
  }
  switch (chosen[0]) {
    case 'NATS_USER':
      return usernamePasswordAuthenticator(user!, password!);
    case 'NATS_TOKEN':
      return tokenAuthenticator(value('NATS_TOKEN')!);
    case 'NATS_CREDS': {
      const creds = readSecretFile('NATS_CREDS', value('NATS_CREDS')!);
      if (!/-----BEGIN NATS USER JWT-----/.test(creds.toString('utf8'))) {
        throw new NatsSecurityError('NATS_CREDS', 'must name a .creds file (a user JWT and its nkey seed)');
      }
      return credsAuthenticator(new Uint8Array(creds));
    }
    case 'NATS_NKEY_SEED': {
      const seed = readSecretFile('NATS_NKEY_SEED', value('NATS_NKEY_SEED')!).toString('utf8').trim();
      if (!/^SU[A-Z2-7]{56}$/.test(seed))
        throw new NatsSecurityError('NATS_NKEY_SEED', 'must name a file holding a user nkey seed (SU…)');
      return nkeyAuthenticator(new TextEncoder().encode(seed));
    }
    default:
      return undefined;
  }
}

function tlsOptions(value: Lookup): ConnectionOptions['tls'] | undefined {
  const ca = value('NATS_TLS_CA');
  const cert = value('NATS_TLS_CERT');
  const key = value('NATS_TLS_KEY');
  if (cert !== undefined && key === undefined)
    throw new NatsSecurityError(
      'NATS_TLS_KEY',
      'must be set when NATS_TLS_CERT is set (client certificate and its key)',
    );
  if (key !== undefined && cert === undefined)
    throw new NatsSecurityError(
      'NATS_TLS_CERT',
      'must be set when NATS_TLS_KEY is set (client certificate and its key)',
    );
  if (ca === undefined && cert === undefined) return undefined;
  const tls: NonNullable<ConnectionOptions['tls']> = {};
  if (ca !== undefined) tls.ca = pemFile('NATS_TLS_CA', ca, 'CERTIFICATE');
  if (cert !== undefined) tls.cert = pemFile('NATS_TLS_CERT', cert, 'CERTIFICATE');
  if (key !== undefined) tls.key = pemFile('NATS_TLS_KEY', key, 'PRIVATE KEY');
  return tls;
}

function pemFile(variable: NatsSecurityVariable, file: string, kind: string): string {
  const text = readSecretFile(variable, file).toString('utf8');
  if (!text.includes(`-----BEGIN `) || !text.includes(kind))
    throw new NatsSecurityError(variable, `must name a PEM file holding a ${kind.toLowerCase()}`);
  return text;
}

function readSecretFile(variable: NatsSecurityVariable, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new NatsSecurityError(
      variable,
      `must name a readable file (${(error as NodeJS.ErrnoException).code ?? 'unreadable'}: ${file})`,
    );
  }
}
