/**
 * Which failures mean "a dependency is down" (→ 503 `service_unavailable`, retry later) rather
 * than "our code is wrong" (→ 500 `internal_error`). Defined once so the services' command
 * replies, the gateway's error filter and the throttled logs all agree.
 */

/** Socket-level errors of Node (`err.code`): the peer is gone, unreachable or too slow. */
const SOCKET_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * Postgres SQLSTATEs that say the server, not the statement, failed: 53300 too many
 * connections, 53xxx out of resources, 57P01–57P05 shutdown/crash/cannot connect now/idle
 * timeout, 57014 statement timeout or cancel; the whole 08 class is "connection exception".
 */
const POSTGRES_UNAVAILABLE_CODES = new Set([
  '53000',
  '53100',
  '53200',
  '53300',
  '57P01',
  '57P02',
  '57P03',
  '57P05',
  '57014',
]);

/** node-postgres and the pool report a lost or impossible connection only in the message. */
const UNAVAILABLE_MESSAGES = [
  'connection terminated',
  'connection timeout',
  'timeout exceeded when trying to connect',
  'client has encountered a connection error',
  'cannot use a pool after calling end',
  'connection is not established',
  'not queryable',
  'timed out after',
];

/** NATS client errors (by `name`, the classes live in @nats-io): the bus, not the request, failed. */
const NATS_UNAVAILABLE_NAMES = new Set([
  'ClosedConnectionError',
  'ConnectionError',
  'DrainingConnectionError',
  'TimeoutError',
  'NoRespondersError',
  'RequestError',
]);

/** How deep `cause` / `driverError` chains are followed (TypeORM and pg wrap errors). */
const MAX_CAUSE_DEPTH = 4;

/** True when the error (or what it wraps) says Postgres, NATS or the network is unavailable. */
export function isDependencyFailure(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > MAX_CAUSE_DEPTH) return false;
  const { code, name, message, driverError, cause } = error as {
    code?: unknown;
    name?: unknown;
    message?: unknown;
    driverError?: unknown;
    cause?: unknown;
  };
  if (
    typeof code === 'string' &&
    (SOCKET_ERROR_CODES.has(code) || POSTGRES_UNAVAILABLE_CODES.has(code) || /^08[0-9A-Z]{3}$/.test(code))
  )
    return true;
  if (typeof name === 'string' && NATS_UNAVAILABLE_NAMES.has(name)) return true;
  if (typeof message === 'string') {
    const lower = message.toLowerCase();
    if (UNAVAILABLE_MESSAGES.some((fragment) => lower.includes(fragment))) return true;
  }
  return isDependencyFailure(driverError, depth + 1) || isDependencyFailure(cause, depth + 1);
}

/** A short, stack-free description of a dependency failure for logs: `ECONNREFUSED: connect …`. */
export function describeDependencyFailure(error: unknown): string {
  if (typeof error !== 'object' || error === null) return String(error);
  const { code, message } = error as { code?: unknown; message?: unknown };
  const text = typeof message === 'string' ? message : String(error);
  return typeof code === 'string' && !text.includes(code) ? `${code}: ${text}` : text;
}

/**
 * The field a 503 answer carries (API.md): whether the write may have taken effect, so the
 * client knows to retry with the same `Idempotency-Key` rather than with a new one.
 */
export const WRITE_MAY_HAVE_HAPPENED = 'write_may_have_happened';

/** The minimum a logger must offer; pino's Logger fits. */
export interface WarnLogger {
  warn(fields: Record<string, unknown>, message: string): void;
}

/**
 * While a dependency is down every request fails the same way; logging each with its stack
 * buried the one useful line (20 MB in 20 s). This logs the first failure of each kind at
 * once, then at most one line per interval with how many were suppressed meanwhile.
 */
export class ThrottledFailureLog {
  private readonly windows = new Map<string, { loggedAtMs: number; suppressed: number }>();

  constructor(
    private readonly logger: WarnLogger,
    private readonly intervalMs = 5_000,
    private readonly nowMs: () => number = Date.now,
  ) {}

  /** Logs `message` for `kind` unless it was logged less than an interval ago (then counts it). */
  warn(kind: string, message: string, fields: Record<string, unknown> = {}): void {
    const now = this.nowMs();
    const window = this.windows.get(kind);
    if (window && now - window.loggedAtMs < this.intervalMs) {
      window.suppressed += 1;
      return;
    }
    const suppressed = window?.suppressed ?? 0;
    this.windows.set(kind, { loggedAtMs: now, suppressed: 0 });
    this.logger.warn(
      { ...fields, kind, ...(suppressed > 0 ? { suppressedSinceLast: suppressed } : {}) },
      message,
    );
  }
}
