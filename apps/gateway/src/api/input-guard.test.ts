import { canonicalJson } from './idempotency.hook.js';
import { MAX_JSON_DEPTH, unsafeInputProblem } from './input-guard.js';

const nestedArray = (depth: number): unknown => JSON.parse(`${'['.repeat(depth)}${']'.repeat(depth)}`);

describe('unsafeInputProblem (issue #18 point 3)', () => {
  it(`accepts JSON ${MAX_JSON_DEPTH} levels deep and refuses one level more`, () => {
    expect(unsafeInputProblem(nestedArray(MAX_JSON_DEPTH))).toBeUndefined();
    expect(unsafeInputProblem(nestedArray(MAX_JSON_DEPTH + 1))).toMatch(/nested more than 32 levels/);
  });

  it('walks a 20,000-deep array without overflowing the stack (canonicalJson would)', () => {
    const deep = nestedArray(20_000);
    expect(unsafeInputProblem(deep)).toMatch(/nested/);
    expect(() => canonicalJson(deep)).toThrow(RangeError);
  });

  it.each([
    ['a NUL in a value', { agent_name: 'a\u0000b' }],
    ['a NUL in a key', { ['k\u0000']: 1 }],
    ['a lone high surrogate', ['x\ud83d']],
    ['a lone low surrogate', { a: { b: '\ude00y' } }],
    ['a reversed pair', 'a\ude00\ud83d'],
  ])('refuses %s', (_label, value) => {
    expect(unsafeInputProblem(value)).toMatch(/NUL characters or unpaired UTF-16 surrogates/);
  });

  it('accepts ordinary text, emoji (a surrogate pair) and non-strings', () => {
    expect(
      unsafeInputProblem({
        description: 'Label 100 images 🖼️ — ünïcode',
        amount_usd: 4.95,
        ok: true,
        none: null,
        list: [1, 'two'],
      }),
    ).toBeUndefined();
  });
});
