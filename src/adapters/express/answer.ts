import type { NextFunction, Request, Response } from 'express'
import type { Log } from '../../observe/log'
import { notifyAnswer, notifyResponse, shownOrderNumber } from '../../core/notify/answer'
import { asRejection, type SettleOutcome } from '../../core/settle/settle'
import { sendResponse } from './http'
import { notifyState } from './state'

/**
 * Answers a notification in the standalone middleware chain: tells the chain's observer
 * (observe.ts), which ends the span, then sends what the core makes of the outcome.
 */
export function answerNotification(res: Response, logger: Log, outcome: SettleOutcome): void {
  const state = notifyState(res)
  const outerTradeNo = shownOrderNumber(state.fields, state.notification)
  const report = state.answered
  state.answered = undefined
  report?.(notifyAnswer(outcome, outerTradeNo))
  sendResponse(res, notifyResponse(outcome, logger, outerTradeNo))
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
