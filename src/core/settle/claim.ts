import { NotifyRejection } from '../rejection'
import { withTimeout } from '../../kernel/timeout'
import { errorMessage } from '../../kernel/errors'
import type { Log } from '../../observe/log'
import { traceStep } from '../../observe/telemetry'
import type { ClaimResult, CrossCheck, NotifyStore, PeekResult } from '../../kernel/types'

/** A claim this request holds, and what it needs to settle it. */
export interface HeldClaim {
  store: NotifyStore
  key: string
  owner: string
  attempt: number
  storeTimeoutMs: number
  /** For log lines: every line about a payment names its order. */
  outerTradeNo: string
  /** Stored with the done-marker, for the cross-check of later duplicates. */
  memo?: string
}

/** Runs one store call under the store timeout; an error or a hang becomes STORE_FAILED. */
async function storeCall<T>(operation: string, key: string, storeTimeoutMs: number, call: () => Promise<T>): Promise<T> {
  const failed = (why: string, cause?: unknown) => new NotifyRejection('STORE_FAILED', `store ${operation} failed: ${why}`, { key }, cause)
  // A hang is answered with the rejection itself; only what the store threw is wrapped.
  let hung: NotifyRejection | undefined
  try {
    return await withTimeout(call(), storeTimeoutMs, () => (hung = failed(`no answer within ${storeTimeoutMs} ms`)))
  } catch (err) {
    throw hung !== undefined && err === hung ? err : failed(errorMessage(err), err)
  }
}

/** A claim result the middleware can act on; anything else is a broken store, not a handler failure. */
function isClaimResult(result: unknown): result is ClaimResult {
  const r = result as Partial<Record<'status' | 'owner' | 'attempt', unknown>> | null | undefined
  if (r === null || typeof r !== 'object') return false
  if (r.status === 'done' || r.status === 'busy') return true
  return r.status === 'claimed' && typeof r.owner === 'string' && r.owner !== '' &&
    typeof r.attempt === 'number' && Number.isInteger(r.attempt) && r.attempt >= 1
}

/** Claims the key, turning a store error, a hang or a malformed answer into STORE_FAILED. */
export function claimKey(store: NotifyStore, key: string, storeTimeoutMs: number): Promise<ClaimResult> {
  return traceStep('guanaitong.store.claim', () => claim(store, key, storeTimeoutMs))
}

async function claim(store: NotifyStore, key: string, storeTimeoutMs: number): Promise<ClaimResult> {
  // A store that throws synchronously rejects this promise like any other failure.
  const pending = new Promise<ClaimResult>((resolve) => resolve(store.claim(key)))
  let result: unknown
  try {
    result = await storeCall('claim', key, storeTimeoutMs, () => pending)
  } catch (err) {
    releaseLateClaim(store, key, pending)
    throw err
  }
  if (!isClaimResult(result)) {
    const shown = JSON.stringify(result) ?? String(result)
    throw new NotifyRejection('STORE_FAILED', `store claim answered ${shown.slice(0, 80)}, not a claim result`, { key })
  }
  return result
}

/**
 * A claim that succeeds after its timeout was already answered `fail` would block every retry
 * until its lease ran out: give it back as soon as it arrives.
 */
function releaseLateClaim(store: NotifyStore, key: string, pending: Promise<ClaimResult>): void {
  pending.then((late) => {
    if (late?.status === 'claimed') return store.release(key, late.owner)
  }).catch(() => {})
}

/**
 * Marks the claim done. Resolves false when the lease was lost to another request, which
 * may then run the handler again: the shop's handler must stay idempotent on the trade number.
 */
export function completeClaim(claim: HeldClaim): Promise<boolean> {
  return traceStep('guanaitong.store.complete',
    () => storeCall('complete', claim.key, claim.storeTimeoutMs, () => claim.store.complete(claim.key, claim.owner, claim.memo)))
}

/** Reads where `key` stands (and leaves `note` on it when open), under the store timeout. */
export function peekKey(store: CrossCheck, key: string, note: string, storeTimeoutMs: number): Promise<PeekResult> {
  return traceStep('guanaitong.store.peek', () => storeCall('peek', key, storeTimeoutMs, () => store.peek(key, note)))
}

/** Frees the claim so Guanaitong's next attempt can run the handler; a failure is only logged, the lease expires anyway. */
export async function releaseClaim(claim: HeldClaim, logger: Log): Promise<void> {
  try {
    await traceStep('guanaitong.store.release',
      () => storeCall('release', claim.key, claim.storeTimeoutMs, () => claim.store.release(claim.key, claim.owner)))
  } catch (err) {
    logger.error({
      outerTradeNo: claim.outerTradeNo, reason: 'STORE_FAILED', key: claim.key, error: errorMessage(err),
    }, `[express-guanaitong] could not release ${claim.key}; a retry can run once its lease expires`)
  }
}

/**
 * Renews the lease while the handler runs, so another instance does not start the same payment.
 * It goes on past the handler timeout (the answer was `fail`, but the handler may still finish and
 * a retry must not run it alongside), until `stop()` or `maxMs`. One unref'd timer per running
 * handler; none when the store cannot extend.
 */
export function keepLease(claim: HeldClaim, logger: Log, maxMs: number): () => void {
  const { store } = claim
  if (typeof store.extend !== 'function') return noop
  const extend = store.extend.bind(store)
  // A third of the lease: one renewal can fail (and be retried sooner) before the lease lapses.
  const every = Math.max(10, Math.floor(store.leaseMs / 3))
  const retry = Math.max(10, Math.floor(every / 3))
  const giveUpAt = Date.now() + maxMs
  let timer: NodeJS.Timeout | undefined
  // A failed renewal (a Redis stall) is retried at the next tick: giving up would let the lease
  // lapse while the handler still runs, and a duplicate would run it a second time.
  const again = (delay: number) => {
    if (!timer) return
    if (Date.now() + delay > giveUpAt) {
      logger.warn({
        outerTradeNo: claim.outerTradeNo, reason: 'HANDLER_TIMEOUT', key: claim.key,
      }, `[express-guanaitong] handler for ${claim.key} still running after ${maxMs} ms; no longer renewing its lease`)
      return
    }
    timer = setTimeout(renew, delay).unref()
  }
  const renew = () => {
    // A custom store may throw synchronously or return a plain value: both land in this promise,
    // never as an uncaught exception from a timer.
    new Promise<unknown>((resolve) => resolve(extend(claim.key, claim.owner))).then(
      (owned) => {
        if (owned === true) return again(every)
        logger.warn({
          outerTradeNo: claim.outerTradeNo, reason: 'LEASE_LOST', key: claim.key,
        }, `[express-guanaitong] lease on ${claim.key} was lost while the handler ran`)
      },
      (err: unknown) => {
        logger.warn({
          outerTradeNo: claim.outerTradeNo, reason: 'LEASE_RENEWAL_FAILED', key: claim.key, error: errorMessage(err),
        }, `[express-guanaitong] could not extend the lease on ${claim.key}; trying again`)
        again(retry)
      },
    )
  }
  timer = setTimeout(renew, every).unref()
  return () => {
    clearTimeout(timer)
    timer = undefined
  }
}

function noop() {}
