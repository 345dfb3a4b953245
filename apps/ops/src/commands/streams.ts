import { jetstreamManager } from '@nats-io/jetstream';
import {
  booleanFlag,
  ExitCode,
  formatCount,
  parseArgs,
  UsageError,
  collectStreamStates,
  type StreamState,
} from '@pf/ops-kit';
import type { OpsConfig } from '../config.js';
import { withNats } from '../nats.js';
import { formatMegabytes, say } from '../output.js';

export const streamsUsage = `ops streams [--json]
  Each event stream and the dead-letter stream: messages, bytes, last sequence, and per
  consumer the pending (undelivered), ack-pending, redelivered and dead-lettered messages and
  the lag (pending + ack pending). Ephemeral consumers (ops tail, the gateway's SSE streams)
  are marked and listed after the durable ones (--json: "durable": false).`;

export async function streamsCommand(argv: readonly string[], config: OpsConfig): Promise<number> {
  const args = parseArgs(argv, { json: 'boolean' });
  if (args.positionals.length > 0) throw new UsageError(`usage: ${streamsUsage.split('\n')[0]}`);
  return withNats(config, async (connection) => {
    const states = await collectStreamStates(await jetstreamManager(connection), config.prefix);
    if (booleanFlag(args, 'json')) say(JSON.stringify({ streams: states }));
    else for (const line of formatStates(states)) say(line);
    return ExitCode.ok;
  });
}

export function formatStates(states: readonly StreamState[]): string[] {
  const lines: string[] = [];
  for (const stream of states) {
    if (!stream.exists) {
      lines.push(`${stream.name}: missing (no service has created it yet)`);
      continue;
    }
    lines.push(
      `${stream.name}: ${formatCount(stream.messages)} messages, ${formatMegabytes(stream.bytes)}, sequences ${stream.firstSequence}..${stream.lastSequence}, last at ${stream.lastTime ?? '-'}`,
    );
    if (!stream.consumers.some((consumer) => consumer.durable)) lines.push('  no durable consumers');
    for (const consumer of stream.consumers) {
      const kind = consumer.durable ? '' : ' (ephemeral: an ops tail or SSE connection)';
      lines.push(
        `  ${consumer.name}${kind}: lag ${formatCount(consumer.lagMessages)} (pending ${formatCount(consumer.pendingMessages)}, ack pending ${formatCount(consumer.ackPendingMessages)}), redelivered ${formatCount(consumer.redeliveredMessages)}, dead letters ${formatCount(consumer.deadLetters)}, delivered up to #${consumer.deliveredSequence}`,
      );
    }
    if (stream.consumersNotListed > 0) lines.push(`  … and ${stream.consumersNotListed} more consumers`);
  }
  return lines;
}
