/**
 * What the pay route answers for each way a pay can fail, decided in one table: reason → HTTP
 * status → log level → whether the employee may have been charged. Framework-neutral: the
 * Express glue (adapters/express/pay.ts) only sends `status` and `body` and logs at `level`.
 */
import { STATUS_CODES } from 'node:http'
import { errorMessage, errorProperty, GatError, GuanaitongError, MESSAGE_PREFIX, OUTER_TRADE_NO_EXISTS_CODE, ParamError, type PayReason } from '../../kernel/errors'

export type { PayReason }

interface Row {
  status: number
  level: 'warn' | 'error'
  /** The employee may have been charged by this request: the answer says `ambiguous: true`. */
  mayHaveCharged: boolean
  /** The body's `code` and `msg` when the reason fixes them; else they come from the error (see payRejection). */
  code?: string
  msg?: string
}

const NOT_SENT_MSG = 'the payment could not be sent, nothing was charged; try again'
const PREPARE_FAILED_MSG = 'the pay request could not be prepared; see the server log'

const TABLE: Record<PayReason, Row> = {
  INVALID_PARAM: { status: 400, level: 'warn', mayHaveCharged: false },
  // The 4xx of the error itself is used when it has one (401 from preparePayment, 413 from the parser).
  BAD_REQUEST: { status: 400, level: 'warn', mayHaveCharged: false },
  PREPARE_FAILED: { status: 500, level: 'error', mayHaveCharged: false, code: 'INTERNAL', msg: PREPARE_FAILED_MSG },
  NOT_SENT: { status: 503, level: 'error', mayHaveCharged: false, code: 'UNAVAILABLE', msg: NOT_SENT_MSG },
  OUTER_TRADE_NO_EXISTS: { status: 409, level: 'warn', mayHaveCharged: false },
  REFUSED: { status: 502, level: 'error', mayHaveCharged: false },
  TIMEOUT: { status: 504, level: 'error', mayHaveCharged: true },
  OUTCOME_UNKNOWN: { status: 502, level: 'error', mayHaveCharged: true },
}

/**
 * Where the pay route was when it failed: `prepare` (reading the body, `preparePayment`), before
 * anything goes to the client; `send` from the call of `client.pay` on.
 */
export type PayPhase = 'prepare' | 'send'

/** A failed pay: its reason, the answer to send, and how to log it. `cause` is what was thrown. */
export class PayRejection extends GuanaitongError {
  readonly reason: PayReason
  readonly level: 'warn' | 'error'
  /** True when the employee may have been charged: the answer carries `ambiguous: true`. */
  readonly mayHaveCharged: boolean
  /** The JSON body for the cashier page. Never the shop's internal error messages. */
  readonly body: Record<string, unknown>

  constructor(reason: PayReason, body: Record<string, unknown>, detail: string, cause: unknown, status = TABLE[reason].status) {
    super(`pay answered ${status} (${reason}): ${detail}`, reason, status, { cause })
    this.name = 'PayRejection'
    this.reason = reason
    this.level = TABLE[reason].level
    this.mayHaveCharged = TABLE[reason].mayHaveCharged
    this.body = body
  }

  /** Context for the log line: the body plus, for a failed call, how it failed and the HTTP status it got (0: none). */
  get context(): Record<string, unknown> {
    const cause = this.cause
    return cause instanceof GatError
      ? { reason: this.reason, ...this.body, kind: cause.kind, path: cause.path, sent: cause.sent, upstreamStatus: cause.status }
      : { reason: this.reason, ...this.body }
  }
}

function gatReason(err: GatError): PayReason {
  if (!err.sent) return 'NOT_SENT'
  if (err.ambiguous) return err.kind === 'timeout' ? 'TIMEOUT' : 'OUTCOME_UNKNOWN'
  if (err.kind === 'api' && err.code === OUTER_TRADE_NO_EXISTS_CODE) return 'OUTER_TRADE_NO_EXISTS'
  return 'REFUSED'
}

/** A 4xx the thrown value asks for itself (body-parser's errors, the shop's own `status: 401`). */
function clientStatus(err: unknown): number | null {
  if (err instanceof GatError) return null
  const status = errorProperty(err, 'status')
  return typeof status === 'number' && Number.isInteger(status) && status >= 400 && status < 500 ? status : null
}

/** `CONFLICT` for 409, `NOT_FOUND` for 404: the status's own name, for a refusal that names no code of its own. */
function statusName(status: number): string {
  return (STATUS_CODES[status] ?? 'BAD_REQUEST').toUpperCase().replace(/[^A-Z0-9]+/g, '_')
}

/** What a 4xx refusal tells the cashier page: body-parser's `type`, the error's string `code`, else the status's name. */
function refusal(err: unknown, status: number): { code: string | number; msg: string } {
  const type = errorProperty(err, 'type')
  const own = err instanceof GuanaitongError ? err.code : errorProperty(err, 'code')
  const code = typeof type === 'string' ? type : typeof own === 'string' || typeof own === 'number' ? own : statusName(status)
  // The package's own messages carry its log prefix, which means nothing on a cashier page.
  const message = errorMessage(err)
  return { code, msg: message.startsWith(MESSAGE_PREFIX) ? message.slice(MESSAGE_PREFIX.length) : message }
}

/**
 * The answer for `err`, thrown (or rejected with: anything, `undefined` included) during `phase`.
 * `outerTradeNo` is echoed in upstream answers so the cashier page knows which order to check.
 *
 * In the `send` phase, what is not a ParamError or a GatError came from a custom client that broke
 * the GatClient contract: nobody can say whether the pay went out, so it is OUTCOME_UNKNOWN.
 */
export function payRejection(err: unknown, phase: PayPhase, outerTradeNo?: unknown): PayRejection {
  const detail = errorMessage(err)
  if (err instanceof ParamError) {
    return new PayRejection('INVALID_PARAM', { code: err.code, msg: err.msg, field: err.field }, detail, err)
  }
  const order = typeof outerTradeNo === 'string' ? outerTradeNo : undefined
  if (phase === 'prepare') {
    const status = clientStatus(err)
    const { code, msg } = TABLE.PREPARE_FAILED
    if (status === null) return new PayRejection('PREPARE_FAILED', { code, msg }, detail, err)
    return new PayRejection('BAD_REQUEST', refusal(err, status), detail, err, status)
  }
  if (!(err instanceof GatError)) {
    return new PayRejection('OUTCOME_UNKNOWN', {
      code: 'UNKNOWN', msg: 'the client failed in an unexpected way: the payment may have happened; check the order before paying again',
      outer_trade_no: order, ambiguous: true,
    }, detail, err)
  }
  const reason = gatReason(err)
  const ambiguous = TABLE[reason].mayHaveCharged
  const { code = err.code, msg = err.msg } = TABLE[reason]
  return new PayRejection(reason, { code, msg, outer_trade_no: order, trace_id: err.traceId, ambiguous }, detail, err)
}

/** The table itself, for the documentation test: every reason's status, level and charge. */
export const PAY_ANSWERS: Readonly<Record<PayReason, Readonly<Row>>> = TABLE
