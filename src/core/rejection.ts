import { GuanaitongError } from '../kernel/errors'
import type { RejectReason } from '../kernel/types'

/**
 * HTTP status sent with each `fail`. Guanaitong reads only the body, so the status is for the
 * shop's own monitoring: 4xx means the request itself is wrong, 5xx that a retry may succeed.
 */
const STATUS: Record<RejectReason, number> = {
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
  STORE_FAILED: 503,
  HANDLER_FAILED: 500,
  HANDLER_TIMEOUT: 503,
  ORDER_MISMATCH: 409,
  RESERVED_CHARACTER: 400,
  RESERVED_NAME: 400,
}

/** Reasons that say something is wrong on the shop's side rather than with the request. */
const SHOP_SIDE: ReadonlySet<RejectReason> = new Set(['STORE_FAILED', 'HANDLER_FAILED', 'HANDLER_TIMEOUT', 'ORDER_MISMATCH'])

/** Why a notification was answered `fail`: a reason code, a message for the log, and context fields. */
export class NotifyRejection extends GuanaitongError {
  declare readonly code: RejectReason
  readonly reason: RejectReason
  /** The message without the package prefix and reason, for callers that word their own. */
  readonly detail: string
  readonly context: Record<string, unknown>

  constructor(reason: RejectReason, message: string, context: Record<string, unknown> = {}, cause?: unknown) {
    super(`notification rejected (${reason}): ${message}`, reason, STATUS[reason], { cause })
    this.name = 'NotifyRejection'
    this.reason = reason
    this.detail = message
    this.context = context
  }

  /** Errors the shop must look at are logged at error level; bad requests at warn. */
  get level(): 'warn' | 'error' {
    return SHOP_SIDE.has(this.reason) ? 'error' : 'warn'
  }
}
