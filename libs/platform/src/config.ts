import { z } from 'zod';

/** A configuration value that is missing or wrong: names the variable so the operator can fix it. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly problem: string,
  ) {
    super(`invalid configuration: ${variable} ${problem}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/**
 * Reads and validates configuration from environment variables. Empty strings count as unset,
 * so `FOO= npm start` falls back to the default instead of failing on "".
 */
export function loadConfig<S extends z.ZodObject>(schema: S, env: Env = process.env): z.infer<S> {
  const input: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') input[key] = value;
  }
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const variable = String(issue.path[0] ?? 'configuration');
  const received = input[variable];
  const got = received === undefined ? 'it is not set' : `got ${JSON.stringify(received)}`;
  throw new ConfigError(variable, `${issue.message} (${got})`);
}

export const env = {
  port: (defaultPort: number) =>
    z.coerce
      .number({ message: 'must be a port number' })
      .int('must be a whole port number')
      .min(1, 'must be a port between 1 and 65535')
      .max(65535, 'must be a port between 1 and 65535')
      .default(defaultPort),

  int: (defaultValue: number, min: number, max: number) =>
    z.coerce
      .number({ message: 'must be a number' })
      .int('must be a whole number')
      .min(min, `must be at least ${min}`)
      .max(max, `must be at most ${max}`)
      .default(defaultValue),

  url: (defaultValue: string, protocols: readonly string[]) =>
    z
      .string()
      .default(defaultValue)
      .refine(
        (value) => {
          try {
            return protocols.includes(new URL(value).protocol);
          } catch {
            return false;
          }
        },
        `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`,
      ),

  /** A comma-separated list of URLs (NATS accepts several seed servers). */
  urlList: (defaultValue: string, protocols: readonly string[]) =>
    z
      .string()
      .default(defaultValue)
      .refine(
        (value) =>
          value.split(',').every((item) => {
            try {
              return protocols.includes(new URL(item.trim()).protocol);
            } catch {
              return false;
            }
          }),
        `must be a comma-separated list of URLs starting with ${protocols.map((p) => `${p}//`).join(' or ')}`,
      ),

  bool: (defaultValue: boolean) =>
    z
      .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
      .default(defaultValue ? 'true' : 'false')
      .transform((value) => value === 'true' || value === '1' || value === 'yes'),

  logLevel: () =>
    z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
        message: 'must be one of fatal, error, warn, info, debug, trace, silent',
      })
      .default('info'),

  /** Prefix for NATS subjects and stream names: empty in production, one per test run. */
  natsPrefix: () =>
    z
      .string()
      .regex(/^[A-Za-z0-9_-]*$/, 'may contain only letters, digits, "_" and "-"')
      .max(32, 'must be at most 32 characters')
      .default(''),

  host: (defaultValue: string) => z.string().min(1).default(defaultValue),

  /** A secret or a file path: only presence is checked here; libs/messaging checks the content. */
  optionalText: () => z.string().max(4_096, 'must be at most 4096 characters').optional(),
};

/** Settings every service shares. Each app extends this with its own. */
export const baseConfigSchema = z.object({
  HOST: env.host('127.0.0.1'),
  DATABASE_URL: env.url('postgres://postgres@127.0.0.1:5432/agent_marketplace', ['postgres:', 'postgresql:']),
  DB_POOL_MAX: env.int(4, 1, 100),
  NATS_URL: env.urlList('nats://127.0.0.1:4222', ['nats:', 'tls:']),
  NATS_PREFIX: env.natsPrefix(),
  // Bus credentials and TLS (ADR 0010): at most one way to authenticate; files are read at start.
  NATS_USER: env.optionalText(),
  NATS_PASSWORD: env.optionalText(),
  NATS_TOKEN: env.optionalText(),
  NATS_CREDS: env.optionalText(),
  NATS_NKEY_SEED: env.optionalText(),
  NATS_TLS_CA: env.optionalText(),
  NATS_TLS_CERT: env.optionalText(),
  NATS_TLS_KEY: env.optionalText(),
  /** Copies of each JetStream stream: 1 on a single server, 3 on a 3-node cluster (survives losing a node). */
  NATS_STREAM_REPLICAS: env.int(1, 1, 5),
  LOG_LEVEL: env.logLevel(),
  STARTUP_TIMEOUT_MS: env.int(30_000, 1_000, 600_000),
  SHUTDOWN_TIMEOUT_MS: env.int(10_000, 100, 120_000),
  HEALTH_CHECK_TIMEOUT_MS: env.int(1_000, 50, 30_000),
});
export type BaseConfig = z.infer<typeof baseConfigSchema>;
