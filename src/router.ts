import express, { type Router } from 'express'
import { dedupeNotification } from './middleware/dedupe'
import { handleNotification } from './middleware/handle'
import { parseNotification } from './middleware/parse'
import { payRoute } from './middleware/pay'
import { verifyNotification } from './middleware/verify'
import { resolveOptions } from './options'
import { hasUnsettledLedger, startSweeping } from './settle/unsettled'
import type { GuanaitongOptions } from './types'

/**
 * The router a shop mounts: `app.use('/gat', guanaitong({ appId, appSecret, notifyUrl, onPaid }))`.
 * `POST /notify` takes Guanaitong's notifications; `POST /pay` starts a payment. With
 * `onUnsettled`, a timer (unref'd) sweeps the store's unsettled ledger every `sweepEveryMs`.
 */
export function guanaitong(options: GuanaitongOptions): Router {
  const resolved = resolveOptions(options)
  const router = express.Router()
  router.post(
    resolved.notifyPath,
    parseNotification(resolved),
    verifyNotification(resolved),
    dedupeNotification(resolved),
    handleNotification(resolved),
  )
  if (resolved.payPath !== false) router.post(resolved.payPath, payRoute(resolved))
  const { onUnsettled, store, sweepEveryMs } = resolved
  if (onUnsettled && sweepEveryMs !== false && hasUnsettledLedger(store)) {
    startSweeping({ store, onUnsettled, everyMs: sweepEveryMs, logger: resolved.logger, storeTimeoutMs: resolved.storeTimeoutMs, now: resolved.now })
  }
  return router
}
