import { Module } from '@nestjs/common';

/** The faucet service's own handlers; ping and health come from the platform. */
@Module({})
export class FaucetModule {}
