import { DEFAULTS } from '../kernel/defaults'
import { GuanaitongError } from '../kernel/errors'
import type { UnsettledRecord } from '../kernel/types'

/** A bad argument to a ledger method: a bug in the caller, never data from outside. */
function invalid(store: string, message: string): GuanaitongError {
  return new GuanaitongError(`${store}: ${message}`, 'INVALID_ARGUMENT')
}

const TEXT_FIELDS = ['key', 'appId', 'outerTradeNo', 'totalAmount', 'buyerOpenId', 'reason'] as const

/**
 * Checks a record given to `watchUnsettled` and returns a copy with its fields in one order, so
 * a stored record reads back deep-equal whatever store keeps it.
 */
export function checkUnsettledRecord(store: string, record: UnsettledRecord): UnsettledRecord {
  if (record === null || typeof record !== 'object') throw invalid(store, 'watchUnsettled needs a record object')
  for (const name of TEXT_FIELDS) {
    if (typeof record[name] !== 'string' || record[name] === '') throw invalid(store, `unsettled record ${name} must be a non-empty string`)
  }
  if (record.tradeNo !== null && (typeof record.tradeNo !== 'string' || record.tradeNo === '')) {
    throw invalid(store, 'unsettled record tradeNo must be a non-empty string or null')
  }
  for (const name of ['totalFen', 'since', 'deadline'] as const) {
    if (!Number.isSafeInteger(record[name])) throw invalid(store, `unsettled record ${name} must be a whole number`)
  }
  return ordered(record)
}

export function checkLedgerKey(store: string, key: string): void {
  if (typeof key !== 'string' || key === '') throw invalid(store, 'unsettled key must be a non-empty string')
}

/** `limit` of listUnsettled (default) or takeDueUnsettled (required): a positive whole number. */
export function checkLimit(store: string, limit: number | undefined): number {
  if (limit === undefined) return DEFAULTS.unsettledListLimit
  if (!Number.isSafeInteger(limit) || limit < 1) throw invalid(store, `limit must be a positive whole number; got ${String(limit)}`)
  return limit
}

export function checkTake(store: string, now: number, leaseMs: number): void {
  if (!Number.isSafeInteger(now)) throw invalid(store, `takeDueUnsettled now must be epoch milliseconds; got ${String(now)}`)
  if (!Number.isSafeInteger(leaseMs) || leaseMs < 1) throw invalid(store, `takeDueUnsettled leaseMs must be a positive whole number; got ${String(leaseMs)}`)
}

/** The stored form: every field but the deadline, which the store keeps as the sort order. */
export function encodeUnsettled(record: UnsettledRecord): string {
  const { deadline: _deadline, ...rest } = record
  return JSON.stringify(rest)
}

export function decodeUnsettled(json: string, deadline: number): UnsettledRecord {
  return ordered({ ...(JSON.parse(json) as Omit<UnsettledRecord, 'deadline'>), deadline })
}

function ordered(r: UnsettledRecord): UnsettledRecord {
  return {
    key: r.key,
    appId: r.appId,
    outerTradeNo: r.outerTradeNo,
    totalAmount: r.totalAmount,
    totalFen: r.totalFen,
    buyerOpenId: r.buyerOpenId,
    tradeNo: r.tradeNo,
    reason: r.reason,
    since: r.since,
    deadline: r.deadline,
  }
}
