import { DomainError } from '@pf/contracts';
import { StreamTokens } from './stream-tokens.js';

const AGENT = 'ag_0123456789ab';
const SECRET = 'a-secret-of-at-least-32-characters-long';

function refusal(work: () => unknown): string {
  try {
    work();
  } catch (error) {
    if (error instanceof DomainError) return error.code;
    throw error;
  }
  return 'accepted';
}

describe('stream tokens', () => {
  let nowMs = 1_800_000_000_000;
  const tokens = new StreamTokens(SECRET, 60_000, () => nowMs);

  it('opens the agent it was issued to until it expires, then never again', () => {
    const { token, expiresAtMs } = tokens.issue(AGENT);
    expect(token).toMatch(/^est_ag_0123456789ab_\d+_[A-Za-z0-9_-]{43}$/);
    expect(token).not.toContain(SECRET);
    expect(tokens.verify(token)).toBe(AGENT);
    nowMs = expiresAtMs - 1;
    expect(tokens.verify(token)).toBe(AGENT);
    nowMs = expiresAtMs;
    expect(refusal(() => tokens.verify(token))).toBe('unauthorized');
  });

  it('refuses a token for another agent, a later expiry, another secret, or anything malformed', () => {
    const { token } = tokens.issue(AGENT);
    // The signature is base64url and may itself hold '_'.
    const [, id, expiry, signature] = /^est_ag_([0-9a-f]{12})_([0-9]+)_(.+)$/.exec(token)!;
    expect(refusal(() => tokens.verify(`est_ag_ffffffffffff_${expiry}_${signature}`))).toBe('unauthorized');
    expect(refusal(() => tokens.verify(`est_ag_${id}_${Number(expiry) + 3600}_${signature}`))).toBe(
      'unauthorized',
    );
    expect(
      refusal(() =>
        new StreamTokens('another-secret-of-at-least-32-chars', 60_000, () => nowMs).verify(token),
      ),
    ).toBe('unauthorized');
    expect(refusal(() => new StreamTokens(undefined, 60_000, () => nowMs).verify(token))).toBe(
      'unauthorized',
    );
    for (const bad of [
      '',
      'est_',
      token.slice(0, -1),
      `${token}x`,
      'sk_live_0123456789abcdef0123456789abcdef0123456789abcdef',
    ])
      expect(refusal(() => tokens.verify(bad))).toBe('unauthorized');
  });
});
