/**
 * Consumer-side deduplication. The broker's duplicate window only covers minutes of publisher
 * retries, so a redelivery or a re-published event must be recognised by its id. `runOnce` runs
 * `fn` in a transaction that also records (consumer, eventId); if that pair is already recorded
 * it answers 'duplicate' without running `fn`. The effect and the record commit together, so a
 * crash between them cannot apply an effect twice.
 */
export interface ProcessedEventStore {
  runOnce(
    consumer: string,
    eventId: string,
    fn: (tx: unknown) => Promise<void>,
  ): Promise<'processed' | 'duplicate'>;
}
