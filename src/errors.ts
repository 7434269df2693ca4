/**
 * Every error this package throws or hands to a callback is a GuanaitongError:
 * its message starts with the package name (so it is findable in a shop's logs),
 * it carries a machine-readable `code`, and the HTTP `status` to answer with.
 */
export class GuanaitongError extends Error {
  readonly code: string | number
  readonly status: number

  constructor(message: string, code: string | number, status: number, options?: { cause?: unknown }) {
    super(`[express-guanaitong] ${message}`, options)
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

/** A pay parameter broke one of Guanaitong's documented limits; nothing was sent upstream. */
export class ParamError extends GuanaitongError {
  readonly field: string
  readonly msg: string

  constructor(field: string, rule: string) {
    super(`${field} ${rule}`, 'INVALID_PARAM', 400)
    this.name = 'ParamError'
    this.field = field
    this.msg = `${field} ${rule}`
  }
}

export type GatErrorKind = 'api' | 'http' | 'timeout' | 'network' | 'invalid-response'

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
   * True when the request may have reached Guanaitong and its outcome is unknown
   * (a timeout or a dropped connection after sending). Never retried automatically:
   * check `outer_trade_no` before paying again.
   */
  ambiguous?: boolean
  cause?: unknown
}

/**
 * A call to Guanaitong's open API failed. `kind` says how; `status` is Guanaitong's HTTP status
 * (0 when none arrived); `code` is Guanaitong's numeric code for `api` errors, else `GAT_<KIND>`;
 * `ambiguous` says whether the call may still have taken effect.
 */
export class GatError extends GuanaitongError {
  declare readonly code: number | string
  readonly kind: GatErrorKind
  readonly msg: string
  readonly traceId: string | undefined
  readonly path: string
  readonly ambiguous: boolean

  constructor(d: GatErrorDetails) {
    const where = d.traceId ? ` (x-trace-id ${d.traceId})` : ''
    const hint = d.ambiguous
      ? '; the request may have been processed: look up the outer_trade_no before paying again'
      : ''
    super(`Guanaitong ${d.path} failed (${d.kind}${d.code !== null ? ` ${d.code}` : ''}): ${d.msg}${where}${hint}`,
      d.code ?? `GAT_${d.kind.toUpperCase().replace('-', '_')}`, d.status, { cause: d.cause })
    this.name = 'GatError'
    this.kind = d.kind
    this.msg = d.msg
    this.traceId = d.traceId
    this.path = d.path
    this.ambiguous = d.ambiguous ?? false
  }
}

/** Guanaitong's code for a token that is no longer valid. */
export const TOKEN_INVALID_CODE = 1000210004
/** Guanaitong's code for an `outer_trade_no` that was used before. */
export const OUTER_TRADE_NO_EXISTS_CODE = 1001220005

/** The message of anything thrown: an Error's message, a string as is, anything else as text. Never throws. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message
  try {
    return String(err)
  } catch {
    return Object.prototype.toString.call(err)
  }
}
