import { timingSafeEqual, createHash } from 'node:crypto';
import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { DomainError, ErrorCode } from '@pf/contracts';
import { CONFIG } from '@pf/platform';
import type { GatewayConfig } from '../config.js';
import { bearerToken } from './auth.guard.js';

/** `/admin/*` needs `Authorization: Bearer $ADMIN_API_KEY`; without the setting it is closed. */
@Injectable()
export class AdminGuard implements CanActivate {
  private readonly expectedDigest?: Buffer;

  constructor(@Inject(CONFIG) config: GatewayConfig) {
    if (config.ADMIN_API_KEY) this.expectedDigest = digest(config.ADMIN_API_KEY);
  }

  canActivate(context: ExecutionContext): boolean {
    if (!this.expectedDigest) {
      throw new DomainError(
        ErrorCode.unauthorized,
        'the admin API is disabled: set ADMIN_API_KEY to enable it',
      );
    }
    const token = bearerToken(context.switchToHttp().getRequest<FastifyRequest>());
    // Compare digests so the comparison takes the same time whatever the token's length.
    if (!token)
      throw new DomainError(
        ErrorCode.unauthorized,
        'missing admin key: send Authorization: Bearer <ADMIN_API_KEY>',
      );
    if (!timingSafeEqual(digest(token), this.expectedDigest)) {
      throw new DomainError(ErrorCode.unauthorized, 'invalid admin key');
    }
    return true;
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
