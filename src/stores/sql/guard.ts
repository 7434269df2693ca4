/**
 * `ctx.tx` as the handler gets it: the transaction's own object behind a proxy that refuses every
 * call once the settlement's work ended. A handler that kept it would otherwise write into, or
 * COMMIT, whatever transaction the pooled connection runs next: another payment's.
 */
import { GuanaitongError } from '../../kernel/errors'

export interface GuardedTx<Tx> {
  /** What the handler gets. */
  readonly tx: Tx
  /** From now on every call through `tx` throws `TX_ENDED`. */
  end(): void
}

export function guardTx<Tx>(tx: Tx, key: string): GuardedTx<Tx> {
  if (tx === null || (typeof tx !== 'object' && typeof tx !== 'function')) return { tx, end: () => {} }
  const target = tx as object
  let ended = false
  const check = (what: string) => {
    if (ended) {
      throw new GuanaitongError(`ctx.tx.${what} called after the settlement of ${key} ended: the transaction is committed or rolled back, ` +
        'and its connection may be running another settlement now. Use ctx.tx only until onPaid/onPayFailed/findOrder returns', 'TX_ENDED')
    }
  }
  const wrapped = new Map<PropertyKey, { of: unknown; fn: unknown }>()
  const proxy: object = new Proxy(target, {
    get(t, prop) {
      const value: unknown = Reflect.get(t, prop, t)
      if (typeof value !== 'function' || prop === 'constructor') return value
      // The same wrapper each time, so `tx.query === tx.query` holds as on the real object.
      const known = wrapped.get(prop)
      if (known?.of === value) return known.fn
      const fn = function (this: unknown, ...args: unknown[]) {
        check(String(prop))
        return Reflect.apply(value, this === proxy ? t : this, args)
      }
      wrapped.set(prop, { of: value, fn })
      return fn
    },
    // A Knex transaction is itself a function: trx('orders').
    apply(t, thisArg, args) {
      check('()')
      return Reflect.apply(t as (...a: unknown[]) => unknown, thisArg, args)
    },
  })
  return { tx: proxy as Tx, end: () => { ended = true } }
}
