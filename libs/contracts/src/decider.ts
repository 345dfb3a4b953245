/**
 * The Decider shape every aggregate follows: pure functions, no I/O.
 * `decide` turns a command and the current state into new events (or throws a DomainError);
 * `evolve` folds one event into the state; replay is `events.reduce(evolve, initialState())`.
 */
export interface Decider<Command, Event, State> {
  initialState(): State;
  decide(command: Command, state: State): Event[];
  evolve(state: State, event: Event): State;
}

export function fold<Event, State>(
  decider: Pick<Decider<unknown, Event, State>, 'initialState' | 'evolve'>,
  events: readonly Event[],
): State {
  return events.reduce((state, event) => decider.evolve(state, event), decider.initialState());
}
