/**
 * A notification as the core reads it (src/core/notify), what settling it tells the shop's callbacks
 * (src/core/settle), and what they are told when the two channels disagree.
 */
import type { Fields } from './fields'
import type { RejectReason } from './errors'

/** A verified notification. `tradeNo` is non-empty for a payment, empty for a failure notice. */
export interface Notification {
  /** `appid`: the application the notification is for (always the configured one once verified). */
  appId: string
  /** `outer_trade_no`: the shop's own order number, as sent in the pay call. */
  outerTradeNo: string
  /** `trade_no`: Guanaitong's trade number; empty when the payment failed. */
  tradeNo: string
  /** `buyer_open_id`: the employee who paid. */
  buyerOpenId: string
  /** `total_amount` exactly as received, e.g. "100.00". */
  totalAmount: string
  /** `total_amount` in integer fen (分), e.g. 10000. */
  totalFen: number
  /**
   * `attach` as the shop passed it to `pay()`: the client percent-encodes `%`, `&` and `=` on the
   * way out (src/kernel/fields.ts) and they are decoded here. `raw.attach` is the encoded string, as the
   * notification carried it or (settled from the pay answer) as the client sent it. Empty when none.
   */
  attach: string
  /** `timestamp` of this delivery attempt, Unix seconds. */
  timestamp: number
  /** Every field as received, including `sign`. */
  raw: Readonly<Fields>
}

/** A successful payment: `tradeNo` is non-empty. */
export type Payment = Notification

/** A failed payment: `tradeNo` is empty. */
export type PayFailedNotice = Notification

/** The third argument of `onPaid` and `onPayFailed`: which channel settles, and how. */
export interface SettleContext<Tx = unknown> {
  /** `notify`: Guanaitong's notification; `pay`: the synchronous answer to the pay call (`settleOnPay`). */
  source: 'pay' | 'notify'
  /** Attempts of this settlement that reached the handler so far, this one included (1 for the first). */
  attempt: number
  /** The connection inside the store's transaction (a pg `PoolClient`, a mysql2 `PoolConnection`); undefined for other stores. */
  tx?: Tx
}

/**
 * What `findOrder` returns for an order the shop knows. Amounts are compared by value, as
 * database drivers return them: `totalFen: '1250'` (a BIGINT from node-postgres), `1250n`, or
 * `totalAmount: '12.5000'` (NUMERIC(12,4)) all match a notification of 12.50.
 */
export interface OrderSummary {
  /** The order's amount in yuan: a decimal string with any number of decimals, or a number. Give this or `totalFen`. */
  totalAmount?: string | number
  /** The order's amount in fen: a whole number, a string of digits, or a bigint. Used when given. */
  totalFen?: number | string | bigint
  /** The employee who placed the order; compared when given. */
  buyerOpenId?: string
}

/** Passed to `onMismatch`. */
export interface OrderMismatch {
  /** What disagreed. */
  problem: 'unknown-order' | 'amount' | 'buyer'
  /** The verified notification. */
  notification: Notification
  /** The order `findOrder` returned, if any. */
  order: OrderSummary | null
}

/** What settled an order (or what a failure notice said), as the store's memo or note keeps it. */
export interface SettledSummary {
  /** `paid`: a payment with a trade number; `failed`: a failure notice. */
  outcome: 'paid' | 'failed'
  /** Guanaitong's trade number; empty for `failed`. A value over 200 characters as the memo writes it (a character outside printable ASCII counts 6, a quote or backslash 2) is kept as `sha256:<hex>` of it. */
  tradeNo: string
  /** The amount in yuan, two decimals, e.g. "19.90". */
  totalAmount: string
  /** The amount in integer fen, e.g. 1990. */
  totalFen: number
  /** The employee. A value over 200 characters as the memo writes it (a character outside printable ASCII counts 6, a quote or backslash 2) is kept as `sha256:<hex>` of it. */
  buyerOpenId: string
}

/** Passed to `onMismatch` when the two channels (the pay answer, the notifications) disagree about an order. */
export interface ChannelMismatch {
  /**
   * `failed-after-paid`: a failure notice for an order already paid, or being paid: `onPayFailed`
   * does not run, the notice is acknowledged `success`. `paid-after-failed`: a payment for an
   * order a failure notice was received for: `onPaid` still runs (the employee was charged), then
   * this is reported. `differs-from-settled`: a duplicate of a settled payment whose trade number,
   * amount or buyer differ (`fields`): acknowledged `success`, nothing runs.
   */
  problem: 'failed-after-paid' | 'paid-after-failed' | 'differs-from-settled'
  /** What arrived now: the verified notification, or the payment built from the pay answer. */
  notification: Notification
  /** Which channel it came from. */
  source: SettleContext['source']
  /**
   * What the store recorded before: the settled payment, or the failure notice received. Null
   * when that settlement left no memo (a done-marker written before this version, or a store
   * that keeps none).
   */
  settled: SettledSummary | null
  /** The fields that differ between `notification` and `settled` (`outcome` when a payment meets a failure). */
  fields: Array<'outcome' | 'tradeNo' | 'totalAmount' | 'buyerOpenId'>
}

/** What `onMismatch` receives: tell them apart by `problem`. */
export type Mismatch = OrderMismatch | ChannelMismatch

/** Passed to `onRetryBudgetLow`. */
export interface RetryBudgetInfo {
  /** The notification that keeps failing. */
  notification: Notification
  /**
   * Failed attempts counted for this payment, this one included: the store's attempt number, or
   * this instance's count of `fail` answers when that is higher.
   */
  attempt: number
  /** Guanaitong's documented maximum number of attempts. */
  budget: number
  /** Why this attempt failed. */
  reason: RejectReason
}
