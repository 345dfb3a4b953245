import { BaseRpcContext } from '@nestjs/microservices';
import type { JsMsg } from '@nats-io/jetstream';
import type { MsgHdrs } from '@nats-io/transport-node';

type EventContextArgs = [message: JsMsg, subject: string, consumer: string];

/**
 * What an `@EventPattern` handler can learn about the delivery (`@Ctx() ctx: NatsEventContext`).
 * The payload itself is the event envelope.
 */
export class NatsEventContext extends BaseRpcContext<EventContextArgs> {
  private transaction: unknown = undefined;

  constructor(args: EventContextArgs) {
    super(args);
  }

  /** The contract subject, without the deployment prefix (e.g. `escrow.events.funded`). */
  getSubject(): string {
    return this.args[1];
  }

  /** The durable consumer delivering the event. */
  getConsumer(): string {
    return this.args[2];
  }

  /** 1 on the first delivery. */
  getDeliveryCount(): number {
    return this.args[0].info.deliveryCount;
  }

  getStreamSequence(): number {
    return this.args[0].info.streamSequence;
  }

  getHeaders(): MsgHdrs | undefined {
    return this.args[0].headers;
  }

  getMessage(): JsMsg {
    return this.args[0];
  }

  /**
   * The inbox transaction the handler runs in, when the transport has an inbox: writes made
   * through it commit together with the "processed" record of this event id.
   */
  getTransaction<T>(): T {
    if (this.transaction === undefined) {
      throw new Error('no transaction: the transport was started without an inbox');
    }
    return this.transaction as T;
  }

  /** Set by the transport before the handler runs. */
  setTransaction(transaction: unknown): void {
    this.transaction = transaction;
  }
}
