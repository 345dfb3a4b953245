import { fold, type Decider } from '@pf/event-store';

/**
 * Given/when/then for deciders:
 *   given(decider, [escrowFunded(e)]).when(complete(e.id, worker)).then([escrowCompleted(...)])
 *   given(decider, [...]).when(cmd).thenThrows('invalid_status')
 */
export function given<C, E, S>(decider: Decider<C, E, S>, history: readonly E[]) {
  return {
    when(command: C) {
      const run = () => decider.decide(command, fold(decider, history));
      return {
        then(expected: E[]): E[] {
          const events = run();
          expect(events).toEqual(expected);
          return events;
        },
        thenThrows(code: string): void {
          let thrown: unknown;
          try {
            run();
          } catch (error) {
            thrown = error;
          }
          expect(thrown).toBeDefined();
          expect((thrown as { code?: string }).code).toBe(code);
        },
        events: run,
      };
    },
  };
}
