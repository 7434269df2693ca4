import type { Request, Response } from 'express'
import { DEFAULTS } from '../../kernel/defaults'
import { toLogger } from '../../observe/log'
import { MemoryStore } from '../../stores/memory'
import type { DedupeOptions } from '../../kernel/types'
import { checkOptions, DEDUPE_RULES } from '../../kernel/validate'
import { guarded } from './answer'
import { notifyState } from './state'

/**
 * Chooses the store the following `handleNotification` settles through. The claim itself is
 * taken and ended in one place, the settlement core, so that the pay answer can share it.
 */
export function dedupeNotification(options: DedupeOptions = {}) {
  checkOptions('dedupeNotification()', options, DEDUPE_RULES, '{ store: new RedisStore({ client }) }')
  const dedupe = { store: options.store ?? new MemoryStore({ logger: options.logger }), storeTimeoutMs: options.storeTimeoutMs ?? DEFAULTS.storeTimeoutMs }
  return guarded(toLogger(options.logger), async function dedupeWith(_req: Request, res: Response, next) {
    notifyState(res).dedupe = dedupe
    next()
  })
}
