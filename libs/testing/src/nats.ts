import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';

export function testNatsUrl(): string {
  return process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
}

/** A subject/stream prefix unique to this run: streams of parallel runs never overlap. */
export function testNatsPrefix(): string {
  return `t${randomBytes(5).toString('hex')}`;
}

export function connectTestNats(url = testNatsUrl()): Promise<NatsConnection> {
  return connect({ servers: url, name: 'test-harness', timeout: 5_000 });
}

/** Deletes every JetStream stream whose name starts with the run's prefix. */
export async function deletePrefixedStreams(connection: NatsConnection, prefix: string): Promise<void> {
  const { jetstreamManager } = await import('@nats-io/jetstream');
  const manager = await jetstreamManager(connection);
  for await (const stream of manager.streams.list()) {
    if (stream.config.name.startsWith(`${prefix}_`)) await manager.streams.delete(stream.config.name);
  }
}
