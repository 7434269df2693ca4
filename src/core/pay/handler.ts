import { closingHeaders, type CoreRequest, type CoreResponse } from '../http'
import { readPayBody } from './body'
import { payRejection, type PayRejection } from './answers'
import { buildPayParams } from './params'
import { notifyAnswer } from '../notify/answer'
import { paymentFromPayAnswer } from '../settle/pay-answer'
import { asRejection, createSettlement, type SettleOutcome } from '../settle/settle'
import { hasUnsettledLedger, unsettledKey, watchUnsettled } from '../settle/unsettled'
import { DEFAULTS } from '../../kernel/defaults'
import { ConfigError, errorMessage, GuanaitongError } from '../../kernel/errors'
import { payTradeNo } from '../../kernel/pay-rules'
import { printable } from '../../kernel/printable'
import type { PayParams, PayRequestFields, PayRouteOptions, RejectReason, UnsettledReason } from '../../kernel/types'
import { toLogger, type Log } from '../../observe/log'
import { traceNotify } from '../../observe/telemetry'

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' } as const

function jsonResponse(status: number, body: Record<string, unknown>): CoreResponse {
  return { status, headers: { ...JSON_HEADERS }, body: JSON.stringify(body) }
}

/** Resolves undefined when the order was settled, else why not. */
type SettleAnswer<Req> = (req: Req, params: PayParams, tradeNo: string) => Promise<RejectReason | undefined>

/**
 * Settles the order from the pay answer (`settleOnPay`), through the same core and store key as
 * the notification. Resolves whether it settled; never rejects: the employee has paid either way,
 * and a pay left unsettled here is settled by the notification.
 */
function settlesOnPay<Req>(options: PayRouteOptions, logger: Log): SettleAnswer<Req> | undefined {
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
        outcome = await settle({ notification, req: req as never, source: 'pay', store, storeTimeoutMs })
      } catch (err) {
        outcome = { answer: 'fail', rejection: asRejection(err) }
      }
      return notifyAnswer(outcome, params.outer_trade_no)
    })
    if (outcome.answer === 'success') return undefined
    const { rejection } = outcome
    // A mismatch is not settled by the notification either: it repeats there, and needs a person.
    const mismatch = rejection.reason === 'ORDER_MISMATCH'
    logger[mismatch ? 'error' : 'warn']({
      ...rejection.context, reason: rejection.reason, outerTradeNo: params.outer_trade_no, tradeNo, source: 'pay',
    }, `[express-guanaitong] ${params.outer_trade_no} was paid (trade ${tradeNo}) but not settled from the pay answer ` +
      `(${rejection.reason}: ${rejection.detail}); ${mismatch ? 'onMismatch was called' : 'the notification will settle it'}`)
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
      logger.error({
        reason: 'STORE_FAILED', outerTradeNo: params.outer_trade_no, unsettledReason: reason, tradeNo,
      }, `[express-guanaitong] could not record the unsettled pay ${params.outer_trade_no}: ${errorMessage(err)}`)
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

/** The refusal's answer; logged after it is built, so a logger that throws cannot take the answer away. */
function refusalResponse(rejection: PayRejection, logger: Log): CoreResponse {
  const response = jsonResponse(rejection.status, rejection.body)
  try {
    // A body's parse error can quote the body: escaped, a body cannot write a log line of its own.
    logger[rejection.level](rejection.context, printable(rejection.message, 300))
  } catch {
    // Nothing left to tell anyone.
  }
  return response
}

/**
 * The pay route without a framework: takes the order from a JSON (or form) body, lets
 * `preparePayment` fill in what the server must decide (buyer, amount), adds `notify_url`, sends
 * the pay, and settles the order from the answer. Answers `{trade_no, outer_trade_no, settled}`,
 * or what answers.ts decides for the failure. Built from checked options; never rejects.
 */
export function createPayHandler<Req>(options: PayRouteOptions<unknown, Req>) {
  const { client, preparePayment, notifyUrl, extraPayParams } = options
  const forms = options.payFormBodies ?? false
  const logger = toLogger(options.logger)
  if (!notifyUrl) {
    logger.warn({}, '[express-guanaitong] the pay route sends no notify_url (notifyUrl is not set): Guanaitong will not notify ' +
      'this shop of these payments, and only the pay answer tells what happened')
  }
  const prepare = preparePayment && ((req: Req) => (params: PayRequestFields) => preparePayment(req, params))
  // The shop's callbacks get its framework's request; the settlement core only hands it on.
  const neutral = options as PayRouteOptions
  const settleAnswer = settlesOnPay<Req>(neutral, logger)
  const watch = watchesPay(neutral, logger)
  return async function handlePay(request: CoreRequest<Req>): Promise<CoreResponse> {
    let params: Partial<PayParams> = {}
    let sending = false
    try {
      const body = await readPayBody(request, forms)
      params = await buildPayParams(body, { extraPayParams, notifyUrl }, prepare?.(request.request))
      sending = true
      // A custom client's answer is held to the client's rule too: only a usable trade number settles.
      const tradeNo = payTradeNo(await client.pay(params as PayParams), 200)
      const paid: Record<string, unknown> = { trade_no: tradeNo, outer_trade_no: params.outer_trade_no }
      // Without settling here, only the notification settles the order: watch it until then.
      const unsettled = settleAnswer ? await settleAnswer(request.request, params as PayParams, tradeNo) : 'AWAITING_NOTIFICATION'
      if (settleAnswer) paid.settled = unsettled === undefined
      if (unsettled !== undefined) await watch?.(params as PayParams, tradeNo, unsettled)
      return jsonResponse(200, paid)
    } catch (err) {
      const rejection = payRejection(err, sending ? 'send' : 'prepare', params.outer_trade_no)
      if (rejection.mayHaveCharged) await watch?.(params as PayParams, null, 'AMBIGUOUS')
      const response = refusalResponse(rejection, logger)
      closingHeaders(err instanceof GuanaitongError ? err.code : undefined, response.headers)
      return response
    }
  }
}
