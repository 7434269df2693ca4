import type { Notification } from '../../kernel/types'

/**
 * The settlement key: application, outcome and the shop's order number. Never the timestamp or
 * sign, which change on every retry. The pay answer settles under the same key as the
 * notification, so the two channels run `onPaid` once between them. The appid is the configured
 * one (verified) and holds no colon, so the key is unambiguous whatever the order number contains.
 */
export function notificationKey(n: Pick<Notification, 'appId' | 'tradeNo' | 'outerTradeNo'>): string {
  return `${n.appId}:${n.tradeNo === '' ? 'failed' : 'paid'}:${n.outerTradeNo}`
}
