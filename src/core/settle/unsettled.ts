/**
 * Pays that may have charged the employee and that no settlement has confirmed: the pay route
 * records them in the store's ledger, the settlement core removes them, and a sweep hands the
 * ones still open at their deadline to `onUnsettled`. See docs/unsettled-pays.md.
 */
import { toLogger, type Log } from '../../observe/log'
import { DEFAULTS } from '../../kernel/defaults'
import { causeMessage, errorMessage, GuanaitongError } from '../../kernel/errors'
import { withTimeout } from '../../kernel/timeout'
import type { Logger, Notification, NotifyStore, SettleStore, TransactionalStore, UnsettledLedger, UnsettledRecord } from '../../kernel/types'
import { claimKey, releaseClaim } from './claim'
import { notificationKey } from './key'

const LEDGER_METHODS = ['watchUnsettled', 'resolveUnsettled', 'listUnsettled', 'takeDueUnsettled'] as const

/** Whether the store keeps the unsettled ledger (stores may leave it out). */
export function hasUnsettledLedger<S>(store: S): store is S & UnsettledLedger {
  return typeof store === 'object' && store !== null &&
    LEDGER_METHODS.every((name) => typeof (store as Record<string, unknown>)[name] === 'function')
}

/** The ledger key of an order: its payment's settlement key, whichever outcome settles it. */
export function unsettledKey(order: Pick<Notification, 'appId' | 'outerTradeNo'>): string {
  return notificationKey({ appId: order.appId, outerTradeNo: order.outerTradeNo, tradeNo: 'paid' })
}

/**
 * Records a pay in the ledger, waiting at most `storeTimeoutMs`. Never rejects: the pay's answer
 * must not change. A record that could not be stored is logged whole, so it is not lost.
 */
export async function watchUnsettled(store: UnsettledLedger, record: UnsettledRecord, logger: Log, storeTimeoutMs: number): Promise<void> {
  try {
    await bounded(() => store.watchUnsettled(record), storeTimeoutMs)
  } catch (err) {
    logger.error({
      reason: 'STORE_FAILED', outerTradeNo: record.outerTradeNo, unsettled: { ...record },
    }, `[express-guanaitong] could not record the unsettled pay ${record.outerTradeNo} (${record.reason}): ` +
      `${causeMessage(err)}; nobody will be told if it stays unsettled: check it by hand`)
  }
}

/**
 * The order was settled (its payment, or a failure notice): it no longer needs watching. Not
 * awaited by the settlement, which must not wait on it; a failure is logged, and the sweep will
 * find the order settled before reporting it.
 */
export function forgetUnsettled(store: SettleStore | undefined, n: Notification, logger: Log): void {
  if (!hasUnsettledLedger(store)) return
  const key = unsettledKey(n)
  Promise.resolve().then(() => store.resolveUnsettled(key)).catch((err: unknown) => {
    logger.warn({
      reason: 'STORE_FAILED', outerTradeNo: n.outerTradeNo,
    }, `[express-guanaitong] could not remove the settled ${n.outerTradeNo} from the unsettled ledger: ${causeMessage(err)}`)
  })
}

/** The pays the store's ledger holds, soonest deadline first, at most `limit` (default 1 000): for an admin page. */
export async function listUnsettled(store: SettleStore, options: { limit?: number } = {}): Promise<UnsettledRecord[]> {
  return ledgerOf(store, 'listUnsettled').listUnsettled(options.limit ?? DEFAULTS.unsettledListLimit)
}

function ledgerOf<S>(store: S, caller: string): S & UnsettledLedger {
  if (!hasUnsettledLedger(store)) {
    throw new GuanaitongError(`${caller}: the store keeps no unsettled ledger (watchUnsettled, resolveUnsettled, listUnsettled, ` +
      'takeDueUnsettled); every store of this package does', 'INVALID_OPTION')
  }
  return store
}

/**
 * Runs `call` (a throw becomes a rejection), rejecting after `ms` if it has not settled: with
 * STORE_FAILED for a store's call, HANDLER_TIMEOUT for the shop's hook.
 */
function bounded<T>(call: () => T | Promise<T>, ms: number, code: 'STORE_FAILED' | 'HANDLER_TIMEOUT' = 'STORE_FAILED'): Promise<T> {
  return withTimeout(new Promise<T>((resolve) => resolve(call())), ms, () => new GuanaitongError(`did not finish within ${ms} ms`, code))
}

type Probe = 'settled' | 'busy' | 'open'
const PROBE = Symbol('unsettled probe')

/**
 * Whether the key was settled after all. The ledger is told when an order settles, but that
 * write can fail or land before the pay recorded it: the settlement store has the last word.
 * A claim store is probed with a claim given back at once; a transactional store by its
 * `status`, or else with a transaction whose work throws, so it rolls back.
 */
async function probe(store: SettleStore, key: string, outerTradeNo: string, logger: Log, storeTimeoutMs: number): Promise<Probe> {
  if ((store as Partial<TransactionalStore>).transactional === true) {
    const transactional = store as TransactionalStore
    if (typeof transactional.status === 'function') {
      const status = await bounded(() => transactional.status!(key), storeTimeoutMs)
      return status === 'open' ? 'open' : status === 'done' ? 'settled' : 'busy'
    }
    try {
      const { status } = await bounded(() => (store as TransactionalStore).settle(key, () => { throw PROBE }), storeTimeoutMs)
      return status === 'busy' ? 'busy' : 'settled'
    } catch (err) {
      if (err === PROBE) return 'open'
      throw err
    }
  }
  const claimStore = store as NotifyStore
  const result = await claimKey(claimStore, key, storeTimeoutMs)
  if (result.status === 'claimed') {
    await releaseClaim({ store: claimStore, key, owner: result.owner, attempt: result.attempt, storeTimeoutMs, outerTradeNo }, logger)
    return 'open'
  }
  return result.status === 'done' ? 'settled' : 'busy'
}

/** The paid key first; a failure notice settles the order as well. */
async function settledMeanwhile(store: SettleStore, record: UnsettledRecord, logger: Log, storeTimeoutMs: number): Promise<Probe> {
  const paid = await probe(store, record.key, record.outerTradeNo, logger, storeTimeoutMs)
  if (paid !== 'open') return paid
  const failedKey = notificationKey({ appId: record.appId, outerTradeNo: record.outerTradeNo, tradeNo: '' })
  return probe(store, failedKey, record.outerTradeNo, logger, storeTimeoutMs)
}

/**
 * One sweep: takes the records that came due (atomically, so several instances sweeping at once
 * take each once), checks each against the settlement store, and reports the open ones. A record
 * is removed once reported, or found settled; one whose hook failed or timed out, or whose order
 * is being settled right now, comes due again later. Resolves with the records reported.
 */
export async function sweepUnsettled(options: SweepOptions): Promise<UnsettledRecord[]> {
  const logger = toLogger(options.logger)
  const store = ledgerOf(options.store, 'sweepUnsettled')
  if (typeof options.onUnsettled !== 'function') {
    throw new GuanaitongError('sweepUnsettled: onUnsettled must be a function (record) => unknown', 'INVALID_OPTION')
  }
  const storeTimeoutMs = positive(options, 'storeTimeoutMs', DEFAULTS.storeTimeoutMs)
  const hookTimeoutMs = positive(options, 'hookTimeoutMs', DEFAULTS.unsettledHookTimeoutMs)
  const retryAfterMs = positive(options, 'retryAfterMs', DEFAULTS.unsettledRetryMs)
  const limit = positive(options, 'limit', DEFAULTS.sweepLimit)
  const now = Math.floor((options.now ?? Date.now)())
  // Long enough for this sweep to finish with the record (two probes of a claim and a release
  // each, then the hook) before another sweep may take it again.
  const leaseMs = Math.ceil(5 * storeTimeoutMs + hookTimeoutMs + retryAfterMs)
  let due: UnsettledRecord[]
  try {
    due = await bounded(() => store.takeDueUnsettled(now, limit, leaseMs), storeTimeoutMs)
  } catch (err) {
    throw new GuanaitongError(`sweepUnsettled: could not take the due records: ${causeMessage(err)}`, 'STORE_FAILED', { cause: err })
  }
  const reported = await Promise.all(due.map((record) => report(record)))
  return due.filter((_, i) => reported[i])

  /** Reports the record unless it was settled meanwhile; resolves whether it did. */
  async function report(record: UnsettledRecord): Promise<boolean> {
    let state: Probe
    try {
      state = await settledMeanwhile(options.store, record, logger, storeTimeoutMs)
    } catch (err) {
      logger.error({ reason: 'STORE_FAILED', outerTradeNo: record.outerTradeNo }, `[express-guanaitong] could not check whether ${record.outerTradeNo} was settled: ${causeMessage(err)}; ` +
        `it comes due again ${leaseMs} ms after this sweep took it`)
      return false
    }
    if (state === 'busy') return false
    if (state === 'settled') {
      logger.debug?.({
        outerTradeNo: record.outerTradeNo,
      }, `[express-guanaitong] ${record.outerTradeNo} was settled after all; dropped from the unsettled ledger`)
      await resolve(record)
      return false
    }
    try {
      await bounded(() => options.onUnsettled({ ...record }), hookTimeoutMs, 'HANDLER_TIMEOUT')
    } catch (err) {
      logger.error({ hook: 'onUnsettled', outerTradeNo: record.outerTradeNo }, `[express-guanaitong] onUnsettled failed for ${record.outerTradeNo}: ${causeMessage(err)}; ` +
        `it comes due again ${leaseMs} ms after this sweep took it`)
      return false
    }
    await resolve(record)
    return true
  }

  /** A record left behind by a failed removal is reported (or dropped) once more: said in the log. */
  async function resolve(record: UnsettledRecord): Promise<void> {
    try {
      await bounded(() => store.resolveUnsettled(record.key), storeTimeoutMs)
    } catch (err) {
      logger.warn({ reason: 'STORE_FAILED', outerTradeNo: record.outerTradeNo }, `[express-guanaitong] could not remove ${record.outerTradeNo} from the unsettled ledger: ${causeMessage(err)}; ` +
        'a later sweep may report it again')
    }
  }
}

/** A positive number from the sweep options (whole for `limit`), or its default. */
function positive(options: SweepOptions, name: 'storeTimeoutMs' | 'hookTimeoutMs' | 'retryAfterMs' | 'limit', fallback: number): number {
  const value = options[name]
  if (value === undefined) return fallback
  const whole = name === 'limit'
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || (whole && !Number.isSafeInteger(value))) {
    throw new GuanaitongError(`sweepUnsettled: ${name} must be a positive ${whole ? 'whole number' : 'number of ms'}; got ${String(value)}`,
      'INVALID_OPTION')
  }
  return value
}

/**
 * Sweeps every `everyMs` on an unref'd timer (it never keeps the process alive), one sweep at a
 * time. Failures are logged. Returns a function that stops it and resolves once a sweep in
 * progress has finished, so the store can be closed after it.
 */
export function startSweeping(options: SweepOptions & { everyMs: number }): () => Promise<void> {
  const logger = toLogger(options.logger)
  let running: Promise<void> | null = null
  const timer = setInterval(() => {
    if (running) return
    running = sweepUnsettled(options).then(() => undefined, (err: unknown) => {
      // A GuanaitongError: its message names the package already.
      logger.error({ reason: 'STORE_FAILED' }, errorMessage(err))
    }).finally(() => { running = null })
  }, options.everyMs)
  timer.unref()
  return async () => {
    clearInterval(timer)
    await running
  }
}

/** Options of `sweepUnsettled()`. */
export interface SweepOptions {
  /** The store the router uses; it must keep the unsettled ledger (every store of this package does). */
  store: SettleStore & UnsettledLedger
  /** Called once per record still unsettled at its deadline. Throw (or take longer than `hookTimeoutMs`) to have it reported again later. */
  onUnsettled: (record: UnsettledRecord) => unknown
  /** Clock in ms. Default `Date.now`. */
  now?: () => number
  /** Most records this sweep takes. Default 100. */
  limit?: number
  /** Where failures are logged. Default `console`. */
  logger?: Logger
  /** Longest `onUnsettled` may take before it counts as failed, ms. Default 30 000. */
  hookTimeoutMs?: number
  /** How much later a record that could not be reported is taken again, ms (after the sweep's own time bound for it). Default 300 000. */
  retryAfterMs?: number
  /** Longest a store call may take, ms. Default 5 000. */
  storeTimeoutMs?: number
}
