/**
 * The one error class for mistakes a user can cause: bad config, bad shapes,
 * missing or corrupt files, non-finite losses. The message says what is wrong
 * and what to do; the CLI prints it without a stack trace.
 */
export class UntieError extends Error {
  override readonly name = 'UntieError';
  constructor(message: string) {
    super(message);
  }
}

/** Throws an UntieError with `message` unless `condition` holds. */
export function check(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new UntieError(typeof message === 'function' ? message() : message);
}
