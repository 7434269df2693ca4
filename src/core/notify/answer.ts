import { closingHeaders, type CoreResponse } from '../http'
import type { SettleOutcome } from '../settle/settle'
import type { Log } from '../../observe/log'
import type { NotifyAnswer } from '../../observe/telemetry'
import type { Fields, Notification } from '../../kernel/types'

/** Long enough for any real order number (2–22 characters), short enough to keep a hostile field out of the logs. */
const SHOWN_ORDER_NUMBER = 64

/** The order a notification is about: verified when it got that far, else as posted (for the log and span only). */
export function shownOrderNumber(fields: Fields | undefined, notification: Notification | undefined): string | undefined {
  const value = notification?.outerTradeNo ?? fields?.outer_trade_no
  return value === undefined ? undefined : value.slice(0, SHOWN_ORDER_NUMBER)
}

/** The outcome as observers see it: the reject reason on `fail`, HANDLED or DUPLICATE on `success`. */
export function notifyAnswer(outcome: SettleOutcome, outerTradeNo: string | undefined): NotifyAnswer {
  if (outcome.answer === 'fail') return { outcome: 'fail', reason: outcome.rejection.reason, outerTradeNo }
  return { outcome: 'success', reason: outcome.how === 'duplicate' ? 'DUPLICATE' : 'HANDLED', outerTradeNo }
}

/**
 * The one place a notification's outcome becomes a response: `success` (the exact body
 * Guanaitong accepts) or `fail` with the rejection's status, logged with its reason and order
 * number; never a stack trace or an HTML page.
 */
export function notifyResponse(outcome: SettleOutcome, logger: Log, outerTradeNo: string | undefined): CoreResponse {
  const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8' }
  if (outcome.answer === 'success') return { status: 200, headers, body: 'success' }
  const { rejection } = outcome
  logger[rejection.level]({ outerTradeNo, reason: rejection.reason, ...rejection.context }, rejection.message)
  return { status: rejection.status, headers: closingHeaders(rejection.reason, headers), body: 'fail' }
}
