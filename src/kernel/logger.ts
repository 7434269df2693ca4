/** The logger the shop gives (pino, bunyan, console): src/observe/log.ts turns it into the package's own `Log`. */
/** The fields of a log line, e.g. `{ outerTradeNo: '1000000005', reason: 'BAD_SIGN' }`. */
export type LogFields = Record<string, unknown>

/**
 * Where log lines go: a pino or bunyan logger, or anything called `(fields, message)` the same way.
 * `console` works too (it is called `(message, fields)`). A logger with `child` is used through
 * `child({ name: 'express-guanaitong' })`.
 */
export interface Logger {
  /** Detail: duplicates acknowledged without running the handler, tokens created. */
  debug?(fields: LogFields, message: string): void
  /** Routine events. */
  info?(fields: LogFields, message: string): void
  /** A bad request, or something that recovered on its own. */
  warn(fields: LogFields, message: string): void
  /** A problem on the shop's side: the store, the handler, a lost lease. */
  error(fields: LogFields, message: string): void
  /** A logger whose lines carry `bindings` as fields. */
  child?(bindings: LogFields): Logger
}
