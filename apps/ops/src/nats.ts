import type { NatsConnection } from '@nats-io/transport-node';
import { connectWith } from '@pf/nats-connect';
import { oneLine, UsageError } from '@pf/ops-kit';
import type { OpsConfig } from './config.js';

const CONNECT_TIMEOUT_MS = 3_000;

/**
 * One connection for one ops command. No reconnect loop: an unreachable server is a one-line
 * error (exit code 2) at once, not a command that hangs.
 */
export async function connectOpsNats(config: OpsConfig): Promise<NatsConnection> {
  try {
    return await connectWith(
      {
        servers: config.natsServers,
        name: 'ops-cli',
        user: 'ops',
        prefix: config.prefix,
        security: config.natsSecurity,
      },
      { timeout: CONNECT_TIMEOUT_MS, maxReconnectAttempts: 0 },
    );
  } catch (error) {
    throw new UsageError(`cannot reach NATS at ${config.natsServers.join(',')}: ${oneLine(error)}`);
  }
}

/** Runs `fn` with a connection and always closes it (draining what was published). */
export async function withNats<T>(
  config: OpsConfig,
  fn: (connection: NatsConnection) => Promise<T>,
): Promise<T> {
  const connection = await connectOpsNats(config);
  try {
    return await fn(connection);
  } finally {
    await connection.drain().catch(() => connection.close());
  }
}
