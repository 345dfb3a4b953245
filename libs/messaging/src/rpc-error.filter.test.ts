import 'reflect-metadata';
import {
  Catch,
  Controller,
  Get,
  Module,
  NotFoundException,
  type ArgumentsHost,
  type ExceptionFilter,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern } from '@nestjs/microservices';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { NatsConnection } from '@nats-io/transport-node';
import type { FastifyReply } from 'fastify';
import { pino } from 'pino';
import { DomainError, ErrorCode, SubjectPrefix } from '@pf/contracts';
// eslint-disable-next-line @nx/enforce-module-boundaries -- only tests use the shared harness (real NATS, per-run prefix)
import { connectTestNats, deletePrefixedStreams, testNatsPrefix } from '@pf/testing';
import { CommandClient } from './command-client.js';
import { connectNatsTransport } from './rpc-error.filter.js';
import { NatsTransport } from './transport.js';

const prefix = new SubjectPrefix(testNatsPrefix());
const subject = 'casino.cmd.hybrid_test';

@Controller()
class HybridController {
  @Get('missing')
  missing(): never {
    throw new NotFoundException('nothing here');
  }

  @Get('domain')
  domain(): never {
    throw new DomainError(ErrorCode.forbidden, 'not yours');
  }

  @MessagePattern(subject)
  command(): never {
    throw new DomainError(ErrorCode.forbidden, 'not yours');
  }
}

@Module({ controllers: [HybridController] })
class HybridModule {}

/** Stands in for an app's own HTTP error filter (the gateway has one), registered after the transport. */
@Catch(DomainError)
class AppDomainErrorFilter implements ExceptionFilter {
  catch(exception: DomainError, host: ArgumentsHost): void {
    void host.switchToHttp().getResponse<FastifyReply>().status(403).send({ error: exception.code });
  }
}

let connection: NatsConnection;
let app: NestFastifyApplication;

beforeAll(async () => {
  connection = await connectTestNats();
  app = await NestFactory.create<NestFastifyApplication>(HybridModule, new FastifyAdapter(), {
    logger: false,
  });
  const logger = pino({ level: 'silent' });
  connectNatsTransport(app, new NatsTransport({ connection, prefix, logger, consumerGroup: 'hybrid' }));
  app.useGlobalFilters(new AppDomainErrorFilter());
  await app.startAllMicroservices();
  await app.listen(0, '127.0.0.1');
});

afterAll(async () => {
  await app.close();
  await deletePrefixedStreams(connection, prefix.value);
  await connection.drain();
});

describe('connectNatsTransport in a hybrid app', () => {
  it('hands DomainErrors of commands to the transport unchanged', async () => {
    const client = new CommandClient({ connection, prefix, timeoutMs: 2_000 });
    await expect(client.request(subject)).rejects.toMatchObject({
      code: ErrorCode.forbidden,
      message: 'not yours',
    });
  });

  it('leaves HTTP errors to Nest defaults and to the app filters registered later', async () => {
    const url = await app.getUrl();
    const missing = await fetch(`${url}/missing`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ statusCode: 404, message: 'nothing here', error: 'Not Found' });
    const domain = await fetch(`${url}/domain`);
    expect(domain.status).toBe(403);
    expect(await domain.json()).toEqual({ error: ErrorCode.forbidden });
  });
});
