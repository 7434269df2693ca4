/**
 * Every settlement removes its order from the unsettled ledger, where it is nearly always absent.
 * The removals asked for in one event-loop turn share one call, sent once the turn's I/O is
 * handled: under load a settlement then costs a small share of that call, not a call of its own.
 */
export class TurnBatch<T> {
  private pending: { items: T[]; done: Promise<void> } | undefined

  /** `flush` sends one batch of at most `max` items. */
  constructor(private readonly flush: (items: T[]) => Promise<void>, private readonly max: number) {}

  /** Adds `item` to this turn's batch; resolves when that batch's call answered. */
  add(item: T): Promise<void> {
    let batch = this.pending
    if (!batch || batch.items.length >= this.max) {
      const items: T[] = []
      const done = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
        if (this.pending?.items === items) this.pending = undefined
        await this.flush(items)
      })
      batch = this.pending = { items, done }
    }
    batch.items.push(item)
    return batch.done
  }
}
