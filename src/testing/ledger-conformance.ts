import assert from 'node:assert/strict'
import type { UnsettledLedger, UnsettledRecord } from '../kernel/types'
import { hasUnsettledLedger } from '../core/settle/unsettled'
import { skipWithout, type Fn, type Register } from './runner'

/**
 * The unsettled ledger's part of the conformance suites (storeConformance and
 * transactionalStoreConformance): order, replacement, atomic take. Each test is skipped for a
 * store without the ledger (it is optional). They expect no records with deadlines before 1974
 * but their own.
 */
export function ledgerConformance(it: Register, store: () => Promise<object>, options: { timeoutMs: number; run: string }): void {
  const { timeoutMs, run } = options
  let counter = 0
  /** A store with the unsettled ledger, or the test is skipped (the ledger is optional). */
  const ledgerTest = (title: string, body: (s: UnsettledLedger, base: number) => Promise<void>) =>
    it(title, async function (this: ThisParameterType<Fn>) {
      this.timeout?.(timeoutMs)
      const s = await store()
      if (!hasUnsettledLedger(s)) return skipWithout(this, 'unsettled ledger')
      // Each ledger test gets a time range of its own, below every earlier test's and below any
      // real deadline (these are in 1973), so its takes see only its own records even when the
      // ledger is shared across tests.
      const base = 1e11 - ++ledgerWindow * 1e8
      const keys = new Set<string>()
      const tracked = new Proxy(s, {
        get(target, prop, receiver) {
          if (prop === 'watchUnsettled') return (r: UnsettledRecord) => { keys.add(r.key); return target.watchUnsettled(r) }
          const value = Reflect.get(target, prop, receiver) as unknown
          return typeof value === 'function' ? value.bind(target) : value
        },
      })
      try {
        await body(tracked, base)
      } finally {
        for (const key of keys) await s.resolveUnsettled(key).catch(() => undefined)
      }
    })
  let ledgerWindow = 0
  const record = (base: number, offset: number, overrides: Partial<UnsettledRecord> = {}): UnsettledRecord => {
    const outerTradeNo = `L${run}${++counter}`.slice(-22)
    return {
      key: `20110698:paid:${outerTradeNo}`,
      appId: '20110698',
      outerTradeNo,
      totalAmount: '19.90',
      totalFen: 1990,
      buyerOpenId: 'd87797eea12a2f80ad72ed93214a0908',
      tradeNo: null,
      reason: 'AMBIGUOUS',
      since: base,
      deadline: base + offset,
      ...overrides,
    }
  }
  const keysOf = (records: UnsettledRecord[]) => records.map((r) => r.key)

    ledgerTest('unsettled ledger: a watched record reads back unchanged; resolve removes it, also when absent', async (s, base) => {
      const ambiguous = record(base, 1000, { buyerOpenId: '员工💳', totalAmount: '0.01', totalFen: 1 })
      const unsettled = record(base, 2000, { tradeNo: '2018070920000005', reason: 'HANDLER_FAILED' })
      await s.watchUnsettled(ambiguous)
      await s.watchUnsettled(unsettled)
      const listed = await s.listUnsettled(1000)
      assert.deepEqual(listed.find((r) => r.key === ambiguous.key), ambiguous)
      assert.deepEqual(listed.find((r) => r.key === unsettled.key), unsettled)
      await s.resolveUnsettled(ambiguous.key)
      await s.resolveUnsettled(ambiguous.key)
      await s.resolveUnsettled(`${ambiguous.key}:never-watched`)
      const after = keysOf(await s.listUnsettled(1000))
      assert.ok(!after.includes(ambiguous.key), 'resolved record still listed')
      assert.ok(after.includes(unsettled.key), 'the other record must stay')
    })

    ledgerTest('unsettled ledger: watching the same key again replaces its record', async (s, base) => {
      const first = record(base, 1000)
      const second = { ...first, tradeNo: '2018070920000006', reason: 'STORE_FAILED' as const, deadline: base + 500 }
      await s.watchUnsettled(first)
      await s.watchUnsettled(second)
      const mine = (await s.listUnsettled(1000)).filter((r) => r.key === first.key)
      assert.deepEqual(mine, [second])
    })

    ledgerTest('unsettled ledger: lists soonest deadline first, up to the limit, without changing anything', async (s, base) => {
      const records = [5, 1, 4, 2, 3].map((n) => record(base, n * 100))
      for (const r of records) await s.watchUnsettled(r)
      const soonest = [...records].sort(soonestFirst)
      assert.deepEqual(await s.listUnsettled(3), soonest.slice(0, 3))
      assert.deepEqual(await s.listUnsettled(3), soonest.slice(0, 3), 'listing must not take anything')
      assert.deepEqual((await s.listUnsettled(1000)).slice(0, 5), soonest)
    })

    ledgerTest('unsettled ledger: equal deadlines are listed and taken in key order, whatever order they were watched in', async (s, base) => {
      const records = Array.from({ length: 6 }, () => record(base, 100))
      const byKey = [...records].sort(soonestFirst)
      // Neither the order they were made in nor its reverse: a store that keeps watch order fails.
      for (const i of [2, 0, 4, 1, 5, 3]) await s.watchUnsettled(byKey[i])
      assert.deepEqual((await s.listUnsettled(1000)).slice(0, 6), byKey)
      assert.deepEqual(await s.takeDueUnsettled(base + 100, 4, 1000), byKey.slice(0, 4))
    })

    ledgerTest('unsettled ledger: a resolved record takes no place within a limit', async (s, base) => {
      const [first, second, third] = [100, 200, 300].map((offset) => record(base, offset))
      for (const r of [first, second, third]) await s.watchUnsettled(r)
      await s.resolveUnsettled(first.key)
      await s.resolveUnsettled(second.key)
      assert.deepEqual(await s.listUnsettled(1), [third])
      assert.deepEqual(await s.takeDueUnsettled(base + 300, 1, 1000), [third])
    })

    ledgerTest('unsettled ledger: takeDueUnsettled takes due records only, soonest first, up to the limit, and not again until the lease ends', async (s, base) => {
      const [a, b, c, later] = [300, 100, 200, 5000].map((offset) => record(base, offset))
      for (const r of [a, b, c, later]) await s.watchUnsettled(r)
      const now = base + 300
      assert.deepEqual(await s.takeDueUnsettled(now, 2, 1000), [b, c], 'the two soonest, with the deadlines they had')
      assert.deepEqual(await s.takeDueUnsettled(now, 10, 1000), [a])
      assert.deepEqual(await s.takeDueUnsettled(now + 999, 10, 1000), [], 'taken records wait for their lease')
      const listed = (await s.listUnsettled(1000)).filter((r) => [a, b, c, later].some((x) => x.key === r.key))
      const leased = [a, b, c].map((r) => ({ ...r, deadline: now + 1000 }))
      assert.deepEqual(listed, [...leased, later].sort(soonestFirst), 'still listed, due again when the lease ends')
      const again = await s.takeDueUnsettled(now + 1000, 10, 1000)
      assert.deepEqual(new Set(keysOf(again)), new Set([a.key, b.key, c.key]), 'due again after the lease')
      assert.ok(again.every((r) => r.deadline === now + 1000))
      await s.resolveUnsettled(b.key)
      assert.deepEqual(keysOf(await s.takeDueUnsettled(now + 2000, 10, 1000)).sort(), [a.key, c.key].sort())
      assert.deepEqual(keysOf(await s.takeDueUnsettled(later.deadline + 3000, 10, 1000)).sort(), [a.key, c.key, later.key].sort())
    })

    ledgerTest('unsettled ledger: 20 concurrent takes of 50 due records never return one twice, and lose none', async (s, base) => {
      const records = Array.from({ length: 50 }, (_, i) => record(base, i))
      for (const r of records) await s.watchUnsettled(r)
      const takes = await Promise.all(Array.from({ length: 20 }, () => s.takeDueUnsettled(base + 100, 7, 60_000)))
      const taken = takes.flat().map((r) => r.key)
      assert.equal(new Set(taken).size, taken.length, 'a record was taken twice')
      // A take may return fewer than are due while others hold rows (SQL's SKIP LOCKED skips more
      // than the rows it must under InnoDB's locks): the next take gets the rest, never a taken one.
      const rest = (await s.takeDueUnsettled(base + 100, 100, 60_000)).map((r) => r.key)
      assert.deepEqual(rest.filter((key) => taken.includes(key)), [], 'a taken record was taken again within its lease')
      assert.deepEqual([...taken, ...rest].sort(), keysOf(records).sort(), 'every due record is taken exactly once')
    })

    ledgerTest('unsettled ledger: 600 concurrent resolves remove exactly their records', async (s, base) => {
      const records = Array.from({ length: 700 }, (_, i) => record(base, i))
      await Promise.all(records.map((r) => s.watchUnsettled(r)))
      await Promise.all(records.slice(0, 600).map((r) => s.resolveUnsettled(r.key)))
      assert.deepEqual(keysOf(await s.takeDueUnsettled(base + 2000, 2000, 1000)), keysOf(records.slice(600)))
    })

    ledgerTest('unsettled ledger: refuses a record without a key or with a fractional deadline, storing nothing', async (s, base) => {
      const bad = [record(base, 100, { key: '' }), record(base, 100.5)]
      for (const r of bad) await assert.rejects(s.watchUnsettled(r), `${JSON.stringify(r)} must be refused`)
      assert.deepEqual(await s.takeDueUnsettled(base + 1000, 10, 1000), [])
    })
}

/** The ledger's order: deadline, then key (as a Redis sorted set orders equal scores, for ASCII keys). */
function soonestFirst(a: UnsettledRecord, b: UnsettledRecord): number {
  return a.deadline - b.deadline || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
}
