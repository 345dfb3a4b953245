import nx from '@nx/eslint-plugin';
import prettier from 'eslint-config-prettier';

/**
 * Code that may use the test harness (@pf/testing): tests, their shared setup, the harness
 * itself, and the bench and chaos tools that drive a whole system the way tests do. Anything
 * that ships (apps, libs, tools/start, tools/demo) may not.
 */
const TEST_CODE = [
  '**/*.test.ts',
  '**/test-harness.ts',
  'apps/ops/src/testing.ts',
  'libs/testing/**',
  'tools/bench/**',
  'tools/chaos/**',
];

/**
 * Module boundaries are the architecture: apps never import apps, a service scope never
 * imports another service's code, and everything shared goes through libs with a public index.
 * Each rule is proven by tools/lint/module-boundaries.test.ts, which lints deliberate
 * violations (tools/lint/fixtures, excluded here) and expects them to fail.
 */
export default [
  { ignores: ['**/dist', '**/node_modules', '**/.data', '**/.nx', '**/coverage', 'tools/lint/fixtures/**'] },
  ...nx.configs['flat/base'],
  ...nx.configs['flat/typescript'],
  {
    files: ['**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: false,
          allow: [],
          depConstraints: [
            {
              sourceTag: 'type:app',
              onlyDependOnLibsWithTags: [
                'type:contracts',
                'type:domain',
                'type:infra',
                'type:transport',
                'type:data',
                'type:testing',
              ],
            },
            {
              sourceTag: 'type:e2e',
              onlyDependOnLibsWithTags: [
                'type:contracts',
                'type:domain',
                'type:testing',
                'type:transport',
                'type:infra',
              ],
            },
            { sourceTag: 'type:contracts', onlyDependOnLibsWithTags: ['type:contracts', 'type:domain'] },
            { sourceTag: 'type:domain', onlyDependOnLibsWithTags: ['type:domain'] },
            { sourceTag: 'type:transport', onlyDependOnLibsWithTags: ['type:contracts', 'type:domain'] },
            {
              sourceTag: 'type:data',
              onlyDependOnLibsWithTags: ['type:contracts', 'type:domain', 'type:transport', 'type:testing'],
            },
            {
              sourceTag: 'type:infra',
              onlyDependOnLibsWithTags: [
                'type:contracts',
                'type:domain',
                'type:transport',
                'type:data',
                'type:testing',
              ],
            },
            {
              sourceTag: 'type:testing',
              onlyDependOnLibsWithTags: [
                'type:contracts',
                'type:domain',
                'type:transport',
                'type:data',
                'type:infra',
              ],
            },
            {
              sourceTag: 'type:tools',
              onlyDependOnLibsWithTags: [
                'type:contracts',
                'type:domain',
                'type:transport',
                'type:data',
                'type:infra',
                'type:testing',
              ],
            },
            { sourceTag: 'scope:gateway', onlyDependOnLibsWithTags: ['scope:gateway', 'scope:shared'] },
            { sourceTag: 'scope:casino', onlyDependOnLibsWithTags: ['scope:casino', 'scope:shared'] },
            { sourceTag: 'scope:faucet', onlyDependOnLibsWithTags: ['scope:faucet', 'scope:shared'] },
            { sourceTag: 'scope:escrow', onlyDependOnLibsWithTags: ['scope:escrow', 'scope:shared'] },
            { sourceTag: 'scope:market', onlyDependOnLibsWithTags: ['scope:market', 'scope:shared'] },
            // The ops CLI drives every service from outside: shared libs only, never a service's code.
            { sourceTag: 'scope:ops', onlyDependOnLibsWithTags: ['scope:shared'] },
            // Starting, benchmarking and demonstrating the system goes through its public surface
            // and shared libs, never a service's code (that would test what nobody runs).
            { sourceTag: 'scope:tools', onlyDependOnLibsWithTags: ['scope:shared'] },
            { sourceTag: 'scope:shared', onlyDependOnLibsWithTags: ['scope:shared'] },
          ],
        },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    files: ['**/*.ts'],
    ignores: TEST_CODE,
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [{ name: '@pf/testing', message: '@pf/testing is for test code only (see TEST_CODE).' }] },
      ],
    },
  },
  {
    // The domain is pure decisions: it may import only the contracts, money arithmetic and its
    // own folder. No NestJS, TypeORM, pg, node built-ins or infrastructure, so a decider can
    // never reach for a clock, a database or a socket.
    files: ['apps/*/src/domain/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!(@pf/contracts|@pf/money|\\./(?!.*\\.\\./).*)$)',
              message: 'domain code may import only @pf/contracts, @pf/money and ./ files of its own folder.',
            },
          ],
        },
      ],
    },
  },
  prettier,
];
