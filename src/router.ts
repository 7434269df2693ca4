import express, { type Router } from 'express'
import { dedupeNotification } from './middleware/dedupe'
import { handleNotification } from './middleware/handle'
import { observeNotification } from './middleware/observe'
import { parseNotification } from './middleware/parse'
import { payRoute } from './middleware/pay'
import { verifyNotification } from './middleware/verify'
import { resolveOptions } from './options'
import type { GuanaitongOptions } from './types'

/**
 * The router a shop mounts: `app.use('/gat', guanaitong({ appId, appSecret, notifyUrl, onPaid }))`.
 * `POST /notify` takes Guanaitong's notifications; `POST /pay` starts a payment.
 */
export function guanaitong(options: GuanaitongOptions): Router {
  const resolved = resolveOptions(options)
  const router = express.Router()
  router.post(
    resolved.notifyPath,
    observeNotification(),
    parseNotification(resolved),
    verifyNotification(resolved),
    dedupeNotification(resolved),
    handleNotification(resolved),
  )
  if (resolved.payPath !== false) router.post(resolved.payPath, payRoute(resolved))
  return router
}
