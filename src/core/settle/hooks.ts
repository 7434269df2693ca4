import { errorMessage } from '../../kernel/errors'
import type { Log } from '../../observe/log'

/**
 * Calls a hook the shop gave for alerting, without waiting for it: a hook that hangs must not
 * hold an answer Guanaitong is waiting for, and one that throws must not change it. Its failure
 * is logged, naming the payment it was called for.
 */
export function fireHook(logger: Log, outerTradeNo: string, name: string, hook: () => unknown): void {
  const failed = (err: unknown) => {
    logger.error({ outerTradeNo, reason: 'HOOK_FAILED', hook: name }, `[express-guanaitong] ${name} threw: ${errorMessage(err)}`)
  }
  try {
    Promise.resolve(hook()).catch(failed)
  } catch (err) {
    failed(err)
  }
}
