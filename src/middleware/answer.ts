import type { NextFunction, Request, Response } from 'express'
import { errorMessage } from '../errors'
import { NotifyRejection } from '../notify/rejection'
import type { Logger } from '../types'

/** The exact body Guanaitong accepts: `success`, nothing else. */
export function answerSuccess(res: Response): void {
  if (res.headersSent) return
  res.statusCode = 200
  res.setHeader('Content-Type', 'text/plain; charset=utf-8')
  res.setHeader('Content-Length', '7')
  res.end('success')
}

/** Logs the rejection with its reason code and answers `fail`; never a stack trace or an HTML page. */
export function answerFail(res: Response, logger: Logger, rejection: NotifyRejection): void {
  logger[rejection.level](rejection.message, { reason: rejection.reason, ...rejection.context })
  if (res.headersSent) return
  res.statusCode = rejection.status
  res.setHeader('Content-Type', 'text/plain; charset=utf-8')
  res.setHeader('Content-Length', '4')
  res.end('fail')
}

/** Anything that is not already a rejection is a bug or a handler error: HANDLER_FAILED, with its message. */
export function asRejection(err: unknown): NotifyRejection {
  if (err instanceof NotifyRejection) return err
  const message = errorMessage(err)
  return new NotifyRejection('HANDLER_FAILED', message, {}, err)
}

type AsyncMiddleware = (req: Request, res: Response, next: NextFunction) => Promise<void>

/** Express 4 ignores rejected promises from middleware: catch here, so nothing escapes as a 500 page. */
export function guarded(logger: Logger, middleware: AsyncMiddleware) {
  return function guardedMiddleware(req: Request, res: Response, next: NextFunction): void {
    middleware(req, res, next).catch((err: unknown) => answerFail(res, logger, asRejection(err)))
  }
}
