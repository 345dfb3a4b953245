/**
 * A startup problem with a message for the operator; no stack trace is printed for it. In its
 * own module because both the process helpers (children.ts) and the supervisor throw it, and
 * the supervisor imports the process helpers: defining it in either made an import cycle.
 */
export class LaunchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LaunchError';
  }
}
