export * from './codec.js';
export * from './command-server.js';
export * from './command-client.js';
