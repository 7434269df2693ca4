import { printable, withoutControls } from './printable'

/** Why a pay was not answered with a trade number: the pay route's reasons (src/core/pay/answers.ts decides each one's answer). */
export type PayReason =
  /** A pay parameter breaks Guanaitong's limits (the client checked before sending). */
  | 'INVALID_PARAM'
  /**
   * The request itself was refused with a 4xx: a body that is not JSON/form, or `preparePayment` threw an error with a 4xx
   * `status`. The body's `code` says which: body-parser's `type`, the error's own string `code`, else the status's name
   * (`UNAUTHORIZED`, `NOT_FOUND`, `CONFLICT`…); its `msg` is the error's message, written for the cashier page.
   */
  | 'BAD_REQUEST'
  /** `preparePayment` (or reading the body) failed otherwise: a bug or an outage on the shop's side. */
  | 'PREPARE_FAILED'
  /** The pay was never sent: no access token (token call failed, token cache down) or no connection. */
  | 'NOT_SENT'
  /** Guanaitong answered 1001220005: this `outer_trade_no` was used before. */
  | 'OUTER_TRADE_NO_EXISTS'
  /** Guanaitong answered well-formed JSON with another non-zero code: it refused the pay. */
  | 'REFUSED'
  /** The pay may have reached Guanaitong and no complete answer came in `timeoutMs`. */
  | 'TIMEOUT'
  /** The pay may have reached Guanaitong and the answer was not well-formed: a broken connection, a 5xx, HTML, an unparseable body. */
  | 'OUTCOME_UNKNOWN'

/**
 * Every error this package throws or hands to a callback is a GuanaitongError:
 * its message starts with the package name (so it is findable in a shop's logs),
 * it carries a machine-readable `code` from `ErrorCode`, and the HTTP `status` to answer with.
 */
/** How every message of the package starts in a shop's logs; never shown to a browser. */
export const MESSAGE_PREFIX = '[express-guanaitong] '

/**
 * Every `code` a GuanaitongError of this package can carry (plus, on a GatError of kind `api`,
 * Guanaitong's own numeric code). Each has one HTTP status, in ERROR_STATUS. Grouped by who
 * throws them; a notification's reasons are `RejectReason` (at the end of this file), each documented there.
 */
export type ErrorCode =
  // Configuration and arguments: a mistake in the shop's code, found before anything ran.
  /** An option passed to `guanaitong()`, `createClient()`, a store or a helper is wrong (ConfigError). */
  | 'INVALID_OPTION'
  /** A pay parameter, key or value breaks Guanaitong's limits or the package's rules; nothing was sent (ParamError). */
  | 'INVALID_PARAM'
  /** A store's unsettled-ledger method was called with a malformed record, key or limit. */
  | 'INVALID_ARGUMENT'
  /** `ctx.tx` was used after its settlement's transaction ended. */
  | 'TX_ENDED'
  /** A command line was wrong: an unknown flag, a missing value (the CLI prints it with its usage). */
  | 'USAGE'
  // Stores and the token cache.
  /** The settlement store failed or did not answer in time (also a notification's reason). */
  | 'STORE_FAILED'
  /** MemoryStore's unsettled ledger holds `maxEntries` records: the new one was not recorded. */
  | 'STORE_FULL'
  /** RedisStore's done-marker did not reach `waitReplicas` replicas within `waitTimeoutMs`. */
  | 'STORE_NOT_REPLICATED'
  /** A Redis command of RedisStore or RedisTokenCache failed. */
  | 'REDIS_FAILED'
  /** Another instance held the token refresh lock and no new token appeared within `waitMs`. */
  | 'TOKEN_REFRESH_TIMEOUT'
  // A call to Guanaitong failed (GatError): the code names its kind.
  /** Guanaitong answered a non-zero code; the GatError carries that number as `code` instead. */
  | 'GAT_API'
  /** Guanaitong (or a proxy) answered an HTTP status other than 200. */
  | 'GAT_HTTP'
  /** No complete answer within `timeoutMs`. */
  | 'GAT_TIMEOUT'
  /** The connection could not be made, or broke. */
  | 'GAT_NETWORK'
  /** A 200 whose body is not Guanaitong's JSON. */
  | 'GAT_INVALID_RESPONSE'
  /** No access token could be had from the token cache, so nothing was sent. */
  | 'GAT_TOKEN_CACHE'
  // The pay route's answers (PayRejection, src/core/pay/answers.ts).
  | PayReason
  // The sandbox and the conformance suites (express-guanaitong/testing).
  /** The sandbox was used out of order: `url` before `start()`, `start()` twice, anything after `close()`. */
  | 'SANDBOX_STATE'
  /** A sandbox wait cannot succeed: timed out, the sandbox closed, or the payment or delivery ended in another state. */
  | 'SANDBOX_WAIT_FAILED'
  /** A conformance suite found no test runner globals, or a runner that cannot skip. */
  | 'NO_TEST_RUNNER'
  // Why a notification was answered `fail`.
  | RejectReason

/**
 * The one HTTP status of each code: 4xx when the request or the call itself is wrong, 5xx when
 * the fault is on the shop's side or upstream and a retry may succeed. GuanaitongError uses it
 * when no status is given. Two kinds of error carry another status by design: a GatError the
 * status Guanaitong answered (0 when none; ERROR_STATUS gives the status a shop answers with),
 * and a BAD_REQUEST PayRejection the 4xx the refused request asked for.
 */
export const ERROR_STATUS: Readonly<Record<ErrorCode, number>> = {
  INVALID_OPTION: 500,
  INVALID_PARAM: 400,
  INVALID_ARGUMENT: 500,
  TX_ENDED: 500,
  USAGE: 400,
  STORE_FAILED: 503,
  STORE_FULL: 503,
  STORE_NOT_REPLICATED: 503,
  REDIS_FAILED: 503,
  TOKEN_REFRESH_TIMEOUT: 503,
  GAT_API: 502,
  GAT_HTTP: 502,
  GAT_TIMEOUT: 504,
  GAT_NETWORK: 502,
  GAT_INVALID_RESPONSE: 502,
  GAT_TOKEN_CACHE: 503,
  BAD_REQUEST: 400,
  PREPARE_FAILED: 500,
  NOT_SENT: 503,
  OUTER_TRADE_NO_EXISTS: 409,
  REFUSED: 502,
  TIMEOUT: 504,
  OUTCOME_UNKNOWN: 502,
  SANDBOX_STATE: 500,
  SANDBOX_WAIT_FAILED: 500,
  NO_TEST_RUNNER: 500,
  BAD_BODY: 400,
  BODY_TOO_LARGE: 413,
  BODY_TIMEOUT: 408,
  UNSUPPORTED_MEDIA_TYPE: 415,
  DUPLICATE_KEY: 400,
  NESTED_KEY: 400,
  TOO_MANY_PARAMETERS: 413,
  MISSING_FIELD: 400,
  BAD_SIGN: 401,
  BAD_TIMESTAMP: 400,
  STALE_TIMESTAMP: 401,
  APPID_MISMATCH: 403,
  BAD_AMOUNT: 400,
  IN_PROGRESS: 409,
  HANDLER_FAILED: 500,
  HANDLER_TIMEOUT: 503,
  ORDER_MISMATCH: 409,
  RESERVED_CHARACTER: 400,
  RESERVED_NAME: 400,
}

type ErrorOptions = { cause?: unknown }

export class GuanaitongError extends Error {
  /** What went wrong, from ErrorCode; on a GatError of kind `api`, Guanaitong's own numeric code. */
  readonly code: ErrorCode | number
  readonly status: number

  /** `status` defaults to the code's own (ERROR_STATUS); give one only where it is meant to differ (see there). */
  constructor(message: string, code: ErrorCode, options?: ErrorOptions)
  constructor(message: string, code: ErrorCode, status: number | undefined, options?: ErrorOptions)
  constructor(message: string, code: ErrorCode, statusOrOptions?: number | ErrorOptions, options?: ErrorOptions) {
    const status = typeof statusOrOptions === 'number' ? statusOrOptions : undefined
    super(`${MESSAGE_PREFIX}${message}`, typeof statusOrOptions === 'object' ? statusOrOptions : options)
    this.name = 'GuanaitongError'
    this.code = code
    this.status = status ?? ERROR_STATUS[code]
  }
}

/** An option passed to `guanaitong()`, `createClient()` or a store is wrong; thrown at construction. */
export class ConfigError extends GuanaitongError {
  constructor(message: string) {
    super(message, 'INVALID_OPTION')
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
    super(`${named} ${rule}`, 'INVALID_PARAM')
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

/** The codes of a GatError: `GAT_` and its kind. */
export type GatErrorCode = Extract<ErrorCode, `GAT_${string}`>

const GAT_CODE: Readonly<Record<GatErrorKind, GatErrorCode>> = {
  api: 'GAT_API',
  http: 'GAT_HTTP',
  timeout: 'GAT_TIMEOUT',
  network: 'GAT_NETWORK',
  'invalid-response': 'GAT_INVALID_RESPONSE',
  'token-cache': 'GAT_TOKEN_CACHE',
}

/**
 * A call to Guanaitong's open API failed. `kind` says how; `status` is Guanaitong's HTTP status
 * (0 when none arrived); `code` is Guanaitong's numeric code for `api` errors, else `GAT_<KIND>`;
 * `sent` says whether the request may have reached Guanaitong; `ambiguous` whether it may have
 * taken effect (for a pay: the employee may have been charged).
 */
export class GatError extends GuanaitongError {
  declare readonly code: GatErrorCode | number
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
      GAT_CODE[d.kind], d.status, { cause: d.cause })
    // Guanaitong's own code, when it answered one, is what a shop matches and its support asks for.
    if (d.code !== null) this.code = d.code
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

/**
 * A thrown value as text to quote inside another message of the package: `errorMessage` without
 * the package prefix, which the message quoting it carries already.
 */
export function causeMessage(err: unknown): string {
  const message = errorMessage(err)
  return err instanceof GuanaitongError && message.startsWith(MESSAGE_PREFIX) ? message.slice(MESSAGE_PREFIX.length) : message
}

/** Guanaitong's code for a token that is no longer valid. */
export const TOKEN_INVALID_CODE = 1000210004
/** Guanaitong's code for an `outer_trade_no` that was used before. */
export const OUTER_TRADE_NO_EXISTS_CODE = 1001220005

/** Why a notification was answered `fail`. */
export type RejectReason =
  /** Body could not be read as a flat form: bad percent-escape, empty, cut off, bad charset. */
  | 'BAD_BODY'
  /** Body larger than `bodyLimit`. */
  | 'BODY_TOO_LARGE'
  /** The whole body did not arrive within `bodyTimeoutMs` (a client sending it slowly). */
  | 'BODY_TIMEOUT'
  /** Content type other than application/x-www-form-urlencoded, or a method other than POST. */
  | 'UNSUPPORTED_MEDIA_TYPE'
  /** A key appeared twice (`a=1&a=2`). */
  | 'DUPLICATE_KEY'
  /** A key like `a[b]` or a value that an earlier body parser turned into an object. */
  | 'NESTED_KEY'
  /** More parameters than `parameterLimit`. */
  | 'TOO_MANY_PARAMETERS'
  /** A required field (appid, outer_trade_no, total_amount, timestamp, sign) is missing or empty. */
  | 'MISSING_FIELD'
  /** The signature does not match under any configured secret. */
  | 'BAD_SIGN'
  /** `timestamp` is not whole seconds (digits only; milliseconds are too long). */
  | 'BAD_TIMESTAMP'
  /** `timestamp` is further than `toleranceSec` from now, either way. */
  | 'STALE_TIMESTAMP'
  /** `appid` is not the configured application. */
  | 'APPID_MISMATCH'
  /** `total_amount` is not a decimal with at most two decimals in range. */
  | 'BAD_AMOUNT'
  /** Another request is processing the same notification right now; Guanaitong will come back. */
  | 'IN_PROGRESS'
  /** The store threw or did not answer in time. */
  | 'STORE_FAILED'
  /** `onPaid`/`onPayFailed` threw or rejected. */
  | 'HANDLER_FAILED'
  /** `onPaid`/`onPayFailed` did not settle within `handlerTimeoutMs`. */
  | 'HANDLER_TIMEOUT'
  /** `findOrder` found no such order, or its amount or buyer differ from the notification. */
  | 'ORDER_MISMATCH'
  /**
   * A key or value holds `&` or `=`. Guanaitong's signed string joins fields with them, so such a
   * notification could be a re-split of another one (a forgery with a genuine sign); this client
   * never sends either raw. Checked before anything else.
   */
  | 'RESERVED_CHARACTER'
  /** A field named `appsecret`: the signing rule puts the secret under that name, so the field itself is never signed. */
  | 'RESERVED_NAME'
