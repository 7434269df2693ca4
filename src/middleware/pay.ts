import bodyParser from 'body-parser'
import type { Request, RequestHandler, Response } from 'express'
import { payAnswer, type PayRejection } from '../pay/answers'
import type { Logger, PayParams, PayRouteOptions } from '../types'

const parsers: RequestHandler[] = [
  bodyParser.json({ limit: '16kb' }),
  bodyParser.urlencoded({ extended: false, limit: '16kb' }),
]

/** Runs the body parsers (they skip a body another parser already read, or of another type). */
function parseBody(req: Request, res: Response): Promise<void> {
  return parsers.reduce<Promise<void>>(
    (previous, parser) => previous.then(() => new Promise((resolve, reject) => {
      parser(req, res, (err?: unknown) => (err ? reject(err) : resolve()))
    })),
    Promise.resolve(),
  )
}

/** Answers first, then logs: a logger that throws must not leave the cashier page without an answer. */
function answer(res: Response, logger: Logger, rejection: PayRejection): void {
  if (!res.headersSent) res.status(rejection.status).json(rejection.body)
  try {
    logger[rejection.level](rejection.message, rejection.context)
  } catch {
    // Nothing left to tell anyone.
  }
}

/**
 * `POST /pay`: takes the order from a JSON or form body, lets `preparePayment` fill in what the
 * server must decide (buyer, amount), adds `notify_url`, sends the pay. Answers `{trade_no}`, or
 * what pay/answers.ts decides for the failure.
 */
export function payRoute(options: PayRouteOptions): RequestHandler {
  const { client, preparePayment, notifyUrl } = options
  const logger = options.logger ?? console
  return function pay(req: Request, res: Response): void {
    let params: Partial<PayParams> = {}
    let sending = false
    const send = async () => {
      await parseBody(req, res)
      const body: unknown = req.body
      if (body && typeof body === 'object' && !Array.isArray(body)) params = { ...(body as Partial<PayParams>) }
      // Where Guanaitong posts the result is the server's decision, never the browser's.
      delete params.notify_url
      if (preparePayment) params = (await preparePayment(req, params)) ?? params
      if (notifyUrl) params.notify_url = notifyUrl
      sending = true
      const tradeNo = await client.pay(params as PayParams)
      res.status(200).json({ trade_no: tradeNo, outer_trade_no: params.outer_trade_no })
    }
    send().catch((err: unknown) => answer(res, logger, payAnswer(err, sending ? 'send' : 'prepare', params.outer_trade_no)))
  }
}
