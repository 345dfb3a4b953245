export const MARKET_EVENT_STORE = Symbol('MARKET_EVENT_STORE');
export const JOB_REPOSITORY = Symbol('JOB_REPOSITORY');
