import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { AGENT_ID_PATTERN, DomainError, ErrorCode } from '@pf/contracts';

/** Marks what the token opens, inside the signature: a token for anything else never verifies. */
const PURPOSE = 'escrow-events-stream';
const TOKEN_PATTERN = /^est_(ag_[0-9a-f]{12})_([0-9]{10,12})_([A-Za-z0-9_-]{43})$/;

export interface StreamToken {
  token: string;
  expiresAtMs: number;
}

/**
 * Short-lived tokens that open one agent's event stream, for browsers' `EventSource`, which
 * cannot send an Authorization header: the API key must not travel in a URL (logs, history,
 * Referer), a token that expires in a minute and opens nothing else may.
 *
 * A token is `est_<agent id>_<expiry, unix seconds>_<HMAC-SHA256 of both and the purpose>`:
 * nothing is stored, so nothing can leak from storage and any replica holding the same secret
 * accepts it. Without EVENT_STREAM_TOKEN_SECRET each gateway makes a random secret at start,
 * which is right for one gateway (tokens die with it, as they soon would anyway).
 */
export class StreamTokens {
  private readonly secret: Buffer;

  constructor(
    secret: string | undefined,
    private readonly ttlMs: number,
    private readonly nowMs: () => number = Date.now,
  ) {
    this.secret = secret ? Buffer.from(secret, 'utf8') : randomBytes(32);
  }

  issue(agentId: string): StreamToken {
    const expiresAtS = Math.ceil((this.nowMs() + this.ttlMs) / 1000);
    return {
      token: `est_${agentId}_${expiresAtS}_${this.sign(agentId, expiresAtS)}`,
      expiresAtMs: expiresAtS * 1000,
    };
  }

  /** The agent the token was issued to; 401 when it is malformed, forged or expired. */
  verify(token: string): string {
    const match = TOKEN_PATTERN.exec(token);
    if (!match || !AGENT_ID_PATTERN.test(match[1]!)) throw unauthorized('malformed');
    const [, agentId, expiresAt, signature] = match;
    const expected = Buffer.from(this.sign(agentId!, Number(expiresAt)), 'utf8');
    const given = Buffer.from(signature!, 'utf8');
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      throw unauthorized('not valid');
    if (Number(expiresAt) * 1000 <= this.nowMs()) throw unauthorized('expired');
    return agentId!;
  }

  private sign(agentId: string, expiresAtS: number): string {
    return createHmac('sha256', this.secret)
      .update(`${PURPOSE}\n${agentId}\n${expiresAtS}`)
      .digest('base64url');
  }
}

function unauthorized(why: string): DomainError {
  return new DomainError(
    ErrorCode.unauthorized,
    `stream token ${why}: get a new one with POST /escrow/events/stream-token`,
  );
}
