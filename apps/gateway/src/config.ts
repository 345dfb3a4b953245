import { z } from 'zod';
import { MICROS_PER_USD } from '@pf/money';
import { baseConfigSchema, env } from '@pf/platform';

/** docker-compose passes `${VAR:-}` (an empty value) for a key not set: that means unset. */
function emptyAsUnset<T extends z.ZodType>(schema: T) {
  return z.preprocess((value) => (value === '' ? undefined : value), schema);
}

export const gatewayConfigSchema = baseConfigSchema
  .extend({
    PORT: env.port(3000),
    /** How long the gateway waits for a service before answering 503 service_unavailable. */
    COMMAND_TIMEOUT_MS: env.int(5_000, 100, 60_000),
    BODY_LIMIT_BYTES: env.int(65_536, 1_024, 10_485_760),
    /** How long an API key's owner is remembered; a revoked key works at most this much longer. */
    AUTH_CACHE_TTL_MS: env.int(3_000, 0, 60_000),
    /** Operator key for /admin; the admin API is closed when unset. */
    ADMIN_API_KEY: z.string().min(16, 'must be at least 16 characters').optional(),
    /** Largest amount accepted in one request, in USD. */
    MAX_AMOUNT_USD: env.int(1_000_000, 1, 1_000_000_000),
    /**
     * Whose X-Forwarded-For to believe for the client IP: `false` (default: the socket's peer),
     * a number of proxy hops you run (`1`: the address your one proxy appended — cannot be spoofed
     * by the client), or `true` (the left-most entry: only when your proxy overwrites the header).
     */
    TRUST_PROXY: z
      .string()
      .regex(/^(true|false|[0-9]{1,2})$/, 'must be true, false or a number of proxy hops')
      .default('false')
      .transform((value): boolean | number =>
        value === 'true' ? true : value === 'false' ? false : Number(value),
      ),
    /**
     * Whether faucet claims from loopback peers (127.0.0.0/8, ::1) count against the faucet's
     * per-address allowance. Off by default: on one machine every client is 127.0.0.1, so one
     * claim would use up the address for every local agent (the one-claim-per-agent rule still
     * holds). Turn it on when a proxy on this machine forwards the public's requests without
     * TRUST_PROXY, or to test the limit locally.
     */
    FAUCET_LIMIT_LOOPBACK: env.bool(false),
    /** Requests per minute per client IP (0: off). */
    RATE_LIMIT_PER_IP_PER_MINUTE: env.int(1_200, 0, 1_000_000),
    /** Requests per minute per API key (0: off). */
    RATE_LIMIT_PER_KEY_PER_MINUTE: env.int(1_200, 0, 1_000_000),
    /**
     * How long an unfinished Idempotency-Key blocks retries (409) before a retry may run again.
     * Unset: derived from COMMAND_TIMEOUT_MS (see idempotencyLeaseMs); never below that.
     */
    IDEMPOTENCY_LEASE_MS: z.coerce
      .number({ message: 'must be a number' })
      .int('must be a whole number')
      .max(3_600_000, 'must be at most 3600000')
      .optional(),
    /** How long idempotent responses are kept; at least 24 h by the API contract. */
    IDEMPOTENCY_RETENTION_HOURS: env.int(48, 24, 24 * 30),
    /** Open `GET /escrow/events/stream` connections per gateway replica; more get 429. */
    EVENT_STREAMS_MAX: env.int(1_000, 1, 100_000),
    /** Open event streams per agent (a reconnecting client needs a spare one). */
    EVENT_STREAMS_PER_AGENT_MAX: env.int(5, 1, 1_000),
    /** How often an idle event stream sends a comment line, so proxies and clients keep it open. */
    EVENT_STREAM_HEARTBEAT_MS: env.int(15_000, 100, 300_000),
    /** How long a token from `POST /escrow/events/stream-token` may open a stream (EventSource). */
    EVENT_STREAM_TOKEN_TTL_SECONDS: env.int(60, 5, 3_600),
    /**
     * Key that signs stream tokens; replicas behind one load balancer need the same one. Unset:
     * a random key per gateway process (tokens from one gateway open streams only on it).
     */
    EVENT_STREAM_TOKEN_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
    /** Open public event streams (the dashboard's live feeds) per client IP; more get 429. */
    PUBLIC_EVENT_STREAMS_PER_IP_MAX: env.int(8, 1, 1_000),
    /** Where the built dashboard is (index.html, assets/). Unset: the checkout's dist/dashboard. */
    DASHBOARD_DIR: z.string().min(1).optional(),
    /**
     * Ed25519 key that signs receipts (ADR 0020): the base64 of its 32-byte seed. Unset: read from
     * RECEIPT_SIGNING_KEY_FILE (the base64 seed or a PKCS#8 PEM; `npm start` makes one, mode 600,
     * under .data); neither: a fresh key per process (its receipts still verify: every public key
     * used is kept and published). Rotate by changing it; old receipts keep verifying.
     */
    RECEIPT_SIGNING_KEY: emptyAsUnset(
      z
        .string()
        .refine(
          (value) => Buffer.from(value, 'base64').length === 32,
          'must be the base64 of a 32-byte Ed25519 seed',
        )
        .optional(),
    ),
    RECEIPT_SIGNING_KEY_FILE: env.optionalText(),
    /**
     * Server key that seals webhook signing secrets at rest (AES-256-GCM; ADR 0020): the base64
     * of 32 bytes, or a file holding it (`npm start` makes one, mode 600, under .data). Every
     * replica needs the same one. Neither set: the webhook routes answer 503.
     */
    WEBHOOK_SECRETS_KEY: emptyAsUnset(
      z
        .string()
        .refine((value) => Buffer.from(value, 'base64').length === 32, 'must be the base64 of 32 bytes')
        .optional(),
    ),
    WEBHOOK_SECRETS_KEY_FILE: env.optionalText(),
    /** Accept `http://` webhook URLs (tests, a receiver on this machine); https only by default. */
    WEBHOOK_ALLOW_HTTP: env.bool(false),
    /** Allow loopback targets (127.0.0.0/8, ::1): tests. Off: refused at creation and at delivery. */
    WEBHOOK_ALLOW_LOOPBACK: env.bool(false),
    /** Allow private, link-local and reserved targets (an internal deployment). */
    WEBHOOK_ALLOW_PRIVATE: env.bool(false),
    /** The longest one delivery may take (connect, send, answer). */
    WEBHOOK_TIMEOUT_MS: env.int(10_000, 100, 60_000),
    /** Bytes of a receiver's answer read at most (only its status counts). */
    WEBHOOK_RESPONSE_MAX_BYTES: env.int(65_536, 0, 1_048_576),
    /** Wait after an endpoint's first failure; doubles per failure in a row up to WEBHOOK_RETRY_MAX_MS. */
    WEBHOOK_RETRY_INITIAL_MS: env.int(5_000, 10, 3_600_000),
    WEBHOOK_RETRY_MAX_MS: env.int(3_600_000, 10, 86_400_000),
    /** An endpoint is disabled after this many failures in a row … */
    WEBHOOK_DISABLE_AFTER_FAILURES: env.int(20, 1, 100_000),
    /** … once it has also been failing this long (default 3 days: retries last at least 24 h). */
    WEBHOOK_DISABLE_AFTER_MS: env.int(259_200_000, 0, 2_592_000_000),
    /** How often each replica looks for due deliveries. */
    WEBHOOK_POLL_INTERVAL_MS: env.int(500, 10, 60_000),
    /** Endpoints one replica sends to at once. */
    WEBHOOK_CONCURRENCY: env.int(8, 1, 256),
    /** How long delivered rows stay in `GET /webhooks/{id}/deliveries`; pending ones stay until sent. */
    WEBHOOK_DELIVERY_RETENTION_HOURS: env.int(168, 1, 24 * 365),
  })
  .superRefine((config, context) => {
    const leaseMs = config.IDEMPOTENCY_LEASE_MS;
    const deadlineMs = requestDeadlineMs(config);
    if (leaseMs !== undefined && leaseMs < deadlineMs) {
      context.addIssue({
        code: 'custom',
        path: ['IDEMPOTENCY_LEASE_MS'],
        message: `must be at least ${deadlineMs} (COMMAND_TIMEOUT_MS × ${MAX_SEQUENTIAL_COMMANDS_PER_REQUEST} + ${REQUEST_OVERHEAD_MARGIN_MS} ms): a shorter lease lets a retry run while the first request is still alive`,
      });
    }
  });
export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;

/**
 * Commands one write waits for, one after the other: the auth guard's `authenticate` and the
 * route's own command. A route that needs more must raise this (and so the default lease).
 */
export const MAX_SEQUENTIAL_COMMANDS_PER_REQUEST = 2;
/** Postgres work around the commands (claim, record the response) and scheduling slack. */
export const REQUEST_OVERHEAD_MARGIN_MS = 1_000;

/** The longest a live gateway spends on one write: every command timing out, plus the margin. */
export function requestDeadlineMs(config: Pick<GatewayConfig, 'COMMAND_TIMEOUT_MS'>): number {
  return config.COMMAND_TIMEOUT_MS * MAX_SEQUENTIAL_COMMANDS_PER_REQUEST + REQUEST_OVERHEAD_MARGIN_MS;
}

/**
 * Issue #18: a gateway that crashed mid-request leaves its key claimed; a retry gets 409 until
 * the lease ends. A live request cannot outlast `requestDeadlineMs`, so the lease need not
 * either: with the default 5 s command timeout a retry runs again after 11 s, not 60 s.
 */
export function idempotencyLeaseMs(
  config: Pick<GatewayConfig, 'COMMAND_TIMEOUT_MS' | 'IDEMPOTENCY_LEASE_MS'>,
): number {
  return config.IDEMPOTENCY_LEASE_MS ?? requestDeadlineMs(config);
}

export function maxAmountMicros(config: GatewayConfig): bigint {
  return BigInt(config.MAX_AMOUNT_USD) * MICROS_PER_USD;
}
