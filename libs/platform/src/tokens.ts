/** Injection tokens for what every service gets from the platform. */
export const SERVICE_CONTEXT = Symbol('SERVICE_CONTEXT');
export const DATA_SOURCE = Symbol('DATA_SOURCE');
export const NATS_CONNECTION = Symbol('NATS_CONNECTION');
export const COMMAND_CLIENT = Symbol('COMMAND_CLIENT');
export const LOGGER = Symbol('LOGGER');
export const CONFIG = Symbol('CONFIG');
