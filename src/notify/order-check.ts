import { amountToFen } from '../money'
import type { Notification, OrderMismatch, OrderSummary } from '../types'

/**
 * Compares a verified payment with the shop's own order. A valid signature proves the
 * notification came from Guanaitong, not that it is for the order and amount the shop expects.
 */
export function compareOrder(n: Notification, order: OrderSummary | null | undefined): OrderMismatch | null {
  if (!order) return { problem: 'unknown-order', notification: n, order: null }
  const orderFen = order.totalFen ?? (order.totalAmount !== undefined ? amountToFen(order.totalAmount) : null)
  // No amount, or one that cannot be read ("1.00 ", "1,000.00"), is a mismatch: never wave a payment through.
  if (orderFen === null || orderFen !== n.totalFen) return { problem: 'amount', notification: n, order }
  if (order.buyerOpenId !== undefined && order.buyerOpenId !== n.buyerOpenId) return { problem: 'buyer', notification: n, order }
  return null
}
