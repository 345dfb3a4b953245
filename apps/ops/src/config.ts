import { SubjectPrefix } from '@pf/contracts';
import {
  NATS_SECURITY_VARIABLES,
  natsSecurityOptions,
  NatsSecurityError,
  type NatsSecurityEnv,
} from '@pf/nats-connect';
import { UsageError } from '@pf/ops-kit';

/** The same variables the services read, with the same defaults. */
export interface OpsConfig {
  databaseUrl: string;
  natsServers: string[];
  prefix: SubjectPrefix;
  /** NATS credentials and TLS, the same variables as the services (connects as the `ops` user). */
  natsSecurity: NatsSecurityEnv;
}

const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/agent_marketplace';
const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';
const NATS_PREFIX_PATTERN = /^[A-Za-z0-9_-]{0,32}$/;

export function readConfig(env: Record<string, string | undefined> = process.env): OpsConfig {
  const databaseUrl = env.DATABASE_URL || DEFAULT_DATABASE_URL;
  if (!hasProtocol(databaseUrl, ['postgres:', 'postgresql:'])) {
    throw new UsageError(`DATABASE_URL must be a URL starting with postgres:// or postgresql://`);
  }
  const natsServers = (env.NATS_URL || DEFAULT_NATS_URL).split(',').map((server) => server.trim());
  if (!natsServers.every((server) => hasProtocol(server, ['nats:', 'tls:']))) {
    throw new UsageError(`NATS_URL must be a comma-separated list of URLs starting with nats:// or tls://`);
  }
  const prefix = env.NATS_PREFIX ?? '';
  if (!NATS_PREFIX_PATTERN.test(prefix))
    throw new UsageError(`NATS_PREFIX may contain only letters, digits, "_" and "-" (at most 32)`);
  const natsSecurity = Object.fromEntries(
    NATS_SECURITY_VARIABLES.map((variable) => [variable, env[variable]]),
  );
  try {
    natsSecurityOptions(natsSecurity);
  } catch (error) {
    if (error instanceof NatsSecurityError) throw new UsageError(error.message);
    throw error;
  }
  return { databaseUrl, natsServers, prefix: new SubjectPrefix(prefix), natsSecurity };
}

function hasProtocol(url: string, protocols: readonly string[]): boolean {
  try {
    return protocols.includes(new URL(url).protocol);
  } catch {
    return false;
  }
}
