/**
 * Settles like `work`, or rejects with `onTimeout()` after `ms`. The timer is unref'd and
 * cleared, so a settled call leaves nothing behind and a hang never keeps the process alive.
 */
export function withTimeout<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms).unref()
  })
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer))
}
