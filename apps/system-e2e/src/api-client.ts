/** A small JSON client for the gateway, as an agent would write one; shared by the e2e tests. */

export interface Answer<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
}

export interface CallOptions {
  body?: unknown;
  /** An agent's API key or the admin key: sent as `Authorization: Bearer <key>`. */
  key?: string;
  headers?: Record<string, string>;
}

export interface Agent {
  agentId: string;
  apiKey: string;
  referralCode: string;
}

export class ApiClient {
  constructor(readonly baseUrl: string) {}

  async call<T = Record<string, unknown>>(
    method: string,
    path: string,
    options: CallOptions = {},
  ): Promise<Answer<T>> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.key) headers.authorization = `Bearer ${options.key}`;
    if (options.body !== undefined) headers['content-type'] ??= 'application/json';
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers,
      body:
        options.body === undefined
          ? undefined
          : typeof options.body === 'string'
            ? options.body
            : JSON.stringify(options.body),
    });
    const text = await response.text();
    return {
      status: response.status,
      body: (text === '' ? {} : JSON.parse(text)) as T,
      headers: response.headers,
    };
  }

  get<T = Record<string, unknown>>(path: string, key?: string): Promise<Answer<T>> {
    return this.call<T>('GET', path, { key });
  }

  post<T = Record<string, unknown>>(path: string, body: unknown = {}, key?: string): Promise<Answer<T>> {
    return this.call<T>('POST', path, { body, key });
  }

  async register(body: Record<string, unknown> = {}): Promise<Agent> {
    const answer = await this.post('/api/v1/auth/register', body);
    if (answer.status !== 201) throw new Error(`register: ${answer.status} ${JSON.stringify(answer.body)}`);
    return {
      agentId: answer.body.agent_id as string,
      apiKey: answer.body.api_key as string,
      referralCode: answer.body.referral_code as string,
    };
  }

  async credit(adminKey: string, agentId: string, amountUsd: number): Promise<void> {
    const answer = await this.post(
      '/admin/credit',
      { agent_id: agentId, amount_usd: amountUsd, reference: `e2e-${agentId}-${amountUsd}` },
      adminKey,
    );
    if (answer.status !== 200) throw new Error(`credit: ${answer.status} ${JSON.stringify(answer.body)}`);
  }

  async balanceUsd(key: string): Promise<number> {
    const answer = await this.get('/api/v1/auth/balance', key);
    if (answer.status !== 200) throw new Error(`balance: ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.body.balance_usd as number;
  }
}

/** Every key of a documented example is in the live answer, recursively (a renamed field fails). */
export function missingKeys(example: unknown, actual: unknown, path = ''): string[] {
  if (example === null || typeof example !== 'object' || Array.isArray(example)) return [];
  if (actual === null || typeof actual !== 'object') return [path || '(root)'];
  const missing: string[] = [];
  for (const [key, value] of Object.entries(example as Record<string, unknown>)) {
    const here = path ? `${path}.${key}` : key;
    if (!(key in (actual as Record<string, unknown>))) missing.push(here);
    else missing.push(...missingKeys(value, (actual as Record<string, unknown>)[key], here));
  }
  return missing;
}
