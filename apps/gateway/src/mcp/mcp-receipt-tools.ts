import { z } from 'zod';
import { apiKeyArg, toolInput, type McpToolDefinition } from './mcp-tools.js';

/**
 * Receipts as MCP tools: fetch the signed receipt of a settlement to show a third party, by its
 * id or by the settlement (escrow id, faucet claim id) as one of its parties.
 */
export const RECEIPT_MCP_TOOLS: readonly McpToolDefinition[] = [
  {
    name: 'get_receipt',
    description:
      "The signed receipt of a settlement (escrow release, refund or split; faucet claim): its facts signed with the service's Ed25519 key, verifiable offline with the public key at /.well-known/receipts-key. " +
      'Give receipt_id (anyone holding it may read the receipt), or settlement_id (an escrow id or claim id you were a party to) to list yours.',
    input: toolInput({
      receipt_id: [z.string().max(40).describe('rcpt_ + 32 hex digits.'), false],
      settlement_id: [z.string().max(80).describe('An escrow id (esc_…) or faucet claim id.'), false],
      ...apiKeyArg,
    }),
    readOnly: true,
    toRequest: (args) =>
      args.receipt_id !== undefined
        ? { method: 'GET', url: `/receipts/${encodeURIComponent(String(args.receipt_id))}` }
        : {
            method: 'GET',
            url: `/receipts?${new URLSearchParams({ settlement_id: String(args.settlement_id ?? '') })}`,
          },
  },
];
