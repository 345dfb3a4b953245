export * from './subjects.js';
export * from './errors.js';
export * from './commands.js';
export * from './events.js';
export * from './casino.js';
export * from './escrow.js';
export * from './faucet.js';
export * from './validation.js';
