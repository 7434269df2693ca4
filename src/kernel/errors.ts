import { printable, withoutControls } from './printable'

/**
 * Every error this package throws or hands to a callback is a GuanaitongError:
 * its message starts with the package name (so it is findable in a shop's logs),
 * it carries a machine-readable `code`, and the HTTP `status` to answer with.
 */
/** How every message of the package starts in a shop's logs; never shown to a browser. */
export const MESSAGE_PREFIX = '[express-guanaitong] '

export class GuanaitongError extends Error {
  readonly code: string | number
  readonly status: number

  constructor(message: string, code: string | number, status: number, options?: { cause?: unknown }) {
    super(`${MESSAGE_PREFIX}${message}`, options)
    this.name = 'GuanaitongError'
    this.code = code
    this.status = status
  }
}

/** An option passed to `guanaitong()`, `createClient()` or a store is wrong; thrown at construction. */
export class ConfigError extends GuanaitongError {
  constructor(message: string) {
    super(message, 'INVALID_OPTION', 500)
    this.name = 'ConfigError'
  }
}

/** A pay parameter broke one of Guanaitong's documented limits or the signing rule; nothing was sent upstream. */
export class ParamError extends GuanaitongError {
  readonly field: string
  readonly msg: string

  constructor(field: string, rule: string) {
    // The field may be a key from a request body: escaped, it cannot write a log line of its own.
    const named = printable(field, 60)
    super(`${named} ${rule}`, 'INVALID_PARAM', 400)
    this.name = 'ParamError'
    this.field = field
    this.msg = `${named} ${rule}`
  }
}

/**
 * How a call failed: `api` Guanaitong answered a non-zero code; `http` a status other than 200;
 * `timeout` no complete answer in time; `network` the connection failed or broke;
 * `invalid-response` a 200 whose body is not Guanaitong's JSON; `token-cache` no access token
 * could be had from the token cache (e.g. Redis down), so nothing was sent.
 */
export type GatErrorKind = 'api' | 'http' | 'timeout' | 'network' | 'invalid-response' | 'token-cache'

export interface GatErrorDetails {
  kind: GatErrorKind
  /** Guanaitong's numeric code for `api` errors; null when no JSON answer was read. */
  code: number | null
  msg: string
  /** Upstream HTTP status; 0 when no response arrived. */
  status: number
  traceId?: string
  path: string
  /**
   * Whether the request may have reached Guanaitong. False when it certainly did not: the
   * connection was never made, or the call failed before it (no access token). Default true,
   * except for `token-cache`.
   */
  sent?: boolean
  /** Overrides the rule below for a request that was sent; ignored when it was not. Best left out. */
  ambiguous?: boolean
  cause?: unknown
}

/**
 * The one rule for `ambiguous`: the request may have reached Guanaitong (`sent`) and no
 * well-formed answer said what became of it. A well-formed answer is JSON with a code (`api`).
 * Everything else that was sent (a timeout, a broken connection, a 5xx, HTML, an unparseable
 * body) may have been processed.
 */
function isAmbiguous(d: GatErrorDetails): boolean {
  if (!wasSent(d)) return false
  return d.ambiguous ?? d.kind !== 'api'
}

function wasSent(d: GatErrorDetails): boolean {
  return d.sent ?? d.kind !== 'token-cache'
}

/**
 * A call to Guanaitong's open API failed. `kind` says how; `status` is Guanaitong's HTTP status
 * (0 when none arrived); `code` is Guanaitong's numeric code for `api` errors, else `GAT_<KIND>`;
 * `sent` says whether the request may have reached Guanaitong; `ambiguous` whether it may have
 * taken effect (for a pay: the employee may have been charged).
 */
export class GatError extends GuanaitongError {
  declare readonly code: number | string
  readonly kind: GatErrorKind
  readonly msg: string
  readonly traceId: string | undefined
  readonly path: string
  /** The request may have reached Guanaitong; false when it certainly did not (retrying is safe). */
  readonly sent: boolean
  /** The call may have taken effect and no answer said otherwise: never re-send a pay blindly. */
  readonly ambiguous: boolean

  constructor(d: GatErrorDetails) {
    const ambiguous = isAmbiguous(d)
    const where = d.traceId ? ` (x-trace-id ${d.traceId})` : ''
    const hint = ambiguous
      ? '; the request may have been processed: look up the outer_trade_no before paying again'
      : wasSent(d) ? '' : '; nothing was sent'
    // `msg` is Guanaitong's (or a proxy's) text: escaped, it cannot write a line into the shop's log.
    super(`Guanaitong ${d.path} failed (${d.kind}${d.code !== null ? ` ${d.code}` : ''}): ${withoutControls(d.msg)}${where}${hint}`,
      d.code ?? `GAT_${d.kind.toUpperCase().replace('-', '_')}`, d.status, { cause: d.cause })
    this.name = 'GatError'
    this.kind = d.kind
    this.msg = d.msg
    this.traceId = d.traceId
    this.path = d.path
    this.sent = wasSent(d)
    this.ambiguous = ambiguous
  }
}

/** A property of a thrown value, which may be anything: undefined, a string, an object without it. */
export function errorProperty(err: unknown, name: string): unknown {
  if (err === null || (typeof err !== 'object' && typeof err !== 'function')) return undefined
  try {
    return (err as Record<string, unknown>)[name]
  } catch {
    return undefined
  }
}

/** A thrown value as text for a log line; never throws (`String(Object.create(null))` would). */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message
  try {
    return String(err)
  } catch {
    return Object.prototype.toString.call(err)
  }
}

/** Guanaitong's code for a token that is no longer valid. */
export const TOKEN_INVALID_CODE = 1000210004
/** Guanaitong's code for an `outer_trade_no` that was used before. */
export const OUTER_TRADE_NO_EXISTS_CODE = 1001220005
