/** An answer the gateway refused: its status and the `error` code of its JSON body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Requests wait at most this long: a stalled gateway shows as an error, not a frozen panel. */
const REQUEST_TIMEOUT_MS = 15_000;

/**
 * One JSON request to the gateway on this page's origin. `adminKey` goes in the Authorization
 * header only (never in a URL, where logs and history would keep it).
 */
export async function getJson<T>(
  path: string,
  options: { adminKey?: string; method?: string } = {},
): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.adminKey) headers.authorization = `Bearer ${options.adminKey}`;
  const response = await fetch(path, {
    method: options.method ?? 'GET',
    headers,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await response.text();
  const body = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
  if (!response.ok) {
    const code = typeof body.error === 'string' ? body.error : `http_${response.status}`;
    const message = typeof body.message === 'string' ? body.message : response.statusText;
    throw new ApiError(response.status, code, message);
  }
  return body as T;
}

export function errorText(error: unknown): string {
  if (error instanceof ApiError) return `${error.status} ${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

/** An event of the public feeds (`/escrow/events/public`, `/jobs/events/public`). */
export interface PublicEvent {
  sequence: number;
  feed: 'escrow' | 'jobs';
  type: string;
  stream: string;
  occurred_at: string;
  data: {
    escrow_id?: string;
    job_id?: string;
    status?: string;
    amount_micros?: string;
    commission_micros?: string;
  };
}

/** Events a feed sends; EventSource needs a listener per `event:` name. */
export const ESCROW_EVENT_TYPES = [
  'funded',
  'completed',
  'disputed',
  'released',
  'refunded',
  'declined',
  'cancelled',
  'resolved',
] as const;
export const JOB_EVENT_TYPES = [
  'job_posted',
  'bid_placed',
  'bid_withdrawn',
  'award_started',
  'job_awarded',
  'award_failed',
  'job_completed',
  'race_won',
  'race_lost',
  'award_settled',
  'job_cancelled',
] as const;

/**
 * Follows one public feed with EventSource, which reconnects by itself with Last-Event-ID, so a
 * dropped connection resumes with no gap. Returns the function that closes it.
 */
export function followFeed(
  feed: PublicEvent['feed'],
  onEvent: (event: PublicEvent) => void,
  onState: (connected: boolean) => void,
): () => void {
  const source = new EventSource(feed === 'escrow' ? '/escrow/events/public' : '/jobs/events/public');
  const types = feed === 'escrow' ? ESCROW_EVENT_TYPES : JOB_EVENT_TYPES;
  const listener = (message: MessageEvent<string>) => {
    const wire = JSON.parse(message.data) as Omit<PublicEvent, 'sequence' | 'feed'>;
    onEvent({ ...wire, sequence: Number(message.lastEventId), feed });
  };
  for (const type of types) source.addEventListener(type, listener);
  source.onopen = () => onState(true);
  source.onerror = () => onState(source.readyState === EventSource.OPEN);
  return () => source.close();
}
