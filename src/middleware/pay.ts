import bodyParser from 'body-parser'
import type { Request, RequestHandler, Response } from 'express'
import { GatError, GuanaitongError, OUTER_TRADE_NO_EXISTS_CODE, ParamError } from '../errors'
import { ConfigError } from '../errors'
import { toLogger, type Log } from '../observe/log'
import { traceNotify } from '../observe/telemetry'
import { paymentFromPayAnswer } from '../settle/pay-answer'
import { asRejection, createSettlement, type SettleOutcome } from '../settle/settle'
import type { PayParams, PayRouteOptions } from '../types'
import { notifyAnswer } from './answer'

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

function logFailure(logger: Log, answer: ErrorAnswer, err: unknown): void {
  const message = `[express-guanaitong] pay answered ${answer.status}: ${err instanceof Error ? err.message : String(err)}`
  if (answer.status >= 500) logger.error(message, { ...answer.body })
  else logger.warn(message, { ...answer.body })
}

type SettleAnswer = (req: Request, params: PayParams, tradeNo: string) => Promise<boolean>

/**
 * Settles the order from the pay answer (`settleOnPay`), through the same core and store key as
 * the notification. Resolves whether it settled; never rejects: the employee has paid either way,
 * and a pay left unsettled here is settled by the notification.
 */
function settlesOnPay(options: PayRouteOptions, logger: Log): SettleAnswer | undefined {
  if (!options.onPaid || options.settleOnPay === false) return undefined
  const { appId, store, storeTimeoutMs } = options
  if (typeof appId !== 'string' || appId === '') throw new ConfigError('payRoute with onPaid needs appId, to settle under the notification\'s key')
  const settle = createSettlement({ ...options, onPaid: options.onPaid })
  const now = options.now ?? Date.now
  return async (req, params, tradeNo) => {
    let outcome!: SettleOutcome
    // A `guanaitong.notify` span with source `pay`, like a notification's (docs/observability.md).
    await traceNotify('pay', async () => {
      try {
        const notification = paymentFromPayAnswer(appId, params, tradeNo, now())
        outcome = await settle({ notification, req, source: 'pay', store, storeTimeoutMs })
      } catch (err) {
        outcome = { answer: 'fail', rejection: asRejection(err) }
      }
      return notifyAnswer(outcome, params.outer_trade_no)
    })
    if (outcome.answer === 'success') return true
    const { rejection } = outcome
    logger.warn(`[express-guanaitong] ${params.outer_trade_no} was paid (trade ${tradeNo}) but not settled from the pay answer ` +
      `(${rejection.reason}: ${rejection.detail}); the notification will settle it`, {
      reason: rejection.reason, outerTradeNo: params.outer_trade_no, tradeNo, source: 'pay',
    })
    return false
  }
}

/**
 * `POST /pay`: takes the order from a JSON or form body, lets `preparePayment` fill in what the
 * server must decide (buyer, amount), adds `notify_url`, sends the pay, and settles the order
 * from the answer. Answers `{trade_no, outer_trade_no, settled}`, 400 naming the field, 409 for a
 * reused order number, 502 upstream, 504 on timeout.
 */
export function payRoute(options: PayRouteOptions): RequestHandler {
  const { client, preparePayment, notifyUrl } = options
  const logger = toLogger(options.logger)
  const settleAnswer = settlesOnPay(options, logger)
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
      const answer: Record<string, unknown> = { trade_no: tradeNo, outer_trade_no: params.outer_trade_no }
      if (settleAnswer) answer.settled = await settleAnswer(req, params as PayParams, tradeNo)
      res.status(200).json(answer)
    }
    send().catch((err: unknown) => {
      const answer = errorAnswer(err, params, sending)
      logFailure(logger, answer, err)
      if (!res.headersSent) res.status(answer.status).json(answer.body)
    })
  }
}
