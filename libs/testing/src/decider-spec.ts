/** The Decider shape of the event-store library, restated so the test harness stays below it. */
interface Decider<C, E, S> {
  initialState(): S;
  decide(command: C, state: S): E[];
  evolve(state: S, event: E): S;
}

/**
 * Given/when/then for deciders:
 *   given(decider, [escrowFunded(e)]).when(complete(e.id, worker)).then([escrowCompleted(...)])
 *   given(decider, [...]).when(cmd).thenThrows('invalid_status')
 */
export function given<C, E, S>(decider: Decider<C, E, S>, history: readonly E[]) {
  return {
    when(command: C) {
      const run = () =>
        decider.decide(
          command,
          history.reduce((state, event) => decider.evolve(state, event), decider.initialState()),
        );
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
