import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import type { DynamicModule, INestApplication, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { MigrationInterface } from 'typeorm';
import type { z } from 'zod';
import { SubjectPrefix } from '@pf/contracts';
import { CommandClient, connectNatsTransport, NatsTransport, type ProcessedEventStore } from '@pf/messaging';
import { natsConnectOptions, NatsSecurityError } from '@pf/nats-connect';
import type { ConnectionOptions } from '@nats-io/transport-node';
import { ConfigError, loadConfig, type BaseConfig } from './config.js';
import { connectDatabase, createDataSource, migrateSchema, type PlanCacheMode } from './database.js';
import { createLogger, PinoNestLogger } from './logger.js';
import { connectNats } from './nats.js';
import { PlatformModule } from './platform.module.js';
import type { ServiceContext } from './service-context.js';

export interface ServiceDefinition<S extends z.ZodObject> {
  /** Service name: also its Postgres schema and the first token of its subjects. */
  name: string;
  version: string;
  configSchema: S;
  migrations: Array<new () => MigrationInterface>;
  /** The service's root module, given the running context. */
  rootModule: (context: ServiceContext<z.infer<S> & BaseConfig>) => Type<unknown> | DynamicModule;
  /**
   * Port and body limit of the service's HTTP listener; `bodyParser: false` leaves body
   * parsing to `configureApp` (the gateway installs its own strict JSON parser).
   */
  http: (config: z.infer<S>) => {
    port: number;
    bodyLimitBytes?: number;
    bodyParser?: boolean;
    trustProxy?: boolean | number;
  };
  /** Extra HTTP setup (filters, hooks) before listening. */
  configureApp?: (
    app: NestFastifyApplication,
    context: ServiceContext<z.infer<S> & BaseConfig>,
  ) => void | Promise<void>;
  /** Consumer-side dedup for `@EventPattern` handlers (e.g. a Postgres inbox in the service's schema). */
  inbox?: (context: ServiceContext<z.infer<S> & BaseConfig>) => ProcessedEventStore;
  /**
   * Postgres `plan_cache_mode` for the service's connections (default: Postgres's `auto`). Escrow
   * uses `force_generic_plan`: under the lifecycle load Postgres spent about a fifth of its time
   * re-planning escrow's prepared statements (docs/BENCHMARKS.md, session 7).
   */
  planCacheMode?: PlanCacheMode;
  /** Work to stop before the connections close (sweepers, relays). */
  beforeShutdown?: (context: ServiceContext<z.infer<S> & BaseConfig>) => Promise<void>;
}

/**
 * Starts one service: validated configuration, Postgres (migrated), NATS, the NestJS app with
 * its HTTP listener and its command transport, and a graceful SIGTERM/SIGINT shutdown that
 * stops taking work, drains NATS and closes the pool. `--migrate-only` applies migrations and exits.
 */
export async function runService<S extends z.ZodObject>(definition: ServiceDefinition<S>): Promise<void> {
  const config = loadConfigOrExit(definition);
  const instanceId = `${definition.name}-${randomBytes(3).toString('hex')}`;
  const natsOptions = natsOptionsOrExit(definition.name, instanceId, config);
  const logger = createLogger(definition.name, config.LOG_LEVEL);
  const dataSource = createDataSource({
    url: config.DATABASE_URL,
    schema: definition.name,
    poolMax: config.DB_POOL_MAX,
    applicationName: definition.name,
    migrations: definition.migrations,
    logger,
    planCacheMode: definition.planCacheMode,
  });
  await connectDatabase(dataSource, config.STARTUP_TIMEOUT_MS, logger);
  const applied = await migrateSchema(dataSource, definition.name);
  logger.info({ applied }, `migrations: ${applied.length} applied`);
  if (process.argv.includes('--migrate-only')) {
    await dataSource.destroy();
    return;
  }

  const nats = await connectNats(natsOptions, config.STARTUP_TIMEOUT_MS, logger);
  const prefix = new SubjectPrefix(config.NATS_PREFIX);
  const context: ServiceContext<z.infer<S> & BaseConfig> = {
    name: definition.name,
    version: definition.version,
    instanceId,
    startedAtMs: Date.now(),
    config,
    logger,
    dataSource,
    nats,
    prefix,
    commands: new CommandClient({ connection: nats, prefix, timeoutMs: 5_000 }),
  };

  const http = definition.http(config);
  const app = await NestFactory.create<NestFastifyApplication>(
    {
      module: class ServiceRoot {},
      imports: [PlatformModule.forService(context), definition.rootModule(context)],
    },
    new FastifyAdapter({
      bodyLimit: http.bodyLimitBytes ?? 1_048_576,
      trustProxy: trustProxySetting(http.trustProxy),
      // Errors Fastify raises before any route runs (an undecodable URL, a bad header) get the
      // same {error, message} body as everything else, never Fastify's own shape.
      frameworkErrors: (error: FastifyError, _request: FastifyRequest, reply: FastifyReply) => {
        void reply
          .code(error.statusCode && error.statusCode < 500 ? error.statusCode : 400)
          .header('content-type', 'application/json; charset=utf-8')
          .send(JSON.stringify({ error: 'invalid_request', message: 'malformed request' }));
      },
    }),
    { logger: new PinoNestLogger(logger), abortOnError: false, bodyParser: http.bodyParser ?? true },
  );
  // Durable consumers are named after the service, so its replicas share them.
  const transport = new NatsTransport({
    connection: nats,
    prefix,
    logger,
    consumerGroup: definition.name,
    inbox: definition.inbox?.(context),
    streamSettings: { replicas: config.NATS_STREAM_REPLICAS },
  });
  connectNatsTransport(app, transport);
  await definition.configureApp?.(app, context);
  await app.startAllMicroservices();
  await app.listen(http.port, config.HOST);
  logger.info({ port: http.port, host: config.HOST, prefix: config.NATS_PREFIX }, `${definition.name} ready`);

  installShutdown(app, context, definition.beforeShutdown);
}

/** A hop count trusts exactly that many proxies in front of us (the nearest ones), no more. */
function trustProxySetting(
  trustProxy: boolean | number | undefined,
): boolean | ((address: string, hop: number) => boolean) {
  if (typeof trustProxy !== 'number') return trustProxy ?? false;
  const hops = trustProxy;
  return (_address, hop) => hop < hops;
}

function loadConfigOrExit<S extends z.ZodObject>(definition: ServiceDefinition<S>): z.infer<S> & BaseConfig {
  try {
    return loadConfig(definition.configSchema) as z.infer<S> & BaseConfig;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${definition.name}: ${error.message}\n`);
    process.exit(1);
  }
}

/** Credentials and TLS files are checked before anything connects: a bad one names its variable. */
function natsOptionsOrExit(service: string, instanceId: string, config: BaseConfig): ConnectionOptions {
  try {
    return natsConnectOptions({
      servers: config.NATS_URL.split(',').map((server) => server.trim()),
      name: instanceId,
      user: service,
      prefix: new SubjectPrefix(config.NATS_PREFIX),
      security: config,
    });
  } catch (error) {
    if (!(error instanceof NatsSecurityError)) throw error;
    process.stderr.write(`${service}: ${error.message}\n`);
    process.exit(1);
  }
}

function installShutdown<C extends BaseConfig>(
  app: INestApplication,
  context: ServiceContext<C>,
  beforeShutdown?: (context: ServiceContext<C>) => Promise<void>,
): void {
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    context.logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      context.logger.error('shutdown took too long, exiting');
      process.exit(1);
    }, context.config.SHUTDOWN_TIMEOUT_MS);
    force.unref();
    try {
      await beforeShutdown?.(context);
      await app.close();
      await context.nats.drain();
      await context.dataSource.destroy();
      context.logger.info('stopped');
      process.exit(0);
    } catch (error) {
      context.logger.error({ err: error }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  // A closed terminal (or `kill -HUP`) ends the service the same orderly way, not abruptly.
  process.once('SIGHUP', () => void stop('SIGHUP'));
}

/**
 * How far V8 lets the old generation grow past what survived the last full collection, in
 * percent. V8's own choice on a large machine is up to 4x, so a service whose live heap is
 * ~60 MB let garbage pile up to ~135 MB before collecting: casino peaked at 229–252 MB RSS under
 * bench:ledger, against a 250 MB budget. At 50% it peaked at 157–164 MB with no measurable change
 * in CPU per hold (docs/BENCHMARKS.md). A --heap-growing-percent given to node wins.
 */
export const HEAP_GROWING_PERCENT = 50;

function boundHeapGrowth(): void {
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS?.split(/\s+/) ?? [])].some((flag) =>
    /^--heap[-_]growing[-_]percent\b/.test(flag),
  );
  if (!given) setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}

/** Entry point helper: runs the service and exits non-zero with a message if start fails. */
export function main<S extends z.ZodObject>(definition: ServiceDefinition<S>): void {
  boundHeapGrowth();
  runService(definition).catch((error: unknown) => {
    process.stderr.write(`${definition.name}: failed to start: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
