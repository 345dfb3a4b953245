import { casinoCommands, DomainError, type CreditReply } from '@pf/contracts';
import { CommandClient } from '@pf/messaging';
import { formatUsd, parseUsd } from '@pf/money';
import { booleanFlag, ExitCode, parseArgs, stringFlag, UsageError } from '@pf/ops-kit';
import type { OpsConfig } from '../config.js';
import { withNats } from '../nats.js';
import { note, say } from '../output.js';

const FLAGS = { reference: 'string', json: 'boolean' } as const;
const CREDIT_TIMEOUT_MS = 10_000;

export const creditUsage = `ops credit <agent_id> <usd> --reference R [--json]
  An operator deposit from outside (casino credit command). Idempotent on the reference: the
  same reference again is the same deposit, a different amount with it is refused.`;

export async function creditCommand(argv: readonly string[], config: OpsConfig): Promise<number> {
  const args = parseArgs(argv, FLAGS);
  const [agentId, usd, ...extra] = args.positionals;
  if (!agentId || !usd || extra.length > 0) throw new UsageError(`usage: ${creditUsage.split('\n')[0]}`);
  const reference = stringFlag(args, 'reference');
  if (!reference) throw new UsageError('--reference is required: it makes the deposit idempotent');
  let amountMicros: bigint;
  try {
    amountMicros = parseUsd(usd, { field: 'usd' });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  return withNats(config, async (connection) => {
    const client = new CommandClient({ connection, prefix: config.prefix, timeoutMs: CREDIT_TIMEOUT_MS });
    let reply: CreditReply;
    try {
      reply = await client.request<CreditReply>(casinoCommands.credit, {
        agentId,
        amountMicros: amountMicros.toString(),
        reference,
      });
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      note(`ops: credit refused: ${error.code}: ${error.message}`);
      return ExitCode.usage;
    }
    if (booleanFlag(args, 'json')) say(JSON.stringify(reply));
    else
      say(
        `credited $${formatUsd(BigInt(reply.amountMicros))} to ${reply.agentId} (reference ${reply.reference}, transfer ${reply.transferId}); available now $${formatUsd(BigInt(reply.availableMicros))}`,
      );
    return ExitCode.ok;
  });
}
