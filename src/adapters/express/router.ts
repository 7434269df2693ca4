import express, { type Router } from 'express'
import { dedupeNotification } from './dedupe'
import { handleNotification } from './handle'
import { observeNotification } from './observe'
import { parseNotification } from './parse'
import { payRoute } from './pay'
import { verifyNotification } from './verify'
import { resolveOptions } from '../../guanaitong'
import { hasUnsettledLedger, startSweeping } from '../../core/settle/unsettled'
import type { GuanaitongOptions } from '../../kernel/types'
import { DEDUPE_RULES, HANDLE_RULES, PARSE_RULES, PAY_ROUTE_RULES, pickOptions, VERIFY_RULES, type Rules } from '../../kernel/validate'

/** What `guanaitong()` returns: an Express router, and `close()` for a graceful shutdown. */
export interface GuanaitongRouter extends Router {
  /**
   * Stops the unsettled sweep and resolves once a sweep in progress (its `onUnsettled` calls
   * included) has finished, so the store can be closed after it. The routes keep answering:
   * stop taking requests first (`server.close()`). May be called again; resolves at once when
   * the router does not sweep.
   */
  close(): Promise<void>
}

/**
 * The router a shop mounts: `app.use('/gat', guanaitong({ appId, appSecret, notifyUrl, onPaid }))`.
 * `POST /notify` takes Guanaitong's notifications; `POST /pay` starts a payment. With
 * `onUnsettled`, a timer (unref'd) sweeps the store's unsettled ledger every `sweepEveryMs` until `close()`.
 */
export function guanaitong<Tx = unknown>(options: GuanaitongOptions<Tx>): GuanaitongRouter {
  const resolved = resolveOptions(options as GuanaitongOptions)
  // Each piece is given the options it takes, and checks them as it would standing alone.
  const only = (rules: Rules) => pickOptions(resolved, rules) as never
  const router = express.Router()
  router.post(
    resolved.notifyPath,
    observeNotification(),
    parseNotification(only(PARSE_RULES)),
    verifyNotification(only(VERIFY_RULES)),
    dedupeNotification(only(DEDUPE_RULES)),
    handleNotification(only(HANDLE_RULES)),
  )
  if (resolved.payPath !== false) router.post(resolved.payPath, payRoute(only(PAY_ROUTE_RULES)))
  const { onUnsettled, store, sweepEveryMs } = resolved
  let stopSweeping = async (): Promise<void> => undefined
  if (onUnsettled && sweepEveryMs !== false && hasUnsettledLedger(store)) {
    stopSweeping = startSweeping({ store, onUnsettled, everyMs: sweepEveryMs, logger: resolved.logger, storeTimeoutMs: resolved.storeTimeoutMs, now: resolved.now })
  }
  return Object.assign(router, { close: () => stopSweeping() })
}
