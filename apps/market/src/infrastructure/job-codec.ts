import type { JobEvent, JobEventType, JobState } from '../domain/job.js';

/**
 * Job events as stored in the log and published on `market.events.<type>`, and the job state as
 * kept in the `jobs` row: every `…Micros` amount is an integer micro-dollar string in JSON (JSON
 * has no bigint) and a bigint in the domain. The stored shape is the documented payload
 * (docs/events.md); change it only with a new schema version.
 */
export const JOB_EVENT_TYPES: ReadonlySet<string> = new Set<JobEventType>([
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
]);

export const JOB_EVENT_SCHEMA_VERSION = 1;

type Data = Record<string, unknown>;

export function encodeJobEvent(event: JobEvent): { type: JobEventType; data: Data } {
  const { type, ...rest } = event;
  return { type, data: toJson(rest) as Data };
}

export function decodeJobEvent(type: string, data: Data): JobEvent {
  if (!JOB_EVENT_TYPES.has(type)) throw new Error(`not a job event: ${type}`);
  if (typeof data.jobId !== 'string') throw new Error(`stored job event ${type} without a jobId`);
  return { type, ...(fromJson(data) as Data) } as JobEvent;
}

export function encodeJobState(state: JobState): Data {
  return toJson(state) as Data;
}

export function decodeJobState(data: Data): JobState {
  return fromJson(data) as JobState;
}

/** bigint → decimal string, everywhere in the value. */
function toJson(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map(toJson);
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, toJson(item)]));
  return value;
}

/** `…Micros` strings → bigint, everywhere in the value. */
function fromJson(value: unknown, key = ''): unknown {
  if (key.endsWith('Micros')) {
    if (typeof value !== 'string' || !/^-?\d+$/.test(value))
      throw new Error(`expected integer micro-dollars in ${key}, got ${String(value)}`);
    return BigInt(value);
  }
  if (Array.isArray(value)) return value.map((item) => fromJson(item));
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([name, item]) => [name, fromJson(item, name)]));
  return value;
}
