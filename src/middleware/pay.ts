import bodyParser from 'body-parser'
import type { Request, RequestHandler, Response } from 'express'
import { GatError, GuanaitongError, OUTER_TRADE_NO_EXISTS_CODE, ParamError } from '../errors'
import { checkString, OUTER_TRADE_NO_LENGTH } from '../client/validate'
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

interface ErrorAnswer {
  status: number
  body: Record<string, unknown>
}

/** Maps what went wrong to the status a cashier page can act on. */
function errorAnswer(err: unknown, params: Partial<PayParams>, sending: boolean): ErrorAnswer {
  const outerTradeNo = typeof params.outer_trade_no === 'string' ? params.outer_trade_no : undefined
  if (err instanceof ParamError) return { status: 400, body: { code: err.code, msg: err.msg, field: err.field } }
  if (err instanceof GatError) {
    const body = { code: err.code, msg: err.msg, outer_trade_no: outerTradeNo, trace_id: err.traceId }
    if (err.kind === 'api' && err.code === OUTER_TRADE_NO_EXISTS_CODE) return { status: 409, body }
    if (err.kind === 'timeout') return { status: 504, body: { ...body, ambiguous: err.ambiguous } }
    return { status: 502, body: { ...body, ambiguous: err.ambiguous } }
  }
  // body-parser's and the app's own errors (preparePayment may throw one with a 4xx status).
  const status = (err as { status?: unknown }).status
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const code = err instanceof GuanaitongError ? err.code : ((err as { type?: string }).type ?? 'BAD_REQUEST')
    return { status, body: { code, msg: (err as Error).message } }
  }
  if (sending) {
    // The client failed before sending (e.g. its token cache is unreachable): nothing reached Guanaitong.
    return { status: 503, body: { code: 'UNAVAILABLE', msg: 'the payment could not be sent, nothing was charged; try again', outer_trade_no: outerTradeNo } }
  }
  return { status: 500, body: { code: 'INTERNAL', msg: 'the pay request could not be prepared; see the server log' } }
}

function logFailure(logger: Logger, answer: ErrorAnswer, err: unknown): void {
  const message = `[express-guanaitong] pay answered ${answer.status}: ${err instanceof Error ? err.message : String(err)}`
  if (answer.status >= 500) logger.error(message, { ...answer.body })
  else logger.warn(message, { ...answer.body })
}

/**
 * `POST /pay`: takes the order from a JSON or form body, lets `preparePayment` fill in what the
 * server must decide (buyer, amount), adds `notify_url`, sends the pay. Answers `{trade_no}`,
 * 400 naming the field, 409 for a reused order number, 502 upstream, 504 on timeout.
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
      // The order number is what a shop looks its order up by: checked before preparePayment sees it.
      const outerTradeNo = checkString('outer_trade_no', params.outer_trade_no, ...OUTER_TRADE_NO_LENGTH)
      if (preparePayment) params = (await preparePayment(req, { ...params, outer_trade_no: outerTradeNo })) ?? params
      if (notifyUrl) params.notify_url = notifyUrl
      sending = true
      const tradeNo = await client.pay(params as PayParams)
      res.status(200).json({ trade_no: tradeNo, outer_trade_no: params.outer_trade_no })
    }
    send().catch((err: unknown) => {
      const answer = errorAnswer(err, params, sending)
      logFailure(logger, answer, err)
      if (!res.headersSent) res.status(answer.status).json(answer.body)
    })
  }
}
