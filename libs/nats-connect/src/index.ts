export * from './nats-security.js';
