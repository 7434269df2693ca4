import { DEFAULTS } from '../../kernel/defaults'
import type { Log } from '../../observe/log'
import type { Notification, RejectReason, SettleOptions } from '../../kernel/types'
import { fireHook } from './hooks'

/** Payments whose failed answers one router remembers at most; past that the oldest is forgotten. */
export const RETRY_BUDGET_MEMORY = 10_000

type ShopRequest = Parameters<SettleOptions['onPaid']>[1]

/** What the settlement core tells the budget after each notification it answered. */
export interface RetryBudget {
  /** A `fail` for this payment. `storeAttempt`: the store's number for this attempt, 0 when it gave none. */
  failed(key: string, n: Notification, req: ShopRequest, storeAttempt: number, reason: RejectReason): void
  /** A `success`: the payment is settled, its count is dropped. */
  settled(key: string): void
}

const OFF: RetryBudget = { failed() {}, settled() {} }

/**
 * Calls `onRetryBudgetLow` once per payment before Guanaitong's retries run out. Two counts:
 * - the store's attempt number, shared by every instance on the store, but only for attempts
 *   that won a claim. The alert fires at the attempt numbered exactly `retryBudgetThreshold`,
 *   so instances sharing the store fire it once between them;
 * - this router's own count of `fail` answers for the payment, in memory: it also sees the
 *   attempts no store can count, a store that could not be reached (STORE_FAILED) and a claim
 *   held by another request (IN_PROGRESS). One instance's answers only; a restart forgets them.
 * Whichever reaches the threshold first fires it, once per payment and instance.
 */
export function retryBudget(options: SettleOptions, logger: Log): RetryBudget {
  const hook = options.onRetryBudgetLow
  if (!hook) return OFF
  const threshold = options.retryBudgetThreshold ?? DEFAULTS.retryBudgetThreshold
  /** Failed answers per payment key, oldest first; `alerted` once the hook was called for it. */
  const seen = new Map<string, { failures: number; alerted: boolean }>()
  return {
    failed(key, n, req, storeAttempt, reason) {
      let entry = seen.get(key)
      if (!entry) {
        if (seen.size >= RETRY_BUDGET_MEMORY) seen.delete(seen.keys().next().value!)
        entry = { failures: 0, alerted: false }
        seen.set(key, entry)
      }
      entry.failures += 1
      if (entry.alerted || (storeAttempt !== threshold && entry.failures < threshold)) return
      entry.alerted = true
      const info = { notification: n, attempt: Math.max(storeAttempt, entry.failures), budget: DEFAULTS.retryBudget, reason }
      fireHook(logger, n.outerTradeNo, 'onRetryBudgetLow', () => hook(info, req))
    },
    settled(key) {
      seen.delete(key)
    },
  }
}
