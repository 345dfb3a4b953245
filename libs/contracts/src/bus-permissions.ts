import { casinoCommands } from './casino.js';
import { escrowCommands } from './escrow.js';
import { faucetCommands } from './faucet.js';
import { mandateCommands } from './mandates.js';
import { opsResultsStream } from './ops-results.js';
import { gatewaySubjects } from './webhooks.js';
import { commandSubjects, deadLetterStream, eventStreams, type SubjectPrefix } from './subjects.js';

/**
 * Who may say what on the bus (ADR 0010). Each app connects as its own NATS user; the shipped
 * nats-server configurations (npm start, docker-compose, the tests) are rendered from this one
 * pure function, so a subject added to the contracts cannot drift from what the broker allows.
 *
 * The rules: a service answers only its own `<service>.cmd.>`, publishes only its own events,
 * sends only the commands it uses, and reads replies only on its own inbox. `casino.cmd.credit`
 * (money from outside) is sent by ops and by the gateway, which serves the admin-key `/admin`
 * routes; faucet, escrow and market never can.
 */
export const BUS_USERS = ['casino', 'faucet', 'escrow', 'market', 'gateway', 'ops'] as const;
export type BusUser = (typeof BUS_USERS)[number];

export interface BusPermissions {
  publish: string[];
  subscribe: string[];
  /** May answer requests it received (publish once to their reply subject): responders only. */
  allowResponses: boolean;
}

/** The market's subjects: its commands, its stream, and the escrow commands it sends (awards, race settlement, cancels). */
const market = {
  commands: 'market.cmd.>',
  events: eventStreams.market,
  escrowCommands: [escrowCommands.create, escrowCommands.release, escrowCommands.get, escrowCommands.cancel],
} as const;

/**
 * Where a user's request replies arrive (`<inbox>.<nuid>.<n>`). One per user, so a user can be
 * allowed to subscribe to its own replies and nobody else's (register and authenticate replies).
 */
export function busInboxPrefix(user: string, prefix: SubjectPrefix): string {
  return prefix.value === '' ? `_INBOX_${user}` : `_INBOX_${prefix.value}_${user}`;
}

/** Every user's permissions for one deployment prefix. */
export function busPermissions(prefix: SubjectPrefix): Record<BusUser, BusPermissions> {
  const p = (subject: string) => prefix.subject(subject);
  const inbox = (user: BusUser) => `${busInboxPrefix(user, prefix)}.>`;
  const allStreams = uniqueStreams();
  // Every app ensures every event stream and the dead-letter stream at start (libs/messaging
  // ensureStreams): it may look them up and create a missing one, never delete or purge them.
  // Only a stream's owner may change it: a user that could both change a stream's subjects and
  // read it could capture someone else's inbox, so no user is given both on one stream.
  // The gateway reads the dead letters (the operator view), so it may not also update that stream.
  const ensureStreams = (
    owned: readonly string[],
    options: { updateDeadLetters: boolean } = { updateDeadLetters: true },
  ) => [
    '$JS.API.INFO',
    ...allStreams.flatMap((name) =>
      ['INFO', 'CREATE'].map((verb) => `$JS.API.STREAM.${verb}.${prefix.streamName(name)}`),
    ),
    ...[...owned, ...(options.updateDeadLetters ? [deadLetterStream.name] : [])].map(
      (name) => `$JS.API.STREAM.UPDATE.${prefix.streamName(name)}`,
    ),
  ];
  const consume = (streamName: string) => durableConsumerSubjects(prefix.streamName(streamName));
  const deadLetters = p(deadLetterStream.subjects);
  // Everything an agent can ask over HTTP; credit only because the gateway serves /admin.
  const gatewayCasino = [
    casinoCommands.register,
    casinoCommands.authenticate,
    casinoCommands.getAgent,
    casinoCommands.getAccount,
    casinoCommands.getLedger,
    casinoCommands.referralStats,
    casinoCommands.checkLedger,
    casinoCommands.listAccounts,
    casinoCommands.credit,
    // Sub-keys and direct payments (ADR 0019): the agent's own, with the agent id the gateway authenticated.
    ...Object.values(mandateCommands),
  ];
  const pings = Object.values(commandSubjects).map((commands) => commands.ping);

  return {
    casino: {
      publish: [...ensureStreams([eventStreams.casino.name]), p(eventStreams.casino.subjects)],
      subscribe: [p('casino.cmd.>'), inbox('casino')],
      allowResponses: true,
    },
    faucet: {
      publish: [
        ...ensureStreams([eventStreams.faucet.name]),
        p(eventStreams.faucet.subjects),
        ...[casinoCommands.getAgent, casinoCommands.transfer].map(p),
        ...consume(eventStreams.casino.name),
        deadLetters,
      ],
      subscribe: [p('faucet.cmd.>'), inbox('faucet')],
      allowResponses: true,
    },
    escrow: {
      publish: [
        ...ensureStreams([eventStreams.escrow.name]),
        p(eventStreams.escrow.subjects),
        ...[
          casinoCommands.getAgent,
          casinoCommands.hold,
          casinoCommands.post,
          casinoCommands.void,
          casinoCommands.getHold,
        ].map(p),
      ],
      subscribe: [p('escrow.cmd.>'), inbox('escrow')],
      allowResponses: true,
    },
    market: {
      publish: [
        ...ensureStreams([market.events.name]),
        p(market.events.subjects),
        ...market.escrowCommands.map(p),
        ...consume(eventStreams.escrow.name),
        deadLetters,
      ],
      subscribe: [p(market.commands), inbox('market')],
      allowResponses: true,
    },
    gateway: {
      publish: [
        ...ensureStreams([], { updateDeadLetters: false }),
        ...[
          ...gatewayCasino,
          // Not escrow.cmd.cancel: only the market may give a job escrow back (its poster cancelled, or a race was lost).
          // The parties' cancel by agreement has its own subjects (request_cancel, consent_cancel; ADR 0016).
          ...Object.values(escrowCommands).filter((subject) => subject !== escrowCommands.cancel),
          ...Object.values(faucetCommands),
          ...pings,
          market.commands,
        ].map(p),
        // The SSE feeds read escrow and job events through short-lived ordered consumers; receipts
        // (escrow, faucet, casino payments) and webhook fan-out (escrow, market) through durables (ADR 0020).
        // The dashboard's operator view (/admin, behind ADMIN_API_KEY; ADR 0018): consumer lag of
        // every stream, and the dead letters — read, and re-driven like `ops dlq redrive` does:
        // republished to their original subject, then deleted. Re-publishing an event is less
        // than the gateway can already do (credit sends money from outside); consumers are
        // idempotent on the event id, so a republished event is processed at most once more.
        ...new Set([
          ...orderedReaderSubjects(prefix.streamName(eventStreams.escrow.name)),
          ...orderedReaderSubjects(prefix.streamName(eventStreams.market.name)),
          ...consume(eventStreams.escrow.name),
          ...consume(eventStreams.market.name),
          ...consume(eventStreams.faucet.name),
          ...consume(eventStreams.casino.name),
          ...allStreams.map((name) => `$JS.API.CONSUMER.LIST.${prefix.streamName(name)}`),
          ...orderedReaderSubjects(prefix.streamName(deadLetterStream.name)),
          `$JS.API.STREAM.MSG.DELETE.${prefix.streamName(deadLetterStream.name)}`,
          ...allStreamSubjects().map(p),
          deadLetters,
        ]),
        // The last `ops verify` result (the operator view's cross-checks): read only, one message
        // by subject; ops alone creates and writes that stream.
        `$JS.API.STREAM.MSG.GET.${prefix.streamName(opsResultsStream.name)}`,
        // Notices to an agent's SSE streams on whichever replica holds them (a disabled webhook).
        p(`${gatewaySubjects.notices}.>`),
      ],
      subscribe: [inbox('gateway'), p(gatewaySubjects.commands)],
      allowResponses: false,
    },
    ops: {
      // The operator's tool: credits, inspects and re-drives streams and dead letters.
      publish: [
        p(casinoCommands.credit),
        ...pings.map(p),
        '$JS.API.>',
        ...allStreamSubjects().map(p),
        deadLetters,
        // `ops verify` records its last result for the dashboard (OPS_RESULTS, created on first use).
        p(opsResultsStream.subjects),
      ],
      subscribe: [inbox('ops')],
      allowResponses: false,
    },
  };
}

function uniqueStreams(): string[] {
  return [
    ...new Set([
      ...Object.values(eventStreams).map((stream) => stream.name),
      market.events.name,
      deadLetterStream.name,
    ]),
  ];
}

function allStreamSubjects(): string[] {
  return [
    ...new Set([...Object.values(eventStreams).map((stream) => stream.subjects), market.events.subjects]),
  ];
}

/** A durable pull consumer on one stream: create/look up its consumers, pull, ack and nak. */
function durableConsumerSubjects(streamName: string): string[] {
  return [
    `$JS.API.CONSUMER.CREATE.${streamName}.>`,
    `$JS.API.CONSUMER.DURABLE.CREATE.${streamName}.>`,
    `$JS.API.CONSUMER.INFO.${streamName}.>`,
    `$JS.API.CONSUMER.MSG.NEXT.${streamName}.>`,
    `$JS.ACK.${streamName}.>`,
  ];
}

/** Ordered (ephemeral) consumers: also delete them, read one message and the stream state. */
function orderedReaderSubjects(streamName: string): string[] {
  return [
    `$JS.API.CONSUMER.CREATE.${streamName}.>`,
    `$JS.API.CONSUMER.INFO.${streamName}.>`,
    `$JS.API.CONSUMER.DELETE.${streamName}.>`,
    `$JS.API.CONSUMER.MSG.NEXT.${streamName}.>`,
    `$JS.API.STREAM.MSG.GET.${streamName}`,
    `$JS.API.DIRECT.GET.${streamName}`,
    `$JS.API.DIRECT.GET.${streamName}.>`,
  ];
}

/** How a user proves who it is in the rendered server config: a password, or an nkey's public key. */
export type BusSecret = { password: string } | { passwordFromEnv: string } | { nkey: string };

/**
 * The `authorization` block of a nats-server config giving each user its permissions. A
 * `passwordFromEnv` becomes an unquoted `$VARIABLE` that nats-server reads from its environment
 * (docker-compose); a `password` is written as is (a 0600 file under .data/ or a test's temp dir).
 */
export function renderBusAuthorization(
  prefix: SubjectPrefix,
  secrets: Partial<Record<BusUser, BusSecret>>,
): string {
  const permissions = busPermissions(prefix);
  const users = BUS_USERS.filter((user) => secrets[user] !== undefined).map((user) => {
    const secret = secrets[user]!;
    const credential =
      'nkey' in secret
        ? `nkey: ${JSON.stringify(secret.nkey)}`
        : `user: ${JSON.stringify(user)}\n      password: ${'password' in secret ? JSON.stringify(secret.password) : `$${secret.passwordFromEnv}`}`;
    const { publish, subscribe, allowResponses } = permissions[user];
    return [
      `    {`,
      `      ${credential}`,
      `      permissions: {`,
      `        publish: { allow: ${JSON.stringify(publish)} }`,
      `        subscribe: { allow: ${JSON.stringify(subscribe)} }`,
      ...(allowResponses ? [`        allow_responses: true`] : []),
      `      }`,
      `    }`,
    ].join('\n');
  });
  return ['authorization {', '  users: [', ...users, '  ]', '}', ''].join('\n');
}
