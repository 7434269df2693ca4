/**
 * Settles like `work`, or rejects with `onTimeout()` after `ms`. The timer is unref'd and
 * cleared, so a settled call leaves nothing behind and a hang never keeps the process alive.
 * One promise and one timer per call (no Promise.race and .finally): it runs three times per
 * notification.
 */
export function withTimeout<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), ms).unref()
    Promise.resolve(work).then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (error: unknown) => {
        clearTimeout(timer)
        reject(error)
      },
    )
  })
}
