export * from './errors.js';
export * from './usd.js';
export * from './split.js';
