import type { Request, Response } from 'express'
import { DEFAULTS } from '../../kernel/defaults'
import { ConfigError } from '../../kernel/errors'
import { verifyFields } from '../../core/notify/verify'
import { toLogger } from '../../observe/log'
import { checkOptions, checkSecrets, VERIFY_RULES } from '../../kernel/validate'
import type { VerifyOptions } from '../../kernel/types'
import { guarded } from './answer'
import { notifyState } from './state'

/**
 * Checks the parsed notification (signature, appid, timestamp window, required fields, amount)
 * and leaves the typed notification on `res.locals.guanaitong.notification`.
 */
export function verifyNotification(options: VerifyOptions) {
  checkOptions('verifyNotification()', options, VERIFY_RULES, '{ appId, appSecret }')
  const config = {
    appId: options.appId,
    secrets: checkSecrets(options.appSecret),
    toleranceSec: options.toleranceSec ?? DEFAULTS.toleranceSec,
    now: options.now ?? Date.now,
    debug: options.debug ?? false,
    algorithms: options.notifySignTypes,
  }
  return guarded(toLogger(options.logger), async function verify(req: Request, res: Response, next) {
    const state = notifyState(res)
    if (!state.fields) throw new ConfigError('verifyNotification needs parseNotification before it on the route')
    state.notification = verifyFields(state.fields, config)
    next()
  })
}
