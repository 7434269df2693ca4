import type { NextFunction, Request, Response } from 'express'
import type { Log } from '../../observe/log'
import { notifyResponse, shownOrderNumber } from '../../core/notify/answer'
import { asRejection, type SettleOutcome } from '../../core/settle/settle'
import { sendResponse } from './http'
import { notifyState } from './state'

/** Answers a notification in the standalone middleware chain with what the core makes of the outcome. */
export function answerNotification(res: Response, logger: Log, outcome: SettleOutcome): void {
  const state = notifyState(res)
  sendResponse(res, notifyResponse(outcome, logger, shownOrderNumber(state.fields, state.notification)))
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
