import type { NextFunction, Request, Response } from 'express'
import type { Log } from '../../observe/log'
import type { NotifyAnswer } from '../../observe/telemetry'
import { asRejection, type SettleOutcome } from '../../core/settle/settle'
import { notifyState, type NotifyState } from './state'

/** Long enough for any real order number (2–22 characters), short enough to keep a hostile field out of the logs. */
const SHOWN_ORDER_NUMBER = 64

/** The order the request is about: verified when it got that far, else as posted (for the log and span only). */
function outerTradeNoOf(state: NotifyState): string | undefined {
  const value = state.notification?.outerTradeNo ?? state.fields?.outer_trade_no
  return value === undefined ? undefined : value.slice(0, SHOWN_ORDER_NUMBER)
}

/** The outcome as observers see it: the reject reason on `fail`, HANDLED or DUPLICATE on `success`. */
export function notifyAnswer(outcome: SettleOutcome, outerTradeNo: string | undefined): NotifyAnswer {
  if (outcome.answer === 'fail') return { outcome: 'fail', reason: outcome.rejection.reason, outerTradeNo }
  return { outcome: 'success', reason: outcome.how === 'duplicate' ? 'DUPLICATE' : 'HANDLED', outerTradeNo }
}

/**
 * The one place a notification is answered: `success` (the exact body Guanaitong accepts) or
 * `fail` with the rejection's status, logged with its reason and order number; never a stack
 * trace or an HTML page. Tells the router's observer (observe.ts), which ends the span.
 */
export function answerNotification(res: Response, logger: Log, outcome: SettleOutcome): void {
  const state = notifyState(res)
  const outerTradeNo = outerTradeNoOf(state)
  const report = state.answered
  state.answered = undefined
  report?.(notifyAnswer(outcome, outerTradeNo))
  if (outcome.answer === 'fail') {
    const { rejection } = outcome
    logger[rejection.level](rejection.message, { outerTradeNo, reason: rejection.reason, ...rejection.context })
  }
  if (res.headersSent) return
  const body = outcome.answer
  res.statusCode = outcome.answer === 'fail' ? outcome.rejection.status : 200
  res.setHeader('Content-Type', 'text/plain; charset=utf-8')
  res.setHeader('Content-Length', String(body.length))
  res.end(body)
}

type AsyncMiddleware = (req: Request, res: Response, next: NextFunction) => Promise<void>

/**
 * Express 4 ignores rejected promises from middleware: anything a piece throws (a rejection, or
 * a bug) is answered `fail` here, so nothing escapes as a 500 page.
 */
export function guarded(logger: Log, middleware: AsyncMiddleware) {
  return function guardedMiddleware(req: Request, res: Response, next: NextFunction): void {
    middleware(req, res, next).catch((err: unknown) => {
      answerNotification(res, logger, { answer: 'fail', rejection: asRejection(err) })
    })
  }
}
