import bodyParser from 'body-parser'
import type { Request, RequestHandler, Response } from 'express'
import { errorMessage, GatError, GuanaitongError, OUTER_TRADE_NO_EXISTS_CODE, ParamError } from '../errors'
import { ConfigError } from '../errors'
import { DEFAULTS } from '../defaults'
import { paymentFromPayAnswer } from '../settle/pay-answer'
import { asRejection, createSettlement, type SettleOutcome } from '../settle/settle'
import { hasUnsettledLedger, unsettledKey, watchUnsettled } from '../settle/unsettled'
import type { Logger, PayParams, PayRouteOptions, RejectReason, UnsettledReason } from '../types'

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

/** Resolves undefined when the order was settled, else why not. */
type SettleAnswer = (req: Request, params: PayParams, tradeNo: string) => Promise<RejectReason | undefined>

/**
 * Settles the order from the pay answer (`settleOnPay`), through the same core and store key as
 * the notification. Resolves whether it settled; never rejects: the employee has paid either way,
 * and a pay left unsettled here is settled by the notification.
 */
function settlesOnPay(options: PayRouteOptions, logger: Logger): SettleAnswer | undefined {
  if (!options.onPaid || options.settleOnPay === false) return undefined
  const { appId, store, storeTimeoutMs } = options
  if (typeof appId !== 'string' || appId === '') throw new ConfigError('payRoute with onPaid needs appId, to settle under the notification\'s key')
  const settle = createSettlement({ ...options, onPaid: options.onPaid })
  const now = options.now ?? Date.now
  return async (req, params, tradeNo) => {
    let outcome: SettleOutcome
    try {
      const notification = paymentFromPayAnswer(appId, params, tradeNo, now())
      outcome = await settle({ notification, req, source: 'pay', store, storeTimeoutMs })
    } catch (err) {
      outcome = { answer: 'fail', rejection: asRejection(err) }
    }
    if (outcome.answer === 'success') return undefined
    const { rejection } = outcome
    logger.warn(`[express-guanaitong] ${params.outer_trade_no} was paid (trade ${tradeNo}) but not settled from the pay answer ` +
      `(${rejection.reason}: ${rejection.detail}); the notification will settle it`, {
      reason: rejection.reason, outerTradeNo: params.outer_trade_no, tradeNo, source: 'pay',
    })
    return rejection.reason
  }
}

type WatchPay = (params: PayParams, tradeNo: string | null, reason: UnsettledReason) => Promise<void>

/**
 * Records a pay that may have charged the employee and is not settled, in the store's unsettled
 * ledger, to be reported if nothing settles it within `unsettledAfterMs`. Undefined when the
 * store keeps no ledger. Never rejects: what it records must not change the pay's answer.
 */
function watchesPay(options: PayRouteOptions, logger: Logger): WatchPay | undefined {
  const { appId, store } = options
  if (!hasUnsettledLedger(store) || typeof appId !== 'string' || appId === '') return undefined
  const afterMs = options.unsettledAfterMs ?? DEFAULTS.unsettledAfterMs
  const storeTimeoutMs = options.storeTimeoutMs ?? DEFAULTS.storeTimeoutMs
  const now = options.now ?? Date.now
  return async (params, tradeNo, reason) => {
    const since = now()
    let payment
    try {
      payment = paymentFromPayAnswer(appId, params, tradeNo ?? '', since)
    } catch (err) {
      // The client checked the amount before sending, so this is a bug; the pay is logged whole.
      logger.error(`[express-guanaitong] could not record the unsettled pay ${params.outer_trade_no}: ${errorMessage(err)}`, {
        reason: 'STORE_FAILED', outerTradeNo: params.outer_trade_no, unsettledReason: reason, tradeNo,
      })
      return
    }
    await watchUnsettled(store, {
      key: unsettledKey(payment),
      appId,
      outerTradeNo: payment.outerTradeNo,
      totalAmount: payment.totalAmount,
      totalFen: payment.totalFen,
      buyerOpenId: payment.buyerOpenId,
      tradeNo,
      reason,
      since,
      deadline: since + afterMs,
    }, logger, storeTimeoutMs)
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
  const logger = options.logger ?? console
  const settleAnswer = settlesOnPay(options, logger)
  const watch = watchesPay(options, logger)
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
      // Without settling here, only the notification settles the order: watch it until then.
      const unsettled = settleAnswer ? await settleAnswer(req, params as PayParams, tradeNo) : 'AWAITING_NOTIFICATION'
      if (settleAnswer) answer.settled = unsettled === undefined
      if (unsettled !== undefined) await watch?.(params as PayParams, tradeNo, unsettled)
      res.status(200).json(answer)
    }
    send().catch(async (err: unknown) => {
      const answer = errorAnswer(err, params, sending)
      logFailure(logger, answer, err)
      if (err instanceof GatError && err.ambiguous && sending) await watch?.(params as PayParams, null, 'AMBIGUOUS')
      if (!res.headersSent) res.status(answer.status).json(answer.body)
    })
  }
}
