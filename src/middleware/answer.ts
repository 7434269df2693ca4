import type { NextFunction, Request, Response } from 'express'
import { asRejection, type SettleOutcome } from '../settle/settle'
import type { Logger } from '../types'

/**
 * The one place a notification is answered: `success` (the exact body Guanaitong accepts) or
 * `fail` with the rejection's status, logged with its reason; never a stack trace or an HTML page.
 */
export function answerNotification(res: Response, logger: Logger, outcome: SettleOutcome): void {
  if (outcome.answer === 'fail') {
    const { rejection } = outcome
    logger[rejection.level](rejection.message, { reason: rejection.reason, ...rejection.context })
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
export function guarded(logger: Logger, middleware: AsyncMiddleware) {
  return function guardedMiddleware(req: Request, res: Response, next: NextFunction): void {
    middleware(req, res, next).catch((err: unknown) => {
      answerNotification(res, logger, { answer: 'fail', rejection: asRejection(err) })
    })
  }
}
