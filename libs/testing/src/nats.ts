import { randomBytes } from 'node:crypto';
import type { ConnectionOptions, NatsConnection } from '@nats-io/transport-node';
import { SubjectPrefix } from '@pf/contracts';
import { connectWith, type NatsSecurityEnv } from '@pf/nats-connect';
import { STALE_AFTER_SECONDS } from './database.js';

export function testNatsUrl(): string {
  return process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
}

/** A subject/stream prefix unique to this run: streams of parallel runs never overlap. */
export function testNatsPrefix(): string {
  return `t${randomBytes(5).toString('hex')}`;
}

/**
 * A test's own connection, through the same function the apps use. `as` picks the bus user (its
 * inbox and, with `security`, its credentials) when the broker enforces per-user permissions.
 */
export function connectTestNats(
  url = testNatsUrl(),
  options: Partial<ConnectionOptions> = {},
  as: { user?: string; prefix?: string; security?: NatsSecurityEnv } = {},
): Promise<NatsConnection> {
  return connectWith(
    {
      servers: url.split(','),
      name: 'test-harness',
      user: as.user ?? 'test',
      prefix: new SubjectPrefix(as.prefix ?? ''),
      security: as.security ?? {},
    },
    { timeout: 5_000, ...options },
  );
}

/** Streams of test runs (`testNatsPrefix()`): the broker outlives every run, CI reuses it. */
const TEST_STREAM_NAME = /^t[0-9a-f]{10}_/;

/**
 * Deletes every JetStream stream whose name starts with the run's prefix, and sweeps the
 * streams of earlier runs that crashed before their cleanup (test prefixes older than 6 h).
 */
export async function deletePrefixedStreams(connection: NatsConnection, prefix: string): Promise<void> {
  const { jetstreamManager } = await import('@nats-io/jetstream');
  const manager = await jetstreamManager(connection);
  const now = Date.now();
  for await (const stream of manager.streams.list()) {
    const name = stream.config.name;
    if (name.startsWith(`${prefix}_`)) {
      await manager.streams.delete(name);
    } else if (
      TEST_STREAM_NAME.test(name) &&
      now - Date.parse(stream.created) > STALE_AFTER_SECONDS * 1_000
    ) {
      // Another run's sweep may get there first.
      await manager.streams.delete(name).catch(() => undefined);
    }
  }
}
