import { tracingChannel, type TracingChannel } from 'node:diagnostics_channel'

/**
 * Node's TracingChannel events, so an APM tool can follow notifications and Guanaitong calls
 * without patching the package. Each operation publishes `start` and `end` around the
 * synchronous part, then `asyncStart`/`asyncEnd` (and `error` first when it failed) with the
 * same context object, whose `result` or `error` is set by then.
 */
export const notifyChannel: TracingChannel<object, object> = tracingChannel('guanaitong:notify')
export const apiChannel: TracingChannel<object, object> = tracingChannel('guanaitong:api')

/**
 * Like `TracingChannel.tracePromise`, but `context.result` is what `summarize` makes of the value,
 * not the value itself: an API answer carries the access token, which no subscriber needs.
 * Costs one property read when nobody subscribes (Node >= 20.13; older 20.x always publishes).
 */
export function traceChannel<T>(
  channel: TracingChannel<object, object>, context: { result?: unknown; error?: unknown; [key: string]: unknown }, work: () => Promise<T>, summarize: (value: T) => unknown,
): Promise<T> {
  if ((channel as { hasSubscribers?: boolean }).hasSubscribers === false) return work()
  const { start, end, asyncStart, asyncEnd, error } = channel
  return start.runStores(context, () => {
    let pending: Promise<T>
    try {
      pending = work()
    } catch (err) {
      context.error = err
      error.publish(context)
      end.publish(context)
      throw err
    }
    end.publish(context)
    return pending.then(
      (value) => {
        context.result = summarize(value)
        asyncStart.publish(context)
        asyncEnd.publish(context)
        return value
      },
      (err: unknown) => {
        context.error = err
        error.publish(context)
        asyncStart.publish(context)
        asyncEnd.publish(context)
        throw err
      },
    )
  })
}
