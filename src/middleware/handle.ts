import type { Request, Response } from 'express'
import { DEFAULTS } from '../defaults'
import { completeClaim, keepLease, releaseClaim, type HeldClaim } from '../notify/dedupe'
import { compareOrder } from '../notify/order-check'
import { NotifyRejection } from '../notify/rejection'
import { withTimeout } from '../notify/timeout'
import { toLogger, type Log } from '../observe/log'
import { traceHandler } from '../observe/telemetry'
import type { HandleOptions, Notification } from '../types'
import { answerFail, answerSuccess, asRejection, guarded } from './answer'
import { notifyState } from './state'

type Handler = (n: Notification, req: Request) => unknown

/** Calls a hook the shop gave for alerting; its own failure is logged, never changes the answer. */
async function callHook(logger: Log, n: Notification, name: string, hook: () => unknown): Promise<void> {
  try {
    await hook()
  } catch (err) {
    logger.error(`[express-guanaitong] ${name} threw: ${err instanceof Error ? err.message : String(err)}`, {
      outerTradeNo: n.outerTradeNo, reason: 'HOOK_FAILED', hook: name,
    })
  }
}

/**
 * Runs `onPaid` (or `onPayFailed`) and answers `success` only after it resolved and the claim was
 * marked done; answers `fail` and releases the claim when it threw or timed out, so Guanaitong's
 * next attempt runs it again.
 */
export function handleNotification(options: HandleOptions) {
  const logger = toLogger(options.logger)
  const handlerTimeoutMs = options.handlerTimeoutMs ?? DEFAULTS.handlerTimeoutMs
  const threshold = options.retryBudgetThreshold ?? DEFAULTS.retryBudgetThreshold
  const { onPaid, onPayFailed, findOrder, onMismatch, onRetryBudgetLow } = options
  const timedOut = () => new NotifyRejection('HANDLER_TIMEOUT', `handler did not finish within ${handlerTimeoutMs} ms`)

  async function checkOrder(n: Notification, req: Request): Promise<void> {
    if (!findOrder || n.tradeNo === '') return
    const mismatch = compareOrder(n, await findOrder(n.outerTradeNo, req))
    if (!mismatch) return
    logger.error(`[express-guanaitong] notification for ${n.outerTradeNo} does not match the order (${mismatch.problem})`, {
      reason: 'ORDER_MISMATCH', problem: mismatch.problem, outerTradeNo: n.outerTradeNo, totalAmount: n.totalAmount,
      buyerOpenId: n.buyerOpenId, tradeNo: n.tradeNo,
    })
    if (onMismatch) await callHook(logger, n, 'onMismatch', () => onMismatch(mismatch, req))
    throw new NotifyRejection('ORDER_MISMATCH', `${mismatch.problem} for ${n.outerTradeNo}`, { outerTradeNo: n.outerTradeNo })
  }

  async function run(n: Notification, req: Request): Promise<void> {
    await checkOrder(n, req)
    const handler: Handler | undefined = n.tradeNo === '' ? onPayFailed : onPaid
    if (handler) await handler(n, req)
    else logger.warn(`[express-guanaitong] payment ${n.outerTradeNo} failed at Guanaitong (no onPayFailed set)`, {
      outerTradeNo: n.outerTradeNo, reason: 'PAY_FAILED_UNHANDLED',
    })
  }

  /**
   * A handler that threw frees its claim at once. One that timed out may still finish: its claim
   * stays (the lease is no longer renewed) and is settled when it does, so a retry arriving
   * meanwhile cannot run it a second time, and one arriving after it resolved reads `success`.
   */
  async function settleFailure(n: Notification, claim: HeldClaim, work: Promise<void>, rejection: NotifyRejection, req: Request) {
    if (rejection.reason === 'HANDLER_TIMEOUT') {
      work.then(() => markDone(claim, n, logger), () => releaseClaim(claim, logger))
    } else await releaseClaim(claim, logger)
    if (onRetryBudgetLow && claim.attempt >= threshold) {
      const info = { notification: n, attempt: claim.attempt, budget: DEFAULTS.retryBudget, reason: rejection.reason }
      await callHook(logger, n, 'onRetryBudgetLow', () => onRetryBudgetLow(info, req))
    }
  }

  return guarded(logger, async function handle(req: Request, res: Response) {
    const state = notifyState(res)
    const n = state.notification
    if (!n) throw new Error('handleNotification needs verifyNotification before it')
    const claim = state.claim
    const stopLease = claim ? keepLease(claim, logger) : undefined
    const work = traceHandler('notify', () => run(n, req))
    try {
      await withTimeout(work, handlerTimeoutMs, timedOut)
    } catch (err) {
      stopLease?.()
      const rejection = asRejection(err)
      if (claim) await settleFailure(n, claim, work, rejection, req)
      return answerFail(res, logger, rejection)
    }
    stopLease?.()
    if (claim) await markDone(claim, n, logger)
    answerSuccess(res)
  })
}

/**
 * The handler finished, so the answer is `success` whatever happens here: answering `fail` would
 * make Guanaitong retry and run the handler a second time.
 */
async function markDone(claim: HeldClaim, n: Notification, logger: Log): Promise<void> {
  try {
    if (!(await completeClaim(claim))) {
      logger.warn(`[express-guanaitong] lease on ${n.outerTradeNo} expired before the handler finished; ` +
        'another request may have run it too (raise the store lease, or keep onPaid idempotent on tradeNo)', {
        outerTradeNo: n.outerTradeNo, reason: 'LEASE_LOST',
      })
    }
  } catch (err) {
    logger.error(`[express-guanaitong] handler finished for ${n.outerTradeNo} but the done-marker was not stored; ` +
      'a later duplicate may run it again', { reason: 'STORE_FAILED', outerTradeNo: n.outerTradeNo })
  }
}
