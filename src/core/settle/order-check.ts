import { decimalToFen } from '../../kernel/money'
import type { Notification, OrderMismatch, OrderSummary } from '../../kernel/types'

/**
 * The order's amount in fen, by value, from what a database driver hands back: fen as a number,
 * a string ("1250", node-postgres' BIGINT) or a bigint; or an amount as a decimal string
 * ("12.5000", NUMERIC(12,4)) or a number. Null when it cannot be read exactly: no floats.
 */
function orderFen(order: OrderSummary): bigint | null {
  const fen: unknown = order.totalFen
  if (fen !== undefined && fen !== null) {
    if (typeof fen === 'bigint') return fen
    if (typeof fen === 'number') return Number.isSafeInteger(fen) ? BigInt(fen) : null
    if (typeof fen === 'string') return /^[0-9]+$/.test(fen) ? BigInt(fen) : null
    return null
  }
  const amount: unknown = order.totalAmount
  if (typeof amount === 'string') return decimalToFen(amount)
  // A number prints as its shortest decimal (12.5 → "12.5"), read like a string; 0.1 + 0.2 stays a mismatch.
  if (typeof amount === 'number' && Number.isFinite(amount)) return decimalToFen(String(amount))
  return null
}

/**
 * Compares a verified payment with the shop's own order. A valid signature proves the
 * notification came from Guanaitong, not that it is for the order and amount the shop expects.
 */
export function compareOrder(n: Notification, order: OrderSummary | null | undefined): OrderMismatch | null {
  if (!order) return { problem: 'unknown-order', notification: n, order: null }
  const fen = orderFen(order)
  // No amount, or one that cannot be read ("1.00 ", "1,000.00"), is a mismatch: never wave a payment through.
  if (fen === null || fen !== BigInt(n.totalFen)) return { problem: 'amount', notification: n, order }
  if (order.buyerOpenId !== undefined && order.buyerOpenId !== n.buyerOpenId) return { problem: 'buyer', notification: n, order }
  return null
}
