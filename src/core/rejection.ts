import { GuanaitongError } from '../kernel/errors'
import type { RejectReason } from '../kernel/types'

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
    // Its status is the reason's own (ERROR_STATUS): 4xx when the request is wrong, 5xx when a retry may succeed.
    super(`notification rejected (${reason}): ${message}`, reason, { cause })
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
