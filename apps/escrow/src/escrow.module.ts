import { Module } from '@nestjs/common';

/** The escrow service's own handlers; ping and health come from the platform. */
@Module({})
export class EscrowModule {}
