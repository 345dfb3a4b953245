import { Module } from '@nestjs/common';

/** The casino service's own handlers; ping and health come from the platform. */
@Module({})
export class CasinoModule {}
