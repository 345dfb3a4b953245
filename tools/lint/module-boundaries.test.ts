import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createProjectGraphAsync } from '@nx/devkit';
import { ESLint } from 'eslint';
import { workspaceRoot } from '@pf/testing';

/**
 * A lint rule nobody has seen fail may be switched off by a typo. Each fixture in ./fixtures
 * names the path it is linted as (the fixtures themselves are excluded from the normal lint
 * run) and the rule it must break, or `clean`; this test lints them with the repository's own
 * eslint.config.js and checks exactly that.
 */
interface Fixture {
  file: string;
  lintAs: string;
  expected: string;
  source: string;
}

const fixturesDir = path.join(workspaceRoot(), 'tools', 'lint', 'fixtures');

function readFixtures(): Fixture[] {
  return readdirSync(fixturesDir)
    .filter((file) => file.endsWith('.ts'))
    .sort()
    .map((file) => {
      const source = readFileSync(path.join(fixturesDir, file), 'utf8');
      const lintAs = /^\/\/ lint as: (\S+)$/m.exec(source)?.[1];
      const expected = /^\/\/ expect: (\S+)$/m.exec(source)?.[1];
      if (!lintAs || !expected) throw new Error(`fixture ${file} lacks its "lint as" or "expect" line`);
      return { file, lintAs, expected, source };
    });
}

const fixtures = readFixtures();

describe('module-boundary lint rules', () => {
  let eslint: ESLint;

  beforeAll(async () => {
    // @nx/enforce-module-boundaries reads the cached project graph; without one it skips silently.
    await createProjectGraphAsync({ exitOnError: false });
    eslint = new ESLint({ cwd: workspaceRoot() });
  }, 120_000);

  it('has fixtures for every rule, failing and clean', () => {
    const expectations = new Set(fixtures.map((fixture) => fixture.expected));
    expect([...expectations].sort()).toEqual([
      '@nx/enforce-module-boundaries',
      'clean',
      'no-restricted-imports',
    ]);
  });

  it.each(fixtures.map((fixture) => [fixture.file, fixture] as const))(
    'given %s, when linted as its path, then exactly the expected rule fails',
    async (_file, fixture) => {
      const [result] = await eslint.lintText(fixture.source, {
        filePath: path.join(workspaceRoot(), fixture.lintAs),
        warnIgnored: true,
      });
      const ruleIds = [...new Set(result!.messages.map((message) => message.ruleId ?? message.message))];
      expect(ruleIds).toEqual(fixture.expected === 'clean' ? [] : [fixture.expected]);
    },
    60_000,
  );
});
