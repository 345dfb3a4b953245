import { gatewayConfigSchema } from './config.js';

const KEY_BASE64 = Buffer.alloc(32, 7).toString('base64');

describe('gateway config: the receipt and webhook keys', () => {
  it('given the empty value docker-compose passes for an unset key, then the key is unset', () => {
    const config = gatewayConfigSchema.parse({ RECEIPT_SIGNING_KEY: '', WEBHOOK_SECRETS_KEY: '' });
    expect(config.RECEIPT_SIGNING_KEY).toBeUndefined();
    expect(config.WEBHOOK_SECRETS_KEY).toBeUndefined();
  });

  it('given the base64 of 32 bytes, then it is kept', () => {
    const config = gatewayConfigSchema.parse({
      RECEIPT_SIGNING_KEY: KEY_BASE64,
      WEBHOOK_SECRETS_KEY: KEY_BASE64,
    });
    expect(config.RECEIPT_SIGNING_KEY).toBe(KEY_BASE64);
    expect(config.WEBHOOK_SECRETS_KEY).toBe(KEY_BASE64);
  });

  it('given a key that is not 32 bytes, then the config is refused', () => {
    const short = Buffer.alloc(16, 7).toString('base64');
    expect(gatewayConfigSchema.safeParse({ RECEIPT_SIGNING_KEY: short }).success).toBe(false);
    expect(gatewayConfigSchema.safeParse({ WEBHOOK_SECRETS_KEY: short }).success).toBe(false);
  });
});
