import type { Request, Response } from 'express'
import { ConfigError } from '../../kernel/errors'
import { toLogger } from '../../observe/log'
import { createSettlement } from '../../core/settle/settle'
import type { HandleOptions } from './types'
import type { HandleOptions as NeutralHandleOptions } from '../../kernel/types'
import { answerNotification, guarded } from './answer'
import { checkOptions, HANDLE_RULES } from '../../kernel/validate'
import { notifyState } from './state'

/**
 * Settles the verified notification through the settlement core (claim, order check, `onPaid`,
 * done-marker) and answers `success` only when the handler finished and its marker is stored.
 * Without a `dedupeNotification()` before it, the handler runs on every delivery.
 */
export function handleNotification<Tx = unknown>(options: HandleOptions<Tx>) {
  checkOptions('handleNotification()', options, HANDLE_RULES, '{ onPaid }')
  const logger = toLogger(options.logger)
  const settle = createSettlement(options as NeutralHandleOptions)
  return guarded(logger, async function handle(req: Request, res: Response) {
    const state = notifyState(res)
    const notification = state.notification
    if (!notification) throw new ConfigError('handleNotification needs verifyNotification before it on the route (after parseNotification)')
    const outcome = await settle({ notification, req, source: 'notify', ...state.dedupe })
    answerNotification(res, logger, outcome)
  })
}
