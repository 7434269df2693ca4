import { DEFAULTS, parseBytes } from '../../kernel/defaults'
import { readNotificationFields } from '../../core/notify/read'
import { toLogger } from '../../observe/log'
import type { ParseOptions } from '../../kernel/types'
import { checkOptions, PARSE_RULES } from '../../kernel/validate'
import { guarded } from './answer'
import { fromExpress } from './http'
import { notifyState } from './state'

/**
 * Reads the notification into a flat map of strings (`res.locals.guanaitong.fields`).
 * Reads the raw body itself, or takes what an earlier `express.urlencoded()` produced.
 */
export function parseNotification(options: ParseOptions = {}) {
  checkOptions('parseNotification()', options, PARSE_RULES, "{ bodyLimit: '64kb' }")
  const limits = {
    bodyLimit: parseBytes(options.bodyLimit ?? DEFAULTS.bodyLimit),
    parameterLimit: options.parameterLimit ?? DEFAULTS.parameterLimit,
    bodyTimeoutMs: options.bodyTimeoutMs ?? DEFAULTS.bodyTimeoutMs,
  }
  return guarded(toLogger(options.logger), async function parse(req, res, next) {
    notifyState(res).fields = await readNotificationFields(fromExpress(req), limits)
    next()
  })
}
