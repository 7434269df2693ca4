import type { Logger } from '../kernel/types'

/** One line a `quietLogger` kept. */
export interface LoggedLine {
  /** Which logger method was called. */
  level: 'debug' | 'info' | 'warn' | 'error'
  /** The message, as given. */
  message: string
  /** The context object, as given (reason codes, ids); undefined when none. */
  context?: Record<string, unknown>
}

/** A `Logger` (pino style: fields, then message) that keeps its lines instead of printing them. */
export interface QuietLogger extends Logger {
  /** Every line logged so far, oldest first. */
  readonly lines: LoggedLine[]
  debug(fields: Record<string, unknown>, message: string): void
  info(fields: Record<string, unknown>, message: string): void
}

/**
 * A logger for tests: records every line in `lines` and prints nothing, so a passing test run
 * stays quiet and a test can assert on what was logged (`lines.map((l) => l.context?.reason)`).
 * Pass it as `logger` to `guanaitong()` and `createClient()`.
 */
export function quietLogger(): QuietLogger {
  const lines: LoggedLine[] = []
  const keep = (level: LoggedLine['level']) => (context: Record<string, unknown>, message: string) => {
    lines.push({ level, message, context })
  }
  return { lines, debug: keep('debug'), info: keep('info'), warn: keep('warn'), error: keep('error') }
}
