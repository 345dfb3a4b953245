import type { NatsConnection } from '@nats-io/transport-node';
import pg from 'pg';
import { DomainError, SubjectPrefix, type CommandReply } from '@pf/contracts';
import { createTestDatabase, type TestDatabase } from './database.js';
import { connectTestNats, deletePrefixedStreams, testNatsPrefix, testNatsUrl } from './nats.js';
import { spawnService, type AppName, type ServiceProcess } from './processes.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Integer micro-dollars as the commands carry them, from a USD amount in a test. */
export function usdMicros(amount: number): string {
  return String(Math.round(amount * 1_000_000));
}

/** The error code a command failed with, or undefined when it succeeded. */
export function errorCodeOf(promise: Promise<unknown>): Promise<string | undefined> {
  return promise.then(
    () => undefined,
    (error: { code?: string }) => error.code,
  );
}

/**
 * Services under test as they run in production (child processes from dist/) on a fresh
 * database and NATS prefix, with a command client on that prefix and a SQL client for looking
 * behind the services' backs. `close()` stops the services and removes the database and streams.
 */
export class ServiceTestbed {
  readonly services: Partial<Record<AppName, ServiceProcess>> = {};

  private constructor(
    readonly database: TestDatabase,
    readonly prefix: string,
    readonly env: Record<string, string>,
    readonly nats: NatsConnection,
    readonly sql: pg.Client,
  ) {}

  static async start(
    label: string,
    apps: readonly AppName[],
    extraEnv: Record<string, string> = {},
  ): Promise<ServiceTestbed> {
    const database = await createTestDatabase(label);
    const prefix = testNatsPrefix();
    const env = { DATABASE_URL: database.url, NATS_URL: testNatsUrl(), NATS_PREFIX: prefix, ...extraEnv };
    const nats = await connectTestNats();
    const sql = new pg.Client({ connectionString: database.url });
    await sql.connect();
    const testbed = new ServiceTestbed(database, prefix, env, nats, sql);
    for (const app of apps) await testbed.startService(app);
    return testbed;
  }

  /** Starts (or restarts) one service with the testbed's environment and waits until it is ready. */
  async startService(app: AppName, extraEnv: Record<string, string> = {}): Promise<ServiceProcess> {
    const service = await spawnService(app, { env: { ...this.env, ...extraEnv } });
    await service.waitUntilReady();
    this.services[app] = service;
    return service;
  }

  /**
   * A command on the testbed's prefix: the reply's data, or a DomainError with the remote code.
   * (The messaging library's CommandClient does the same for the services; it is not used here
   * because the messaging library's own tests depend on this one.)
   */
  async request<T>(subject: string, payload: unknown, timeoutMs = 10_000): Promise<T> {
    const message = await this.nats.request(
      new SubjectPrefix(this.prefix).subject(subject),
      encoder.encode(JSON.stringify(payload)),
      { timeout: timeoutMs },
    );
    const reply = JSON.parse(decoder.decode(message.data)) as CommandReply<T>;
    if (reply.ok) return reply.data;
    throw new DomainError(reply.error.code, reply.error.message, reply.error.details);
  }

  async close(): Promise<void> {
    await Promise.all(Object.values(this.services).map((service) => service?.stop()));
    await this.sql.end().catch(() => undefined);
    await deletePrefixedStreams(this.nats, this.prefix).catch(() => undefined);
    await this.nats.close();
    await this.database.drop();
  }
}
