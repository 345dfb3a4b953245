import { RECEIPT_FORMAT, type EventEnvelope, type ReceiptKind } from '@pf/contracts';

/**
 * The facts a receipt states about one settlement, decided from the settling event alone (plus
 * the escrow's parties, which the escrow's `opened` event carries, not its settling one). Pure:
 * no keys, no I/O. Every value is a string (amounts in micro-dollars, positions as decimal
 * strings) or null, so the signed bytes never depend on how a language prints numbers.
 */
export interface ReceiptFacts {
  format: string;
  kind: ReceiptKind;
  /** The escrow id, the faucet claim id, or the payment id. */
  settlement_id: string;
  /** Who paid: the escrow's creator, `faucet_treasury`, the paying agent. */
  payer_id: string;
  /** Who the settlement was for: the counterparty, the claiming agent, the payee. */
  payee_id: string;
  amount_micros: string;
  paid_to_payee_micros: string;
  returned_to_payer_micros: string;
  commission_micros: string;
  house_micros: string;
  referrer_micros: string;
  referrer_id: string | null;
  /** An escrow's evaluator and its fee (taken out of the payee's part); null and "0" otherwise. */
  evaluator_id: string | null;
  evaluator_micros: string;
  /** A milestone escrow's milestone (0-based, as a string) this settlement paid; null otherwise. */
  milestone: string | null;
  /** When the settlement was recorded (the event's time). */
  settled_at: string;
  /** The event that settled it, and its place in the log of the service that recorded it. */
  event_id: string;
  event_type: string;
  event_service: string;
  event_stream: string;
  event_version: string;
  event_position: string;
}

export interface EscrowParties {
  creatorId: string;
  counterpartyId: string;
}

/** Services whose settling events become receipts (casino: direct payments). */
export type ReceiptSource = 'escrow' | 'faucet' | 'casino';

/**
 * Escrow events that settle money: everything else (opened, funded, completed, …) has no receipt.
 * A milestone escrow settles per milestone (`milestone_released`) and refunds the rest at once
 * (`milestones_refunded`); its closing `milestones_settled` only sums those up, so it has none.
 */
export const SETTLING_ESCROW_EVENT_TYPES: ReadonlySet<string> = new Set([
  'released',
  'refunded',
  'declined',
  'cancelled',
  'resolved',
  'evaluator_refunded',
  'mutually_cancelled',
  'milestone_released',
  'milestones_refunded',
]);

interface Payout {
  counterpartyMicros: string;
  commissionMicros: string;
  houseMicros: string;
  referrerMicros: string;
  referrerId: string | null;
  creatorMicros: string;
  evaluatorMicros?: string;
  evaluatorId?: string;
}

/** Whether this event settles money and so gets a receipt (escrow needs its parties looked up). */
export function isSettlement(source: ReceiptSource, envelope: Pick<EventEnvelope, 'type' | 'data'>): boolean {
  switch (source) {
    case 'escrow':
      return SETTLING_ESCROW_EVENT_TYPES.has(envelope.type);
    case 'faucet':
      return envelope.type === 'claimed';
    case 'casino':
      // A direct payment (`POST /api/v1/pay`, ADR 0019) is one transfer with reason "payment".
      return envelope.type === 'funds_transferred' && envelope.data.reason === 'payment';
  }
}

/** The receipt's facts for an escrow settlement. Throws on an event that breaks its contract. */
export function escrowReceiptFacts(envelope: EventEnvelope, parties: EscrowParties): ReceiptFacts {
  const data = envelope.data as {
    escrowId?: unknown;
    amountMicros?: unknown;
    payout?: unknown;
    milestone?: unknown;
  };
  const amountMicros = micros(data.amountMicros, 'amountMicros');
  const payout = data.payout as Payout | null | undefined;
  const base = {
    settlement_id: text(data.escrowId, 'escrowId'),
    payer_id: parties.creatorId,
    payee_id: parties.counterpartyId,
    amount_micros: amountMicros,
    milestone: typeof data.milestone === 'number' ? String(data.milestone) : null,
    ...eventFacts('escrow', envelope),
  };
  if (payout) {
    const facts: ReceiptFacts = {
      ...base,
      kind: payout.creatorMicros !== '0' ? 'escrow_split' : 'escrow_release',
      paid_to_payee_micros: micros(payout.counterpartyMicros, 'counterpartyMicros'),
      returned_to_payer_micros: micros(payout.creatorMicros, 'creatorMicros'),
      commission_micros: micros(payout.commissionMicros, 'commissionMicros'),
      house_micros: micros(payout.houseMicros, 'houseMicros'),
      referrer_micros: micros(payout.referrerMicros, 'referrerMicros'),
      referrer_id: typeof payout.referrerId === 'string' ? payout.referrerId : null,
      evaluator_id: typeof payout.evaluatorId === 'string' ? payout.evaluatorId : null,
      evaluator_micros:
        payout.evaluatorMicros === undefined ? '0' : micros(payout.evaluatorMicros, 'evaluatorMicros'),
    };
    assertBalanced(facts);
    return facts;
  }
  // Every refund (deadline, decline, cancel, evaluator, mutual, a resolution to refund, the
  // open milestones): everything back, no commission, no fee.
  return {
    ...base,
    kind: 'escrow_refund',
    paid_to_payee_micros: '0',
    returned_to_payer_micros: amountMicros,
    commission_micros: '0',
    house_micros: '0',
    referrer_micros: '0',
    referrer_id: null,
    evaluator_id: null,
    evaluator_micros: '0',
  };
}

/** The receipt's facts for a paid faucet claim: the treasury paid the agent, no commission. */
export function faucetReceiptFacts(envelope: EventEnvelope): ReceiptFacts {
  const data = envelope.data as { claimId?: unknown; agentId?: unknown; amountMicros?: unknown };
  const amountMicros = micros(data.amountMicros, 'amountMicros');
  return {
    kind: 'faucet_claim',
    settlement_id: text(data.claimId, 'claimId'),
    payer_id: 'faucet_treasury',
    payee_id: text(data.agentId, 'agentId'),
    amount_micros: amountMicros,
    paid_to_payee_micros: amountMicros,
    returned_to_payer_micros: '0',
    commission_micros: '0',
    house_micros: '0',
    referrer_micros: '0',
    referrer_id: null,
    evaluator_id: null,
    evaluator_micros: '0',
    milestone: null,
    ...eventFacts('faucet', envelope),
  };
}

/** The receipt's facts for a direct payment: one transfer from payer to payee, no commission. */
export function paymentReceiptFacts(envelope: EventEnvelope): ReceiptFacts {
  const data = envelope.data as {
    transferId?: unknown;
    from?: unknown;
    to?: unknown;
    amountMicros?: unknown;
  };
  const amountMicros = micros(data.amountMicros, 'amountMicros');
  return {
    kind: 'payment',
    settlement_id: text(data.transferId, 'transferId'),
    payer_id: text(data.from, 'from'),
    payee_id: text(data.to, 'to'),
    amount_micros: amountMicros,
    paid_to_payee_micros: amountMicros,
    returned_to_payer_micros: '0',
    commission_micros: '0',
    house_micros: '0',
    referrer_micros: '0',
    referrer_id: null,
    evaluator_id: null,
    evaluator_micros: '0',
    milestone: null,
    ...eventFacts('casino', envelope),
  };
}

function eventFacts(service: string, envelope: EventEnvelope) {
  return {
    format: RECEIPT_FORMAT,
    settled_at: envelope.occurred_at,
    event_id: envelope.id,
    event_type: envelope.type,
    event_service: service,
    event_stream: envelope.stream,
    event_version: String(envelope.version),
    event_position: String(envelope.position),
  };
}

/** The parts of a payout add up to the amount, and the commission to its two shares. */
function assertBalanced(facts: ReceiptFacts): void {
  const parts =
    BigInt(facts.paid_to_payee_micros) +
    BigInt(facts.commission_micros) +
    BigInt(facts.returned_to_payer_micros) +
    BigInt(facts.evaluator_micros);
  if (parts !== BigInt(facts.amount_micros))
    throw new Error(`receipt ${facts.event_id}: payout parts ${parts} != amount ${facts.amount_micros}`);
  if (BigInt(facts.house_micros) + BigInt(facts.referrer_micros) !== BigInt(facts.commission_micros))
    throw new Error(`receipt ${facts.event_id}: commission shares do not add up`);
}

function micros(value: unknown, name: string): string {
  if (typeof value !== 'string' || !/^(0|[1-9][0-9]*)$/.test(value))
    throw new Error(`settling event without a micro-dollar string ${name}`);
  return value;
}

function text(value: unknown, name: string): string {
  if (typeof value !== 'string' || value === '') throw new Error(`settling event without ${name}`);
  return value;
}

/**
 * The bytes a receipt's signature covers (docs/API.md, "Receipts"): JSON with object keys sorted
 * by code point at every depth, no whitespace, strings escaped as JSON.stringify does, UTF-8.
 * Only strings, null and objects are allowed, so no number formatting is involved.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object' && !Array.isArray(value)) {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    return `{${entries.map(([key, inner]) => `${JSON.stringify(key)}:${canonicalJson(inner)}`).join(',')}}`;
  }
  throw new Error(`canonical receipt JSON holds only strings, null and objects (got ${typeof value})`);
}
