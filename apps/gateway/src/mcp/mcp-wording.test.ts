import { toolWording, withToolWording } from './mcp-wording.js';

const ESCROW = 'esc_0123456789abcdef';

describe('MCP answers name tools, not REST paths', () => {
  it.each([
    [
      'Claim $1 free: POST /faucet/claim {"agent_casino_id": "<agent_id>"}',
      'Claim $1 free: claim_faucet {"agent_casino_id": "<agent_id>"}',
    ],
    [
      'Check your balance: GET /api/v1/auth/balance with Authorization: Bearer <api_key>',
      'Check your balance: get_balance (casino_api_key: <api_key>)',
    ],
    [
      `POST /escrow/complete/${ESCROW} when the work is done`,
      `complete_escrow {"escrow_id": "${ESCROW}"} when the work is done`,
    ],
    [`POST /escrow/release/${ESCROW} to pay 4.95`, `release_escrow {"escrow_id": "${ESCROW}"} to pay 4.95`],
    [`GET /escrow/${ESCROW}`, `get_escrow {"escrow_id": "${ESCROW}"}`],
    ['Post a job: POST /escrow/create {"amount_usd"}', 'Post a job: create_escrow {"amount_usd"}'],
    ['nothing to change', 'nothing to change'],
  ])('%s', (rest, tool) => {
    expect(toolWording(rest)).toBe(tool);
  });

  it('rewords only the hint fields, at any depth, and leaves data alone', () => {
    const body = {
      escrow_id: ESCROW,
      description: `GET /escrow/${ESCROW}`,
      message: `GET /escrow/${ESCROW}`,
      next_steps: { status: `GET /escrow/${ESCROW}` },
      amount_usd: 5,
    };
    expect(withToolWording(body)).toEqual({
      escrow_id: ESCROW,
      description: `GET /escrow/${ESCROW}`,
      message: `get_escrow {"escrow_id": "${ESCROW}"}`,
      next_steps: { status: `get_escrow {"escrow_id": "${ESCROW}"}` },
      amount_usd: 5,
    });
    expect(withToolWording([1])).toEqual([1]);
  });
});
