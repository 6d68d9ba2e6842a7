/**
 * The one error class for mistakes a user can cause: bad config, bad shapes,
 * missing or corrupt files, non-finite losses. The message says what is wrong
 * and what to do; the CLI prints it without a stack trace.
 */
const LINE_BREAKS: Record<string, string> = { '\r': '\\r', '\n': '\\n', '\u2028': '\\u2028', '\u2029': '\\u2029' };

export class UntieError extends Error {
  override readonly name = 'UntieError';
  constructor(message: string) {
    // One line, always: a name quoted from a damaged file may hold a line break (fuzzing made one in a
    // parameter name in trainer_state.json); it is shown escaped rather than splitting the message.
    super(message.replace(/[\r\n\u2028\u2029]/g, (c) => LINE_BREAKS[c]));
  }
}

/** Throws an UntieError with `message` unless `condition` holds. */
export function check(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new UntieError(typeof message === 'function' ? message() : message);
}

/**
 * Another library's error message, fit to quote inside ours: one line (a
 * JSON.parse message quotes the file, newlines included), at most `max`
 * characters.
 */
export function quoteError(err: unknown, max = 160): string {
  const text = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').trim();
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}
