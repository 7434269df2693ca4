import type { NextFunction, Request, Response } from 'express'
import { NotifyRejection } from '../notify/rejection'
import type { Log } from '../observe/log'
import type { NotifyAnswer } from '../observe/telemetry'
import { notifyState, type NotifyState } from './state'

/** Long enough for any real order number (2–22 characters), short enough to keep a hostile field out of the logs. */
const SHOWN_ORDER_NUMBER = 64

/** The order the request is about: verified when it got that far, else as posted (for the log only). */
function outerTradeNoOf(state: NotifyState): string | undefined {
  const value = state.notification?.outerTradeNo ?? state.fields?.outer_trade_no
  return value === undefined ? undefined : value.slice(0, SHOWN_ORDER_NUMBER)
}

/** Tells whoever observes this notification (see observe.ts) how it was answered; once. */
function answered(res: Response, outcome: NotifyAnswer['outcome'], reason: string): void {
  const state = notifyState(res)
  const report = state.answered
  if (!report) return
  state.answered = undefined
  report({ outcome, reason, outerTradeNo: outerTradeNoOf(state) })
}

/**
 * The exact body Guanaitong accepts: `success`, nothing else. `reason` says why: the handler ran
 * (HANDLED) or had already run for this payment (DUPLICATE).
 */
export function answerSuccess(res: Response, reason: 'HANDLED' | 'DUPLICATE' = 'HANDLED'): void {
  answered(res, 'success', reason)
  if (res.headersSent) return
  res.statusCode = 200
  res.setHeader('Content-Type', 'text/plain; charset=utf-8')
  res.setHeader('Content-Length', '7')
  res.end('success')
}

/** Logs the rejection with its reason code and answers `fail`; never a stack trace or an HTML page. */
export function answerFail(res: Response, logger: Log, rejection: NotifyRejection): void {
  answered(res, 'fail', rejection.reason)
  logger[rejection.level](rejection.message, {
    outerTradeNo: outerTradeNoOf(notifyState(res)), reason: rejection.reason, ...rejection.context,
  })
  if (res.headersSent) return
  res.statusCode = rejection.status
  res.setHeader('Content-Type', 'text/plain; charset=utf-8')
  res.setHeader('Content-Length', '4')
  res.end('fail')
}

/** Anything that is not already a rejection is a bug or a handler error: HANDLER_FAILED, with its message. */
export function asRejection(err: unknown): NotifyRejection {
  if (err instanceof NotifyRejection) return err
  const message = err instanceof Error ? err.message : String(err)
  return new NotifyRejection('HANDLER_FAILED', message, {}, err)
}

type AsyncMiddleware = (req: Request, res: Response, next: NextFunction) => Promise<void>

/** Express 4 ignores rejected promises from middleware: catch here, so nothing escapes as a 500 page. */
export function guarded(logger: Log, middleware: AsyncMiddleware) {
  return function guardedMiddleware(req: Request, res: Response, next: NextFunction): void {
    middleware(req, res, next).catch((err: unknown) => answerFail(res, logger, asRejection(err)))
  }
}
