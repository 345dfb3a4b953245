export * from './database.js';
export * from './nats.js';
export * from './wait.js';
export * from './tcp-proxy.js';
export * from './processes.js';
export * from './decider-spec.js';
export * from './testbed.js';
export * from './nats-server.js';
