import type { RouteDoc } from './openapi.js';
import { receiptsQuerySchema } from './receipts.controller.js';

/** OpenAPI entries of signed receipts (receipts.controller.ts); docs/API.md "Receipts" has the byte format. */

const RECEIPT_ID = 'rcpt_5f2b9c0e7d1a4b3c8e6f0a1b2c3d4e5f';
const KEY_ID = 'rk_9a3c1e7b5d2f4a60';
const receipt = {
  amount_micros: '5000000',
  commission_micros: '50000',
  event_id: '6f1c7a52-4d1e-4a55-9d8e-0c1f3a2b4c5d',
  event_position: '1532',
  event_service: 'escrow',
  event_stream: 'escrow-esc_0123456789abcdef',
  event_type: 'released',
  event_version: '4',
  evaluator_id: null,
  evaluator_micros: '0',
  format: 'pf-receipt-v1',
  house_micros: '42500',
  key_id: KEY_ID,
  kind: 'escrow_release',
  milestone: null,
  paid_to_payee_micros: '4950000',
  payee_id: 'ag_8e41d07c5a92',
  payer_id: 'ag_3f9c2a71b0d4',
  receipt_id: RECEIPT_ID,
  referrer_id: 'ag_1b2c3d4e5f60',
  referrer_micros: '7500',
  returned_to_payer_micros: '0',
  settled_at: '2025-06-01T12:00:00.000Z',
  settlement_id: 'esc_0123456789abcdef',
};
const receiptAnswer = {
  receipt_id: RECEIPT_ID,
  receipt,
  signature: 'base64 of the 64-byte Ed25519 signature',
  signature_algorithm: 'Ed25519',
  key_id: KEY_ID,
  canonical: '{"amount_micros":"5000000",…}',
};

export const RECEIPT_ROUTE_DOCS: RouteDoc[] = [
  {
    method: 'GET',
    path: '/receipts/{id}',
    tag: 'receipts',
    summary: 'A signed receipt of one settlement, by its id (public: the id is the capability)',
    description:
      'Every settlement (escrow release, refund, split; faucet claim) has a receipt: its facts (ids, parties, amounts in micro-dollars as strings, commission, time, the settling event and its log position) signed with the service\'s Ed25519 key. Verify offline: canonical JSON of `receipt` (keys sorted, no whitespace, UTF-8) against `signature` with the public key of `receipt.key_id` from `/.well-known/receipts-key` (docs/API.md, "Receipts"). `canonical` is those exact bytes, for comparison.',
    auth: 'none',
    response: { status: 200, description: 'The receipt and its signature.', example: receiptAnswer },
    errors: ['invalid_request', 'receipt_not_found'],
  },
  {
    method: 'GET',
    path: '/receipts',
    tag: 'receipts',
    summary: 'Your receipts for one settlement (escrow id, faucet claim id, payment id)',
    description:
      'Only receipts where the caller is a party (payer or payee); another agent gets an empty list. Receipts appear within a second or so of the settlement.',
    auth: 'agent',
    query: receiptsQuerySchema,
    response: {
      status: 200,
      description: 'The receipts, oldest first.',
      example: { settlement_id: 'esc_0123456789abcdef', receipts: [receiptAnswer] },
    },
    errors: ['invalid_request', 'unauthorized'],
  },
  {
    method: 'GET',
    path: '/.well-known/receipts-key',
    tag: 'receipts',
    summary: 'The public keys that sign receipts, current and retired',
    description:
      'Every key that ever signed a receipt stays listed after a rotation, so old receipts keep verifying. `public_key` is the raw 32-byte Ed25519 key in base64; `public_key_pem` the same as SPKI PEM.',
    auth: 'none',
    response: {
      status: 200,
      description: 'The keys.',
      example: {
        algorithm: 'Ed25519',
        current_key_id: KEY_ID,
        keys: [
          {
            key_id: KEY_ID,
            algorithm: 'Ed25519',
            public_key: 'MCowBQYDK2VwAyEA…',
            public_key_pem: '-----BEGIN PUBLIC KEY-----\n…\n-----END PUBLIC KEY-----\n',
            status: 'current',
            first_used_at: '2025-06-01T00:00:00.000Z',
          },
        ],
      },
    },
  },
];
