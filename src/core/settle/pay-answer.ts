import { ParamError } from '../../kernel/errors'
import { encodeAttach } from '../../kernel/fields'
import { normalizeAmount } from '../../kernel/money'
import type { Fields, PayParams, Payment } from '../../kernel/types'

/**
 * The payment a pay answered `code: 0` stands for, built from what was sent and the trade number
 * Guanaitong gave back: the seed says the notification will carry the same result. `timestamp`
 * is the time of the answer; `raw` holds the private parameters as sent (no token, no sign):
 * `raw.attach` percent-encoded as the client sent it, the same string the notification carries.
 */
export function paymentFromPayAnswer(appId: string, params: PayParams, tradeNo: string, nowMs: number): Payment {
  const amount = normalizeAmount(params.total_amount)
  if (!amount.ok) throw new ParamError('total_amount', amount.rule) // the client refused it before sending
  const raw: Fields = {}
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null) raw[key] = String(value)
  }
  raw.total_amount = amount.amount
  raw.trade_no = tradeNo
  const attach = typeof params.attach === 'string' ? params.attach : undefined
  if (attach !== undefined) raw.attach = encodeAttach(attach)
  return {
    appId,
    outerTradeNo: params.outer_trade_no,
    tradeNo,
    buyerOpenId: params.buyer_open_id,
    totalAmount: amount.amount,
    totalFen: amount.fen,
    attach: attach ?? '',
    timestamp: Math.floor(nowMs / 1000),
    raw,
  }
}
