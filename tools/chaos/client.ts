/**
 * The careless-but-correct client of the chaos suite: every write carries an Idempotency-Key,
 * and anything that is not a definitive answer (a 5xx, 409 request_in_progress, 429, a refused
 * or reset connection while a gateway restarts) is retried with the same key, bounded in time.
 */

export interface Answer {
  status: number;
  body: Record<string, unknown>;
}

export interface CallOptions {
  key?: string;
  body?: unknown;
  idempotencyKey?: string;
  /** Give up retrying after this long and return the last answer (status 0 if none). */
  retryForMs?: number;
}

const RETRY_DELAY_INITIAL_MS = 100;
const RETRY_DELAY_MAX_MS = 1_000;
const REQUEST_TIMEOUT_MS = 15_000;
/** A patient client: an app restarting on a loaded machine can take tens of seconds. */
const DEFAULT_RETRY_FOR_MS = 180_000;

export class RetryingClient {
  /** Retries by what caused them: an HTTP status with its error code, or a network error code. */
  readonly retriesByCode = new Map<string, number>();
  /** Every 500 seen: 500 means a bug, a dependency failure must be a 503. */
  readonly internalErrors: string[] = [];

  constructor(
    private readonly gatewayUrls: readonly string[],
    private readonly random: () => number,
  ) {}

  async call(method: string, path: string, options: CallOptions = {}): Promise<Answer> {
    const deadline = Date.now() + (options.retryForMs ?? DEFAULT_RETRY_FOR_MS);
    let delayMs = RETRY_DELAY_INITIAL_MS;
    let last: Answer = { status: 0, body: {} };
    for (;;) {
      const outcome = await this.once(method, path, options);
      if (typeof outcome !== 'string') {
        last = outcome;
        if (outcome.status === 500)
          this.internalErrors.push(`${method} ${path}: ${JSON.stringify(outcome.body)}`);
        if (!isRetryable(outcome)) return outcome;
      }
      const code =
        typeof outcome === 'string'
          ? outcome
          : `${outcome.status} ${String(outcome.body.error ?? '')}`.trim();
      if (Date.now() + delayMs > deadline) return last;
      this.retriesByCode.set(code, (this.retriesByCode.get(code) ?? 0) + 1);
      await sleep(delayMs);
      delayMs = Math.min(RETRY_DELAY_MAX_MS, delayMs * 2);
    }
  }

  /** One attempt on a random gateway: its answer, or the network error's code. */
  private async once(method: string, path: string, options: CallOptions): Promise<Answer | string> {
    const base = this.gatewayUrls[Math.floor(this.random() * this.gatewayUrls.length)]!;
    const headers: Record<string, string> = {};
    if (options.key) headers.authorization = `Bearer ${options.key}`;
    if (options.idempotencyKey) headers['idempotency-key'] = options.idempotencyKey;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    try {
      const response = await fetch(`${base}${path}`, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const text = await response.text();
      let body: Record<string, unknown> = {};
      try {
        body = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
      } catch {
        body = { error: 'not_json', message: text.slice(0, 200) };
      }
      return { status: response.status, body };
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause;
      return cause?.code ?? (error as Error).name ?? 'network_error';
    }
  }
}

export function isRetryable(answer: Answer): boolean {
  if (answer.status === 0) return true;
  if (answer.status >= 500) return true;
  if (answer.status === 429) return true;
  return answer.status === 409 && answer.body.error === 'request_in_progress';
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
