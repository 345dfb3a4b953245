import { parseArgs, UsageError } from './args.js';
import { boundFromFlags, parseDurationMs, parseIsoTime, parsePosition } from './bounds.js';
import { parseReplayOptions } from './replay-options.js';

const spec = {
  into: 'string',
  swap: 'boolean',
  'to-position': 'string',
  'to-time': 'string',
  'batch-size': 'string',
} as const;

describe('parseArgs', () => {
  it('reads positionals, --flag value, --flag=value, booleans and --', () => {
    const args = parseArgs(
      ['casino', '--into', 'past', '--swap', '--to-time=2025-01-01T00:00Z', '--', '--x'],
      spec,
    );
    expect(args.positionals).toEqual(['casino', '--x']);
    expect(Object.fromEntries(args.flags)).toEqual({
      into: 'past',
      swap: true,
      'to-time': '2025-01-01T00:00Z',
    });
  });

  it.each([
    [['--nope'], /unknown option --nope/],
    [['--into'], /needs a value/],
    [['--into', '--swap'], /needs a value/],
    [['--into', 'a', '--into', 'b'], /given twice/],
    [['--swap=yes'], /takes no value/],
  ])('refuses %j', (argv, message) => {
    expect(() => parseArgs(argv, spec)).toThrow(message);
  });
});

describe('bounds', () => {
  it('parses positions, times with a zone and durations strictly', () => {
    expect(parsePosition('0', 'p')).toBe(0);
    expect(parsePosition('1234', 'p')).toBe(1234);
    for (const bad of ['-1', '01', '1.5', '1e3', ' 1', '99999999999999999'])
      expect(() => parsePosition(bad, 'p')).toThrow(UsageError);
    expect(parseIsoTime('2025-01-31T12:00:00.250+02:00', 't').toISOString()).toBe('2025-01-31T10:00:00.250Z');
    for (const bad of ['2025-01-31', '2025-01-31T12:00', '2025-02-30T00:00Z', '2025-01-31T24:00Z', 'now'])
      expect(() => parseIsoTime(bad, 't')).toThrow(UsageError);
    expect(parseDurationMs('10m', 'd')).toBe(600_000);
    expect(parseDurationMs('500ms', 'd')).toBe(500);
    for (const bad of ['10', '0s', '-1m', '1y', '400d'])
      expect(() => parseDurationMs(bad, 'd')).toThrow(UsageError);
  });

  it('takes one bound at most', () => {
    expect(boundFromFlags(undefined, undefined)).toEqual({ kind: 'head' });
    expect(boundFromFlags('7', undefined)).toEqual({ kind: 'position', position: 7 });
    expect(() => boundFromFlags('7', '2025-01-01T00:00Z')).toThrow(/not both/);
  });

  it('checks replay options before anything runs', () => {
    expect(parseReplayOptions(parseArgs(['--into', 'noon', '--to-position', '5'], spec))).toEqual({
      bound: { kind: 'position', position: 5 },
      suffix: '_noon',
      swap: false,
      batchSize: undefined,
    });
    for (const argv of [
      ['--into', 'Live'],
      ['--into', 'old'],
      ['--into', 'a-b'],
      ['--swap', '--to-position', '1'],
      ['--batch-size', '0'],
      ['--batch-size', '10001'],
    ]) {
      expect(() => parseReplayOptions(parseArgs(argv, spec))).toThrow(UsageError);
    }
  });
});
