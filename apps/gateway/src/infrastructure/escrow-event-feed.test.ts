import { DomainError, ErrorCode, escrowCommands, type EventEnvelope } from '@pf/contracts';
import type { ServiceContext } from '@pf/platform';
import type { CommandClient } from '@pf/messaging';
import type { GatewayConfig } from '../config.js';
import { EscrowEventFeed } from './escrow-event-feed.js';

/** A command client that answers `escrow.cmd.get` from a table and counts the requests. */
function escrowService(escrows: Record<string, { creatorId: string; counterpartyId: string }>) {
  const asked: string[] = [];
  const client = {
    async request(subject: string, payload: { escrowId: string }) {
      expect(subject).toBe(escrowCommands.get);
      asked.push(payload.escrowId);
      const escrow = escrows[payload.escrowId];
      if (!escrow) throw new DomainError(ErrorCode.notFound, 'no such escrow');
      return escrow;
    },
  } as unknown as CommandClient;
  return { client, asked };
}

const context = { config: { COMMAND_TIMEOUT_MS: 1_000 } } as unknown as ServiceContext<GatewayConfig>;

function event(type: string, escrowId: string, data: Record<string, unknown> = {}): EventEnvelope {
  return {
    id: `${escrowId}-${type}`,
    type,
    stream: `escrow-${escrowId}`,
    version: 1,
    position: 1,
    occurred_at: '2026-12-05T00:00:00.000Z',
    correlation_id: null,
    causation_id: null,
    schema: 1,
    data: { escrowId, ...data },
  };
}

describe('EscrowEventFeed parties', () => {
  it('given an observed opened event, when a later event of that escrow needs its parties, then the escrow service is not asked', async () => {
    const { client, asked } = escrowService({});
    const feed = new EscrowEventFeed(context, client);

    feed.observe(event('opened', 'e1', { creatorId: 'alice', counterpartyId: 'bob', evaluatorId: 'carol' }));

    await expect(feed.partiesOf('e1')).resolves.toEqual({
      creatorId: 'alice',
      counterpartyId: 'bob',
      evaluatorId: 'carol',
    });
    expect(await feed.isVisibleTo('carol', event('released', 'e1'))).toBe(true);
    expect(await feed.isVisibleTo('mallory', event('released', 'e1'))).toBe(false);
    expect(asked).toEqual([]);
  });

  it('given no opened event seen, when parties are needed twice, then the escrow service is asked once', async () => {
    const { client, asked } = escrowService({ e2: { creatorId: 'alice', counterpartyId: 'bob' } });
    const feed = new EscrowEventFeed(context, client);

    feed.observe(event('funded', 'e2'));
    const [first, second] = await Promise.all([feed.partiesOf('e2'), feed.partiesOf('e2')]);

    expect(first).toEqual({ creatorId: 'alice', counterpartyId: 'bob', evaluatorId: null });
    expect(second).toEqual(first);
    expect(await feed.partiesOf('e2')).toEqual(first);
    expect(asked).toEqual(['e2']);
  });

  it('given an escrow the service does not know, then it has no parties and nobody sees its events', async () => {
    const { client, asked } = escrowService({});
    const feed = new EscrowEventFeed(context, client);

    expect(await feed.partiesOf('e3')).toBeNull();
    expect(await feed.isVisibleTo('alice', event('released', 'e3'))).toBe(false);
    expect(asked).toEqual(['e3']);
  });
});
