import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import type { NatsConnection } from '@nats-io/transport-node';
import type { SubjectPrefix } from '@pf/contracts';
import type { CommandClient } from '@pf/messaging';
import type { BaseConfig } from './config.js';

/** What a running service instance knows about itself and its connections. */
export interface ServiceContext<C extends BaseConfig = BaseConfig> {
  name: string;
  version: string;
  instanceId: string;
  startedAtMs: number;
  config: C;
  logger: Logger;
  dataSource: DataSource;
  nats: NatsConnection;
  prefix: SubjectPrefix;
  commands: CommandClient;
}
