// Shared Jest setup for every project: native ESM (NestJS 12 ships ESM only), SWC for
// TypeScript with decorator metadata, and the @pf/* aliases resolved to library sources.
const fs = require('node:fs');
const path = require('node:path');

const workspaceRoot = __dirname;
const swcrc = JSON.parse(fs.readFileSync(path.join(workspaceRoot, '.swcrc'), 'utf8'));
delete swcrc.$schema;

module.exports = function projectJestConfig(projectDir, overrides = {}) {
  return {
    displayName: path.relative(workspaceRoot, projectDir),
    rootDir: projectDir,
    testEnvironment: 'node',
    testMatch: ['<rootDir>/**/*.test.ts'],
    extensionsToTreatAsEsm: ['.ts'],
    moduleNameMapper: {
      '^@pf/([a-z-]+)$': `${workspaceRoot}/libs/$1/src/index.ts`,
      '^(\\.{1,2}/.*)\\.js$': '$1',
    },
    transform: { '^.+\\.ts$': ['@swc/jest', { ...swcrc, sourceMaps: 'inline', swcrc: false }] },
    testTimeout: 30_000,
    ...overrides,
  };
};
