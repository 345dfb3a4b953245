import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { eventStreams, eventSubject, type EventEnvelope } from '@pf/contracts';
import { SERVICE_CONTEXT, type ServiceContext } from '@pf/platform';
import type { GatewayConfig } from '../config.js';
import {
  escrowReceiptFacts,
  faucetReceiptFacts,
  isSettlement,
  paymentReceiptFacts,
} from '../domain/receipt.js';
import { EscrowEventFeed } from './escrow-event-feed.js';
import { gatewayConsumerSettings, runGatewayConsumer } from './gateway-consumers.js';
import { ReceiptSigner } from './receipt-signer.js';
import { ReceiptStore } from './receipt-store.js';

/**
 * Turns every settling event (escrow release, refund, split; faucet claim; direct payment) into a signed receipt
 * (ADR 0020), through one durable consumer per stream. Starting from the first event, so a
 * deployment that adds receipts issues them for past settlements too. Each kind is one consumer
 * and one `…ReceiptFacts` mapper.
 */
@Injectable()
export class ReceiptIssuer implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly stops: Array<() => Promise<void>> = [];

  constructor(
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext<GatewayConfig>,
    private readonly store: ReceiptStore,
    private readonly signer: ReceiptSigner,
    private readonly escrows: EscrowEventFeed,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.store.registerKey(this.signer);
    this.context.logger.info({ keyId: this.signer.keyId, source: this.signer.source }, 'receipt signing key');
    // As many unacknowledged as in flight: the consumer then keeps one subscription open
    // instead of subscribing anew for every pull (libs/messaging, `holdsOneSubscription`).
    const settings = { ...gatewayConsumerSettings, maxInFlight: 4, maxAckPending: 4 };
    this.stops.push(
      runGatewayConsumer(this.context, {
        stream: eventStreams.escrow.name,
        subjects: eventStreams.escrow.subjects,
        durable: 'gateway-receipts-escrow',
        handler: (envelope) => this.onEscrowEvent(envelope),
        settings,
      }),
      runGatewayConsumer(this.context, {
        stream: eventStreams.faucet.name,
        subjects: eventStreams.faucet.subjects,
        durable: 'gateway-receipts-faucet',
        handler: (envelope) => this.onFaucetEvent(envelope),
        settings,
      }),
      // Direct payments: only transfers are delivered (the ledger's holds and posts are not).
      runGatewayConsumer(this.context, {
        stream: eventStreams.casino.name,
        subjects: eventSubject('casino', 'funds_transferred'),
        durable: 'gateway-receipts-casino',
        handler: (envelope) => this.onCasinoEvent(envelope),
        settings,
      }),
    );
  }

  async onModuleDestroy(): Promise<void> {
    await Promise.all(this.stops.map((stop) => stop()));
  }

  private async onEscrowEvent(envelope: EventEnvelope): Promise<void> {
    // The `opened` event names the parties: the settlement then needs no lookup.
    this.escrows.observe(envelope);
    if (!isSettlement('escrow', envelope)) return;
    const escrowId = String(envelope.data.escrowId);
    const parties = await this.escrows.partiesOf(escrowId);
    // A settled escrow the escrow service does not know is a broken log: retry, then dead-letter.
    if (!parties) throw new Error(`settled escrow ${escrowId} has no parties`);
    const facts = escrowReceiptFacts(envelope, parties);
    await this.store.issue(facts, [parties.creatorId, parties.counterpartyId], this.signer);
  }

  private async onCasinoEvent(envelope: EventEnvelope): Promise<void> {
    if (!isSettlement('casino', envelope)) return;
    const facts = paymentReceiptFacts(envelope);
    await this.store.issue(facts, [facts.payer_id, facts.payee_id], this.signer);
  }

  private async onFaucetEvent(envelope: EventEnvelope): Promise<void> {
    if (!isSettlement('faucet', envelope)) return;
    const facts = faucetReceiptFacts(envelope);
    await this.store.issue(facts, [facts.payee_id], this.signer);
  }
}
