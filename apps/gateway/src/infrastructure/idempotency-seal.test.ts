import { randomUUID } from 'node:crypto';
import { isGuessable } from '../api/idempotency.hook.js';
import { IdempotencySeal, idempotencyScope } from './idempotency-seal.js';

const apiKey = `sk_live_${'ab'.repeat(24)}`;
const response = { status: 201, body: JSON.stringify({ api_key: apiKey }) };

describe('IdempotencySeal (ADR 0009)', () => {
  const key = randomUUID();
  const anonymous = idempotencyScope(undefined);

  it('seals a response so that neither the key nor the body is readable, and opens it with the same key', () => {
    const seal = new IdempotencySeal(anonymous, key);
    const sealed = seal.seal(response);
    expect(sealed.toString('latin1')).not.toContain('sk_live_');
    expect(sealed.toString('latin1')).not.toContain(key);
    expect(seal.recordId.toString('hex')).not.toContain(Buffer.from(key).toString('hex'));
    expect(new IdempotencySeal(anonymous, key).open(sealed)).toEqual(response);
  });

  it('gives another key or another scope another record and no way to open the response', () => {
    const sealed = new IdempotencySeal(anonymous, key).seal(response);
    const otherKey = new IdempotencySeal(anonymous, randomUUID());
    const otherScope = new IdempotencySeal(idempotencyScope(apiKey), key);
    expect(otherKey.recordId.equals(new IdempotencySeal(anonymous, key).recordId)).toBe(false);
    expect(otherScope.recordId.equals(new IdempotencySeal(anonymous, key).recordId)).toBe(false);
    expect(() => otherKey.open(sealed)).toThrow();
    expect(() => otherScope.open(sealed)).toThrow();
  });

  it('refuses tampered bytes', () => {
    const seal = new IdempotencySeal(anonymous, key);
    const sealed = seal.seal(response);
    sealed[sealed.length - 1]! ^= 1;
    expect(() => seal.open(sealed)).toThrow();
  });

  it('keys the request digest: the same request under two keys gives two digests', () => {
    const request = 'POST /api/v1/auth/register\n{}';
    expect(
      new IdempotencySeal(anonymous, key)
        .requestDigest(request)
        .equals(new IdempotencySeal(anonymous, key).requestDigest(request)),
    ).toBe(true);
    expect(
      new IdempotencySeal(anonymous, key)
        .requestDigest(request)
        .equals(new IdempotencySeal(anonymous, randomUUID()).requestDigest(request)),
    ).toBe(false);
  });
});

describe('the anonymous Idempotency-Key rule', () => {
  it.each([randomUUID(), randomUUID().replaceAll('-', ''), 'Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0'])(
    'accepts %s',
    (key) => {
      expect(isGuessable(key)).toBe(false);
    },
  );
  it.each(['retry-1', 'x'.repeat(31), 'a'.repeat(255), '1234567'.repeat(6)])('refuses %s', (key) => {
    expect(isGuessable(key)).toBe(true);
  });
});
