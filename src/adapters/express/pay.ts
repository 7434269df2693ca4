import bodyParser from 'body-parser'
import type { Request, RequestHandler, Response } from 'express'
import { payTradeNo } from '../../kernel/pay-rules'
import { DEFAULTS } from '../../kernel/defaults'
import { ConfigError, errorMessage, GatError, GuanaitongError } from '../../kernel/errors'
import { toLogger, type Log } from '../../observe/log'
import { traceNotify } from '../../observe/telemetry'
import { payAnswer, type PayRejection } from '../../core/pay/answers'
import { buildPayParams } from '../../core/pay/params'
import { printable } from '../../kernel/printable'
import { paymentFromPayAnswer } from '../../core/settle/pay-answer'
import { asRejection, createSettlement, type SettleOutcome } from '../../core/settle/settle'
import { hasUnsettledLedger, unsettledKey, watchUnsettled } from '../../core/settle/unsettled'
import type { PayParams, PayRequestFields, PayRouteOptions, RejectReason, UnsettledReason } from '../../kernel/types'
import { checkOptions, PAY_ROUTE_RULES } from '../../kernel/validate'
import { notifyAnswer } from './answer'

const json = bodyParser.json({ limit: '16kb' })
const form = bodyParser.urlencoded({ extended: false, limit: '16kb' })

/**
 * The body types the route reads. JSON only by default: a page on another site can POST a form
 * (or text/plain) to the route with the buyer's cookies and no CORS preflight, while a JSON body
 * needs one, which the browser refuses unless the shop's CORS policy allows that site.
 */
function bodyTypes(req: Request, forms: boolean): void {
  const header = req.headers['content-type']
  const hasBody = header !== undefined || Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined
  if (!hasBody) return
  const type = (header ?? '').split(';')[0].trim().toLowerCase()
  if (type === 'application/json' || (forms && type === 'application/x-www-form-urlencoded')) return
  throw new GuanaitongError(`the pay route takes ${forms ? 'JSON or form' : 'JSON'} bodies, not "${printable(type, 60)}"` +
    (forms ? '' : ' (a form could be posted from another site; set payFormBodies to accept forms behind your own CSRF protection)'),
  'UNSUPPORTED_MEDIA_TYPE', 415)
}

/** Runs the body parsers (they skip a body another parser already read, or of another type). */
function parseBody(req: Request, res: Response, forms: boolean): Promise<void> {
  bodyTypes(req, forms)
  const parsers: RequestHandler[] = forms ? [json, form] : [json]
  return parsers.reduce<Promise<void>>(
    (previous, parser) => previous.then(() => new Promise((resolve, reject) => {
      parser(req, res, (err?: unknown) => (err ? reject(err) : resolve()))
    })),
    Promise.resolve(),
  )
}

/** Answers first, then logs: a logger that throws must not leave the cashier page without an answer. */
function answer(res: Response, logger: Log, rejection: PayRejection): void {
  if (!res.headersSent) res.status(rejection.status).json(rejection.body)
  try {
    // body-parser quotes the body in its JSON errors: escaped, a body cannot write a log line of its own.
    logger[rejection.level](printable(rejection.message, 300), rejection.context)
  } catch {
    // Nothing left to tell anyone.
  }
}

/** Resolves undefined when the order was settled, else why not. */
type SettleAnswer = (req: Request, params: PayParams, tradeNo: string) => Promise<RejectReason | undefined>

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
    if (outcome.answer === 'success') return undefined
    const { rejection } = outcome
    // A mismatch is not settled by the notification either: it repeats there, and needs a person.
    const mismatch = rejection.reason === 'ORDER_MISMATCH'
    logger[mismatch ? 'error' : 'warn'](`[express-guanaitong] ${params.outer_trade_no} was paid (trade ${tradeNo}) but not settled from the pay answer ` +
      `(${rejection.reason}: ${rejection.detail}); ${mismatch ? 'onMismatch was called' : 'the notification will settle it'}`, {
      ...rejection.context, reason: rejection.reason, outerTradeNo: params.outer_trade_no, tradeNo, source: 'pay',
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
function watchesPay(options: PayRouteOptions, logger: Log): WatchPay | undefined {
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
 * from the answer. Answers `{trade_no, outer_trade_no, settled}`, or what pay/answers.ts decides
 * for the failure.
 */
export function payRoute(options: PayRouteOptions): RequestHandler {
  checkOptions('payRoute()', options, PAY_ROUTE_RULES, '{ client: createClient({ appId, appSecret }), notifyUrl }')
  const { client, preparePayment, notifyUrl, extraPayParams } = options
  const forms = options.payFormBodies ?? false
  const logger = toLogger(options.logger)
  if (!notifyUrl) {
    logger.warn('[express-guanaitong] the pay route sends no notify_url (notifyUrl is not set): Guanaitong will not notify ' +
      'this shop of these payments, and only the pay answer tells what happened')
  }
  const prepare = preparePayment && ((req: Request) => (params: PayRequestFields) => preparePayment(req, params))
  const settleAnswer = settlesOnPay(options, logger)
  const watch = watchesPay(options, logger)
  return function pay(req: Request, res: Response): void {
    let params: Partial<PayParams> = {}
    let sending = false
    const send = async () => {
      await parseBody(req, res, forms)
      params = await buildPayParams(req.body, { extraPayParams, notifyUrl }, prepare?.(req))
      sending = true
      // A custom client's answer is held to the client's rule too: only a usable trade number settles.
      const tradeNo = payTradeNo(await client.pay(params as PayParams), 200)
      const paid: Record<string, unknown> = { trade_no: tradeNo, outer_trade_no: params.outer_trade_no }
      // Without settling here, only the notification settles the order: watch it until then.
      const unsettled = settleAnswer ? await settleAnswer(req, params as PayParams, tradeNo) : 'AWAITING_NOTIFICATION'
      if (settleAnswer) paid.settled = unsettled === undefined
      if (unsettled !== undefined) await watch?.(params as PayParams, tradeNo, unsettled)
      res.status(200).json(paid)
    }
    send().catch(async (err: unknown) => {
      const rejection = payAnswer(err, sending ? 'send' : 'prepare', params.outer_trade_no)
      if (rejection.mayHaveCharged) await watch?.(params as PayParams, null, 'AMBIGUOUS')
      answer(res, logger, rejection)
    })
  }
}
