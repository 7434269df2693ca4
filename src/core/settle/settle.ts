import { DEFAULTS } from '../../kernel/defaults'
import { errorMessage, GuanaitongError } from '../../kernel/errors'
import { compareOrder } from './order-check'
import { NotifyRejection } from '../rejection'
import { withTimeout } from '../../kernel/timeout'
import { printable } from '../../kernel/printable'
import { toLogger, type Log } from '../../observe/log'
import { traceHandler, traceStep } from '../../observe/telemetry'
import type {
  ChannelMismatch, CrossCheck, Notification, NotifyStore, SettleContext, SettledSummary, SettleOptions, SettleStore,
  TransactionalStore, WatchedFlag,
} from '../../kernel/types'
import { claimKey, completeClaim, keepLease, peekKey, releaseClaim, type HeldClaim } from './claim'
import { fireHook } from './hooks'
import { notificationKey } from './key'
import { decodeMemo, differences, encodeMemo } from './memo'
import { retryBudget } from './retry-budget'
import { forgetUnsettled, unsettledKey } from './unsettled'

type ShopRequest = Parameters<SettleOptions['onPaid']>[1]

/** One payment to settle, from either channel. */
export interface Settlement {
  /** The verified notification, or the payment built from the pay answer. */
  notification: Notification
  /** The request it came with, handed to the shop's callbacks. */
  req: ShopRequest
  /** Which channel: Guanaitong's notification, or the answer to our pay call. */
  source: SettleContext['source']
  /** Where to de-duplicate; without one the handler simply runs. */
  store?: SettleStore
  /** Longest a store call may take, ms; default the settlement's `storeTimeoutMs`. */
  storeTimeoutMs?: number
}

/**
 * What settling came to. `success`: the handler finished and its done-marker is stored (`settled`),
 * or it had finished before (`duplicate`). `fail`: nothing was settled; `rejection` says why.
 */
export type SettleOutcome =
  | { answer: 'success'; how: 'settled' | 'duplicate' }
  | { answer: 'fail'; rejection: NotifyRejection }

/** The store's number for this attempt (`ctx.attempt`), once it gave one; 0 before. */
interface Numbered {
  attempt: number
}

const SETTLED: SettleOutcome = { answer: 'success', how: 'settled' }
const DUPLICATE: SettleOutcome = { answer: 'success', how: 'duplicate' }

/** Anything that is not already a rejection is a handler error: HANDLER_FAILED, with its message. */
export function asRejection(err: unknown): NotifyRejection {
  if (err instanceof NotifyRejection) return err
  return new NotifyRejection('HANDLER_FAILED', errorMessage(err), {}, err)
}

function isTransactional(store: SettleStore): store is TransactionalStore {
  return (store as Partial<TransactionalStore>).transactional === true
}

function canPeek(store: SettleStore): store is SettleStore & CrossCheck {
  return typeof (store as Partial<CrossCheck>).peek === 'function'
}

/**
 * The settlement core, shared by the notification route and the pay answer. Read top to bottom:
 * claim the key, check the order, run the handler under its timeout while the lease is renewed,
 * then mark done or release. It never writes a response: the caller turns the outcome into one.
 */
export function createSettlement(options: SettleOptions) {
  const logger: Log = toLogger(options.logger)
  const handlerTimeoutMs = options.handlerTimeoutMs ?? DEFAULTS.handlerTimeoutMs
  const storeTimeoutMs = options.storeTimeoutMs ?? DEFAULTS.storeTimeoutMs
  const { onPaid, onPayFailed, findOrder, onMismatch } = options
  const budget = retryBudget(options, logger)
  const timedOut = () => new NotifyRejection('HANDLER_TIMEOUT', `handler did not finish within ${handlerTimeoutMs} ms`)

  return async function settle(s: Settlement): Promise<SettleOutcome> {
    const numbered: Numbered = { attempt: 0 }
    let outcome: SettleOutcome
    try {
      if (!s.store) {
        await withTimeout(runHandler(s, { source: s.source, attempt: 1 }), handlerTimeoutMs, timedOut)
        outcome = SETTLED
      } else {
        outcome = await inStore(s, s.store, numbered)
      }
    } catch (err) {
      outcome = { answer: 'fail', rejection: asRejection(err) }
    }
    // Only the notification channel spends Guanaitong's retries; every `fail` counts, the store reachable or not.
    if (s.source === 'notify') {
      const key = notificationKey(s.notification)
      if (outcome.answer === 'success') budget.settled(key)
      else budget.failed(key, s.notification, s.req, numbered.attempt, outcome.rejection.reason)
    }
    return outcome
  }

  async function inStore(s: Settlement, store: SettleStore, numbered: Numbered): Promise<SettleOutcome> {
    let failure: WatchedFlag | undefined
    if (s.notification.tradeNo === '') {
      const checked = await checkFailure(s, store)
      if ('answer' in checked) return checked
      failure = checked
    }
    return isTransactional(store) ? await inTransaction(s, store, failure, numbered) : await withClaim(s, store, failure, numbered)
  }

  /**
   * A failure notice meets the order's payment key before it settles (stores with `peek`): a
   * payment settled there, or being settled, means the channels disagree, and `onPayFailed` must
   * not run (a shop re-opening the order would let the employee pay twice). Otherwise the notice
   * is noted on the payment key, so a payment arriving later is reported too. Resolves with the
   * outcome when the notice is not to settle, else with whether the order is in the ledger.
   */
  async function checkFailure(s: Settlement, store: SettleStore): Promise<SettleOutcome | WatchedFlag> {
    // Without peek the failure key's own answer cannot say: the core removes as before.
    if (!canPeek(store)) return {}
    const paid = await peekKey(store, unsettledKey(s.notification), encodeMemo(s.notification), s.storeTimeoutMs ?? storeTimeoutMs)
    if (paid.status === 'busy') throw inProgress(s.notification)
    if (paid.status === 'open') return { watched: paid.watched }
    channelMismatch(s, 'failed-after-paid', decodeMemo(paid.memo))
    return DUPLICATE
  }

  /** The order is settled: it leaves the ledger, unless the store said it was never in it. */
  function settledOrder(store: SettleStore, n: Notification, watched: boolean | undefined): void {
    if (watched !== false) forgetUnsettled(store, n, logger)
  }

  /** A duplicate: reported when it disagrees with the memo of what settled. */
  function settledBefore(s: Settlement, store: SettleStore, found: WatchedFlag & { memo?: string }, failure: WatchedFlag | undefined): SettleOutcome {
    settledOrder(store, s.notification, (failure ?? found).watched)
    const settled = decodeMemo(found.memo)
    if (settled && differences(s.notification, settled).length > 0) channelMismatch(s, 'differs-from-settled', settled)
    return duplicate(s)
  }

  /** What a payment that just settled had waiting for it: a note from a failure notice is reported. */
  function settledNow(s: Settlement, note: string | undefined): void {
    if (note === undefined || s.notification.tradeNo === '') return
    channelMismatch(s, 'paid-after-failed', decodeMemo(note))
  }

  async function withClaim(s: Settlement, store: NotifyStore, failure: WatchedFlag | undefined, numbered: Numbered): Promise<SettleOutcome> {
    const key = notificationKey(s.notification)
    const storeMs = s.storeTimeoutMs ?? storeTimeoutMs
    const result = await claimKey(store, key, storeMs)
    if (result.status === 'done') return settledBefore(s, store, result, failure)
    if (result.status === 'busy') throw inProgress(s.notification)
    const claim: HeldClaim = {
      store, key, owner: result.owner, attempt: result.attempt, storeTimeoutMs: storeMs, outerTradeNo: s.notification.outerTradeNo,
      memo: encodeMemo(s.notification),
    }
    const done = () => {
      settledOrder(store, s.notification, (failure ?? result).watched)
      settledNow(s, result.note)
      return markDone(claim, s.notification)
    }
    numbered.attempt = claim.attempt
    const stopLease = keepLease(claim, logger, DEFAULTS.leaseRenewalCapMs)
    const work = runHandler(s, { source: s.source, attempt: claim.attempt })
    try {
      await withTimeout(work, handlerTimeoutMs, timedOut)
    } catch (err) {
      const rejection = asRejection(err)
      if (rejection.reason === 'HANDLER_TIMEOUT') {
        // Answered `fail`, but the handler may still finish: keep its claim (and lease) until it
        // does, so a retry meanwhile cannot run it alongside, and one after it reads `success`.
        work.then(
          () => { stopLease(); return done() },
          () => { stopLease(); return releaseClaim(claim, logger) },
        )
      } else {
        stopLease()
        await releaseClaim(claim, logger)
      }
      return { answer: 'fail', rejection }
    }
    stopLease()
    await done()
    return SETTLED
  }

  /**
   * The store runs the handler inside its transaction. The store timeout bounds the wait for a
   * connection and the claim, the handler timeout everything after the handler started. A claim
   * that arrives after its time-out was answered `fail` runs nothing: the transaction rolls back.
   */
  async function inTransaction(s: Settlement, store: TransactionalStore, failure: WatchedFlag | undefined, numbered: Numbered): Promise<SettleOutcome> {
    const storeMs = s.storeTimeoutMs ?? storeTimeoutMs
    let abandoned = false
    let handlerFailed = false
    let markStarted!: () => void
    const started = new Promise<'started'>((resolve) => { markStarted = () => resolve('started') })
    const pending = new Promise<Awaited<ReturnType<TransactionalStore['settle']>>>((resolve) => resolve(
      traceStep('guanaitong.store.settle', () => store.settle(notificationKey(s.notification), (tx, n) => {
        if (abandoned) throw new NotifyRejection('STORE_FAILED', `claimed after the ${storeMs} ms store timeout; rolled back`)
        numbered.attempt = n
        markStarted()
        return runHandler(s, { source: s.source, attempt: n, tx }).catch((err: unknown) => {
          handlerFailed = true
          throw err
        })
      }, encodeMemo(s.notification))),
    ))
    pending.then(
      // Settled now, also when it completes after its time-out was answered `fail` (`done` is read below).
      (result) => {
        if (result?.status !== 'completed') return
        settledOrder(store, s.notification, (failure ?? result).watched)
        settledNow(s, result.note)
      },
      () => {}, // its failure is read below, or after a time-out is answered
    )
    const storeTimedOut = () => new NotifyRejection('STORE_FAILED', `store settle: no answer within ${storeMs} ms`)
    try {
      const first = await withTimeout(Promise.race([pending, started]), storeMs, storeTimedOut)
      const result = first === 'started' ? await withTimeout(pending, handlerTimeoutMs, timedOut) : first
      if (result.status === 'done') return settledBefore(s, store, result, failure)
      if (result.status === 'busy') throw inProgress(s.notification)
      return SETTLED
    } catch (err) {
      abandoned = true
      const rejection = handlerFailed || err instanceof NotifyRejection ? asRejection(err) : storeFailed(err)
      return { answer: 'fail', rejection }
    }
  }

  /**
   * The order check and the shop's handler, in a `guanaitong.handler` span they run inside (the
   * shop's own spans nest under it), timed and counted in flight until they settle.
   */
  function runHandler(s: Settlement, ctx: SettleContext): Promise<void> {
    return traceHandler(s.source, () => checkAndHandle(s, ctx))
  }

  async function checkAndHandle(s: Settlement, ctx: SettleContext): Promise<void> {
    const n = s.notification
    await checkOrder(n, s.req, ctx)
    const handler = n.tradeNo === '' ? onPayFailed : onPaid
    if (handler) await handler(n, s.req, ctx)
    else logger.warn({
      outerTradeNo: n.outerTradeNo, reason: 'PAY_FAILED_UNHANDLED',
    }, `[express-guanaitong] payment ${n.outerTradeNo} failed at Guanaitong (no onPayFailed set)`)
  }

  async function checkOrder(n: Notification, req: ShopRequest, ctx: SettleContext): Promise<void> {
    if (!findOrder || n.tradeNo === '') return
    const mismatch = compareOrder(n, await findOrder(n.outerTradeNo, req, ctx))
    if (!mismatch) return
    if (onMismatch) fireHook(logger, n.outerTradeNo, 'onMismatch', () => onMismatch(mismatch, req))
    // Logged once, by whoever answers (the notify route, or the pay route): the context carries the details.
    throw new NotifyRejection('ORDER_MISMATCH', `payment ${n.outerTradeNo} does not match the order (${mismatch.problem})`, {
      problem: mismatch.problem, outerTradeNo: n.outerTradeNo, totalAmount: n.totalAmount, buyerOpenId: n.buyerOpenId, tradeNo: n.tradeNo,
    })
  }

  /**
   * The two channels disagree about the order (issue 21): logged at error and handed to
   * `onMismatch`, once per delivery that meets the disagreement.
   */
  function channelMismatch(s: Settlement, problem: ChannelMismatch['problem'], settled: SettledSummary | null): void {
    const n = s.notification
    const fields = settled ? differences(n, settled) : []
    const what = {
      'failed-after-paid': 'a failure notice for an order that was paid: onPayFailed not run',
      'paid-after-failed': 'a payment for an order a failure notice was received for: onPaid ran',
      'differs-from-settled': `a duplicate that differs from what settled (${fields.join(', ')}): acknowledged, nothing run`,
    }[problem]
    logger.error({
      reason: 'CHANNEL_MISMATCH', problem, source: s.source, outerTradeNo: n.outerTradeNo, tradeNo: n.tradeNo,
      totalAmount: n.totalAmount, buyerOpenId: n.buyerOpenId, settled, fields,
    }, `[express-guanaitong] ${what}, for ${printable(n.outerTradeNo, 64)}; check it with Guanaitong`)
    if (onMismatch) {
      const mismatch: ChannelMismatch = { problem, notification: n, source: s.source, settled, fields }
      fireHook(logger, n.outerTradeNo, 'onMismatch', () => onMismatch(mismatch, s.req))
    }
  }

  function duplicate(s: Settlement): SettleOutcome {
    // Debug, not info: duplicates are Guanaitong's normal retries, and logging each costs ~30 µs.
    const what = s.source === 'pay' ? 'settlement' : 'notification'
    logger.debug({
      outerTradeNo: s.notification.outerTradeNo, reason: 'DUPLICATE', source: s.source,
    }, `[express-guanaitong] duplicate ${what} for ${s.notification.outerTradeNo}: settled before, acknowledged without running the handler`)
    return DUPLICATE
  }

  /**
   * The handler finished, so the outcome is `success` whatever happens here: answering `fail`
   * would make Guanaitong retry and run the handler a second time.
   */
  async function markDone(claim: HeldClaim, n: Notification): Promise<void> {
    try {
      if (!(await completeClaim(claim))) {
        logger.warn({
          outerTradeNo: n.outerTradeNo, reason: 'LEASE_LOST',
        }, `[express-guanaitong] lease on ${n.outerTradeNo} expired before the handler finished; ` +
          'another request may have run it too (raise the store lease, or keep onPaid idempotent on tradeNo)')
      }
    } catch {
      logger.error({ reason: 'STORE_FAILED', outerTradeNo: n.outerTradeNo }, `[express-guanaitong] handler finished for ${n.outerTradeNo} but the done-marker was not stored; ` +
        'a later duplicate may run it again')
    }
  }
}

function inProgress(n: Notification): NotifyRejection {
  return new NotifyRejection('IN_PROGRESS',
    `${n.outerTradeNo} is being settled by another request; Guanaitong will retry`, { outerTradeNo: n.outerTradeNo })
}

function storeFailed(err: unknown): NotifyRejection {
  const detail = err instanceof GuanaitongError && err.cause !== undefined ? errorMessage(err.cause) : errorMessage(err)
  return new NotifyRejection('STORE_FAILED', `store settle failed: ${detail}`, {}, err)
}
