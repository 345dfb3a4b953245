import { deadLetterStream, eventStreamDefaults, eventStreams, SubjectPrefix } from '@pf/contracts';
import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';

/** A stream as the contracts name it: unprefixed name and subject filter. */
export interface StreamDefinition {
  name: string;
  subjects: string;
}

export interface StreamSettings {
  /** Publisher retries with the same Nats-Msg-Id inside this window are dropped by the broker. */
  duplicateWindowMs: number;
  /** How long events stay for replay. */
  maxAgeMs: number;
  /** Byte cap per stream; -1 means only `maxAgeMs` limits it (a fixed cap must fit the server's disk reservation). */
  maxBytes: number;
  /** 1 on a single server; 3 on a cluster. */
  replicas: number;
}

export const defaultStreamSettings: StreamSettings = {
  duplicateWindowMs: eventStreamDefaults.duplicateWindowMs,
  maxAgeMs: eventStreamDefaults.maxAgeMs,
  maxBytes: -1,
  replicas: 1,
};

export type StreamAction = 'created' | 'updated' | 'unchanged';

export interface EnsureStreamsOptions {
  /** Defaults to every service's event stream from the contracts; the dead-letter stream is always added. */
  streams?: readonly StreamDefinition[];
  settings?: Partial<StreamSettings>;
}

/** Every event stream named in the contracts. */
export function contractEventStreams(): StreamDefinition[] {
  return Object.values(eventStreams).map(({ name, subjects }) => ({ name, subjects }));
}

/**
 * Creates or updates the event streams and the dead-letter stream. Idempotent: a stream that
 * already has the wanted settings is left alone, so every replica of every service can call it
 * at start. Storage and retention cannot change in place; a mismatch there is an error for ops.
 */
export async function ensureStreams(
  connection: NatsConnection,
  prefix: SubjectPrefix,
  options: EnsureStreamsOptions = {},
): Promise<Array<{ name: string; action: StreamAction }>> {
  const manager = await jetstreamManager(connection);
  const settings = { ...defaultStreamSettings, ...options.settings };
  const definitions = [...(options.streams ?? contractEventStreams()), deadLetterStream];
  const results: Array<{ name: string; action: StreamAction }> = [];
  for (const definition of definitions) {
    const config = streamConfig(prefix, definition, settings);
    results.push({ name: config.name, action: await ensureStream(manager, config) });
  }
  return results;
}

export function streamConfig(
  prefix: SubjectPrefix,
  definition: StreamDefinition,
  settings: StreamSettings,
): StreamConfig {
  return {
    name: prefix.streamName(definition.name),
    subjects: [prefix.subject(definition.subjects)],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    duplicate_window: nanos(settings.duplicateWindowMs),
    max_age: nanos(settings.maxAgeMs),
    max_bytes: settings.maxBytes,
    max_msgs: -1,
    max_msgs_per_subject: -1,
    max_msg_size: -1,
    num_replicas: settings.replicas,
  } as StreamConfig;
}

async function ensureStream(manager: JetStreamManager, wanted: StreamConfig): Promise<StreamAction> {
  const current = await streamConfigOrNull(manager, wanted.name);
  if (current === null) {
    try {
      await manager.streams.add(wanted);
      return 'created';
    } catch (error) {
      // Another replica created it between our lookup and our add: fall through to compare.
      const raced = await streamConfigOrNull(manager, wanted.name);
      if (raced === null) throw error;
      return updateIfChanged(manager, raced, wanted);
    }
  }
  return updateIfChanged(manager, current, wanted);
}

async function updateIfChanged(
  manager: JetStreamManager,
  current: StreamConfig,
  wanted: StreamConfig,
): Promise<StreamAction> {
  for (const fixed of ['storage', 'retention'] as const) {
    if (current[fixed] !== wanted[fixed]) {
      throw new Error(
        `stream ${wanted.name}: ${fixed} is ${current[fixed]}, wanted ${wanted[fixed]}; it cannot change in place`,
      );
    }
  }
  if (!hasChanged(current, wanted)) return 'unchanged';
  const { name: _name, storage: _storage, retention: _retention, ...updatable } = wanted;
  await manager.streams.update(wanted.name, updatable);
  return 'updated';
}

const COMPARED_FIELDS = [
  'discard',
  'duplicate_window',
  'max_age',
  'max_bytes',
  'max_msgs',
  'max_msgs_per_subject',
  'max_msg_size',
  'num_replicas',
] as const;

function hasChanged(current: StreamConfig, wanted: StreamConfig): boolean {
  if (current.subjects.join(' ') !== wanted.subjects.join(' ')) return true;
  return COMPARED_FIELDS.some((field) => current[field] !== wanted[field]);
}

async function streamConfigOrNull(manager: JetStreamManager, name: string): Promise<StreamConfig | null> {
  try {
    return (await manager.streams.info(name)).config;
  } catch (error) {
    if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) return null;
    throw error;
  }
}

/**
 * True when every subject `pattern` matches is also matched by `filter` (NATS wildcards: `*`
 * one token, `>` one or more trailing tokens). Used to find the stream an `@EventPattern` reads.
 */
export function filterCovers(filter: string, pattern: string): boolean {
  const filterTokens = filter.split('.');
  const patternTokens = pattern.split('.');
  for (let index = 0; index < filterTokens.length; index += 1) {
    const token = filterTokens[index];
    if (token === '>') return patternTokens.length > index;
    const other = patternTokens[index];
    if (other === undefined || other === '>') return false;
    if (token !== '*' && token !== other) return false;
  }
  return filterTokens.length === patternTokens.length;
}

/** The contract stream whose subjects include every subject of `pattern` (unprefixed). */
export function streamForPattern(
  pattern: string,
  streams: readonly StreamDefinition[] = contractEventStreams(),
): StreamDefinition {
  const stream = streams.find((definition) => filterCovers(definition.subjects, pattern));
  if (!stream) throw new Error(`no event stream covers the pattern ${JSON.stringify(pattern)}`);
  return stream;
}
