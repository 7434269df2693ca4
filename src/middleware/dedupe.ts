import type { Request, Response } from 'express'
import { DEFAULTS } from '../defaults'
import { claimKey, notificationKey } from '../notify/dedupe'
import { NotifyRejection } from '../notify/rejection'
import { toLogger } from '../observe/log'
import { traceStep } from '../observe/telemetry'
import { MemoryStore } from '../stores/memory'
import type { DedupeOptions } from '../types'
import { answerFail, answerSuccess, guarded } from './answer'
import { notifyState } from './state'

/**
 * Claims the notification in the store. Already done: `success` without running the handler.
 * Held by another request: `fail`, Guanaitong comes back later. Claimed: on to the handler.
 */
export function dedupeNotification(options: DedupeOptions = {}) {
  const store = options.store ?? new MemoryStore()
  const storeTimeoutMs = options.storeTimeoutMs ?? DEFAULTS.storeTimeoutMs
  const logger = toLogger(options.logger)
  return guarded(logger, async function dedupe(req: Request, res: Response, next) {
    const state = notifyState(res)
    const n = state.notification
    if (!n) throw new Error('dedupeNotification needs verifyNotification before it')
    const key = notificationKey(n)
    const result = await traceStep('guanaitong.store.claim', () => claimKey(store, key, storeTimeoutMs))
    if (result.status === 'done') {
      // Debug, not info: duplicates are Guanaitong's normal retries, and logging each costs ~30 µs.
      logger.debug?.(`[express-guanaitong] duplicate notification for ${n.outerTradeNo} acknowledged without running the handler`, {
        outerTradeNo: n.outerTradeNo, reason: 'DUPLICATE',
      })
      return answerSuccess(res, 'DUPLICATE')
    }
    if (result.status === 'busy') {
      return answerFail(res, logger, new NotifyRejection('IN_PROGRESS',
        `${n.outerTradeNo} is being processed by another request; Guanaitong will retry`, { outerTradeNo: n.outerTradeNo }))
    }
    state.claim = { store, key, owner: result.owner, attempt: result.attempt, storeTimeoutMs, outerTradeNo: n.outerTradeNo }
    next()
  })
}
