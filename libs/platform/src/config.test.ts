import { z } from 'zod';
import { baseConfigSchema, ConfigError, env, loadConfig } from './config.js';

const schema = baseConfigSchema.extend({ PORT: env.port(3001), FEATURE: env.bool(false) });

function errorFor(values: Record<string, string>): ConfigError {
  try {
    loadConfig(schema, values);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('applies defaults when nothing is set', () => {
    const config = loadConfig(schema, {});
    expect(config.PORT).toBe(3001);
    expect(config.NATS_URL).toBe('nats://127.0.0.1:4222');
    expect(config.NATS_PREFIX).toBe('');
    expect(config.FEATURE).toBe(false);
  });

  it('treats an empty string as unset', () => {
    expect(loadConfig(schema, { PORT: '' }).PORT).toBe(3001);
  });

  it('coerces and validates values', () => {
    const config = loadConfig(schema, {
      PORT: '4000',
      FEATURE: 'true',
      DB_POOL_MAX: '8',
      NATS_PREFIX: 't_ab-1',
    });
    expect(config).toMatchObject({ PORT: 4000, FEATURE: true, DB_POOL_MAX: 8, NATS_PREFIX: 't_ab-1' });
  });

  it.each([
    ['PORT', 'abc', /PORT must be a port number \(got "abc"\)/],
    ['PORT', '70000', /PORT must be a port between 1 and 65535/],
    ['PORT', '3000.5', /PORT must be a whole port number/],
    ['DATABASE_URL', 'mysql://localhost/db', /DATABASE_URL must be a URL starting with postgres:\/\//],
    ['NATS_URL', 'nats://ok:4222,http://bad', /NATS_URL must be a comma-separated list/],
    ['NATS_PREFIX', 'has.dot', /NATS_PREFIX may contain only letters/],
    ['LOG_LEVEL', 'loud', /LOG_LEVEL must be one of/],
    ['FEATURE', 'maybe', /FEATURE must be true or false/],
    ['DB_POOL_MAX', '0', /DB_POOL_MAX must be at least 1/],
  ])('rejects %s=%s naming the variable', (variable, value, message) => {
    const error = errorFor({ [variable]: value });
    expect(error.variable).toBe(variable);
    expect(error.message).toMatch(message);
  });

  it('names a required variable that is missing', () => {
    const required = z.object({ ADMIN_API_KEY: z.string().min(16, 'must be at least 16 characters') });
    expect(() => loadConfig(required, {})).toThrow(/ADMIN_API_KEY .*\(it is not set\)/);
  });
});
