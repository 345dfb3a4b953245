import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { retryUntil } from './retry.js';
import { withTimeout } from './database.js';

/**
 * Connects to NATS, retrying for at most `deadlineMs` at start. Once connected the client
 * reconnects forever: a broker restart must not take the service down, only make it unready.
 * `options` come from libs/nats-connect's `natsConnectOptions` (servers, credentials, TLS, inbox).
 */
export async function connectNats(
  options: ConnectionOptions,
  deadlineMs: number,
  logger: Logger,
): Promise<NatsConnection> {
  const connection = await retryUntil('nats', deadlineMs, logger, () =>
    connect({
      ...options,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      timeout: 5_000,
      pingInterval: 10_000,
      // No Error objects built up front for every request just in case it fails: measured at
      // ~7% of casino's CPU under load. Failures still carry their message and cause.
      noAsyncTraces: true,
    }),
  );
  void watchStatus(connection, logger);
  return connection;
}

async function watchStatus(connection: NatsConnection, logger: Logger): Promise<void> {
  for await (const status of connection.status()) {
    if (status.type === 'disconnect' || status.type === 'reconnect' || status.type === 'error') {
      logger.warn({ nats: status.type }, `nats ${status.type}`);
    }
  }
}

/** True when the server answers a round trip within the timeout. */
export async function pingNats(connection: NatsConnection, timeoutMs: number): Promise<boolean> {
  if (connection.isClosed() || connection.isDraining()) return false;
  try {
    await withTimeout(connection.flush(), timeoutMs);
    return true;
  } catch {
    return false;
  }
}

/**
 * True when every named stream answers its info within the timeout. A connection can be up
 * while JetStream is not: on a cluster, a stream whose only replica sat on a lost node has no
 * leader, and every publisher and subscriber of it stalls.
 */
export async function pingJetStream(
  connection: NatsConnection,
  streamNames: readonly string[],
  timeoutMs: number,
): Promise<boolean> {
  if (connection.isClosed() || connection.isDraining()) return false;
  try {
    // checkAPI off: no account-info round trip before the stream lookups, which are the check.
    const manager = await jetstreamManager(connection, { timeout: timeoutMs, checkAPI: false });
    await withTimeout(Promise.all(streamNames.map((name) => manager.streams.info(name))), timeoutMs);
    return true;
  } catch {
    return false;
  }
}
