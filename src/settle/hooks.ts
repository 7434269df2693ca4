import { errorMessage } from '../errors'
import type { Logger } from '../types'

/**
 * Calls a hook the shop gave for alerting, without waiting for it: a hook that hangs must not
 * hold an answer Guanaitong is waiting for, and one that throws must not change it. Its failure
 * is logged.
 */
export function fireHook(logger: Logger, name: string, hook: () => unknown): void {
  const failed = (err: unknown) => {
    logger.error(`[express-guanaitong] ${name} threw: ${errorMessage(err)}`, { hook: name })
  }
  try {
    Promise.resolve(hook()).catch(failed)
  } catch (err) {
    failed(err)
  }
}
