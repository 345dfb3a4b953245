/**
 * The envelope of every event published on JetStream (API.md, "Events for subscribers").
 * `id` is also the Nats-Msg-Id; amounts inside `data` are integer micro-dollars as strings.
 */
export interface EventEnvelope<D = Record<string, unknown>> {
  id: string;
  type: string;
  /** The aggregate (stream) id, e.g. an escrow id. */
  stream: string;
  version: number;
  /** Global position in the publishing service's log. */
  position: number;
  occurred_at: string;
  correlation_id: string | null;
  causation_id: string | null;
  schema: number;
  data: D;
}

/** Metadata stored with each event in the log. */
export interface EventMetadata {
  correlationId?: string;
  causationId?: string;
  commandId?: string;
  schemaVersion?: number;
  [key: string]: unknown;
}
