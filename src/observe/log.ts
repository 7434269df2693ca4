import { withoutControls } from '../kernel/printable'
import type { LogFields, Logger } from '../kernel/types'

/**
 * How the package's own code logs: the fields first, then the message, as the shop's {@link Logger}
 * (pino, bunyan) is called. `toLogger` turns the shop's logger (or console) into one; every method
 * is always there.
 */
export interface Log {
  debug(fields: LogFields, message: string): void
  info(fields: LogFields, message: string): void
  warn(fields: LogFields, message: string): void
  error(fields: LogFields, message: string): void
}

const LEVELS = ['debug', 'info', 'warn', 'error'] as const
type Level = (typeof LEVELS)[number]

/** The name structured loggers get through `child()`, and the prefix plain-text lines keep. */
export const LOGGER_NAME = 'express-guanaitong'
const PREFIX = `[${LOGGER_NAME}] `

function noop() {}

function isEmpty(fields: LogFields): boolean {
  for (const _ in fields) return false
  return true
}

/**
 * A log call never throws: a logger that fails (a closed stream, a broken transport) must not
 * change or hold an answer Guanaitong or the cashier page is waiting for. Nor does a message write
 * a line of its own: an order number, a trade number or an error text from a request or an answer
 * that holds a line break or a bidi control is escaped here, wherever in the package it was put
 * into the message.
 */
function safe(write: (fields: LogFields, message: string) => void) {
  return (fields: LogFields, message: string) => {
    try {
      write(fields, withoutControls(message))
    } catch {
      // Nowhere left to report it.
    }
  }
}

/** Console prints its arguments in order, so it is given the readable message-first order (and no empty fields). */
function consoleLog(levels: readonly Level[]): Log {
  const at = (level: Level) => {
    if (!levels.includes(level)) return noop
    return safe((fields: LogFields, message: string) => {
      if (isEmpty(fields)) console[level](message)
      else console[level](message, fields)
    })
  }
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
}

/**
 * `logger.child({ name })` when the logger has one, so its lines say where they come from.
 * Bunyan refuses to rename a child: then the logger itself, and its lines keep the prefix.
 */
function named(logger: Logger): Logger | undefined {
  if (typeof logger.child !== 'function') return undefined
  try {
    const child = logger.child({ name: LOGGER_NAME })
    return child && typeof child.warn === 'function' && typeof child.error === 'function' ? child : undefined
  } catch {
    return undefined
  }
}

function structuredLog(logger: Logger): Log {
  const child = named(logger)
  const target = child ?? logger
  const text = child ? (message: string) => (message.startsWith(PREFIX) ? message.slice(PREFIX.length) : message) : (message: string) => message
  // Looked up on every call: pino swaps a logger's level methods when its level changes.
  const at = (level: Level) => safe((fields: LogFields, message: string) => {
    target[level]?.(fields, text(message))
  })
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
}

const adapted = new WeakMap<Logger, Log>()
const CONSOLE = consoleLog(LEVELS)
/**
 * The default of the router, each middleware and the client: warnings and errors to the console;
 * debug and info (duplicates acknowledged, tokens created) stay quiet.
 */
export const QUIET_CONSOLE = consoleLog(['warn', 'error'])

/**
 * The shop's logger as the package logs to it: console as is, anything else called
 * `(fields, message)` through `child({ name: 'express-guanaitong' })` where it can. One adapter per
 * logger, so each is asked for its child once. `fallback` is used when no logger was given.
 * `named(logger)` may call the shop's `child()`: a throwing one falls back to the logger itself.
 */
export function toLogger(logger: Logger | undefined, fallback: Log = QUIET_CONSOLE): Log {
  if (logger === undefined) return fallback
  if (logger === (console as unknown)) return CONSOLE
  let log = adapted.get(logger)
  if (!log) {
    log = structuredLog(logger)
    adapted.set(logger, log)
  }
  return log
}
