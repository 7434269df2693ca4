import assert from 'node:assert/strict'
import { hasUnsettledLedger } from '../core/settle/unsettled'
import { MEMO_MAX_LENGTH } from '../core/settle/memo'
import type { CrossCheck, PeekResult, UnsettledLedger, UnsettledRecord } from '../kernel/types'
import { skipWithout, type Fn, type Register } from './runner'

/**
 * One settlement of a key, whatever the store's kind: a claim store claims and completes, a
 * transactional store settles with empty work. `first` is what the claim (or settle) answered.
 */
export interface SettleProbe {
  /** Settles `key` with `memo` if it is free: `settled` (with watched and note), `done` (with memo and watched) or `busy`. */
  settleOnce(key: string, memo?: string): Promise<{ status: 'settled' | 'done' | 'busy'; watched?: boolean; memo?: string; note?: string }>
  /**
   * Holds `key` (a claim, or a transaction whose work waits) and resolves with the hold's
   * `attempt`; `finish()` then completes it and resolves with the watched and note the claim (or
   * the settle) answered; `finish(false)` gives the key back instead (a release, a rollback).
   */
  hold(key: string): Promise<{ attempt: number; finish: (complete?: boolean) => Promise<{ watched?: boolean; note?: string }> }>
}

/**
 * The store-contract cases of issue 20 (the `watched` mark) and issue 21 item 4 (memos, `peek`
 * and notes), shared by storeConformance and transactionalStoreConformance. A store that keeps
 * no marks (answers without `watched`), no memos or has no `peek` has those cases skipped.
 */
export function crossCheckConformance(
  it: Register,
  make: () => Promise<{ store: object; probe: SettleProbe }>,
  options: { timeoutMs: number; run: string },
): void {
  const { timeoutMs, run } = options
  let counter = 0
  /** A paid settlement key of its own, as the core builds it, and the record the pay route would write for it. */
  const paidKey = () => `20110698:paid:X${run}n${++counter}`
  const recordFor = (key: string): UnsettledRecord => ({
    key,
    appId: '20110698',
    outerTradeNo: key.slice('20110698:paid:'.length),
    totalAmount: '19.90',
    totalFen: 1990,
    buyerOpenId: 'd87797eea12a2f80ad72ed93214a0908',
    tradeNo: null,
    reason: 'AMBIGUOUS',
    since: 1e11,
    // Far in the future: no sweep running elsewhere on a shared ledger takes it.
    deadline: 9e12,
  })

  const test = (title: string, body: (this: ThisParameterType<Fn>, store: object, probe: SettleProbe) => Promise<void>) =>
    it(title, async function (this: ThisParameterType<Fn>) {
      this.timeout?.(timeoutMs)
      const { store, probe } = await make()
      await body.call(this, store, probe)
    })
  const watchedTest = (title: string, body: (store: UnsettledLedger, probe: SettleProbe) => Promise<void>) =>
    test(title, async function (store, probe) {
      if (!hasUnsettledLedger(store)) return skipWithout(this, 'unsettled ledger')
      const first = await probe.settleOnce(paidKey())
      if (first.watched === undefined) return skipWithout(this, 'watched marks')
      const watched = new Set<string>()
      const tracked = Object.assign(Object.create(store) as UnsettledLedger, {
        watchUnsettled: (r: UnsettledRecord) => { watched.add(r.key); return store.watchUnsettled(r) },
      })
      try {
        await body(tracked, probe)
      } finally {
        for (const key of watched) await store.resolveUnsettled(key).catch(() => undefined)
      }
    })
  const peekTest = (title: string, body: (this: ThisParameterType<Fn>, store: CrossCheck, probe: SettleProbe) => Promise<void>) =>
    test(title, async function (store, probe) {
      if (typeof (store as Partial<CrossCheck>).peek !== 'function') return skipWithout(this, 'peek()')
      await body.call(this, store as CrossCheck, probe)
    })

  watchedTest('watched: a key never watched settles watched: false, and its duplicate says watched: false', async (_s, probe) => {
    const key = paidKey()
    const first = await probe.settleOnce(key)
    assert.equal(first.status, 'settled')
    assert.equal(first.watched, false)
    const again = await probe.settleOnce(key)
    assert.equal(again.status, 'done')
    assert.equal(again.watched, false)
  })

  watchedTest('watched: watchUnsettled marks its key (watched: true on settle and duplicates) until resolveUnsettled clears it; no other key', async (s, probe) => {
    const key = paidKey()
    await s.watchUnsettled(recordFor(key))
    const first = await probe.settleOnce(key)
    assert.equal(first.status, 'settled')
    assert.equal(first.watched, true)
    assert.equal((await probe.settleOnce(`${key}0`)).watched, false, 'a longer key is another key')
    assert.equal((await probe.settleOnce(key.replace(':paid:', ':failed:'))).watched, false, 'the failed key is not marked')
    const dup = await probe.settleOnce(key)
    assert.deepEqual([dup.status, dup.watched], ['done', true])
    await s.resolveUnsettled(key)
    const after = await probe.settleOnce(key)
    assert.deepEqual([after.status, after.watched], ['done', false])
  })

  watchedTest('watched: a record written after the key settled marks it too, so the next duplicate removes it', async (s, probe) => {
    const key = paidKey()
    assert.equal((await probe.settleOnce(key)).watched, false)
    await s.watchUnsettled(recordFor(key))
    assert.equal((await probe.settleOnce(key)).watched, true)
  })

  watchedTest('watched: a mark changes nothing about claiming: attempt 1, busy while held, the record stays listed', async (s, probe) => {
    const key = paidKey()
    await s.watchUnsettled(recordFor(key))
    const held = await probe.hold(key)
    assert.equal(held.attempt, 1)
    assert.equal((await probe.settleOnce(key)).status, 'busy')
    assert.equal((await held.finish()).watched, true)
    assert.ok((await s.listUnsettled(100_000)).some((r) => r.key === key), 'settling never removes the record by itself: the core does')
  })

  test('memo: a done-marker keeps its memo exactly (quotes, backslashes, SQL, 1 024 characters); none without one', async function (_s, probe) {
    const plain = paidKey()
    const probed = await probe.settleOnce(plain, '[1,"p",1990,"T1","b"]')
    assert.equal(probed.status, 'settled')
    const back = await probe.settleOnce(plain)
    if (back.memo === undefined) return skipWithout(this, 'memos')
    assert.equal(back.memo, '[1,"p",1990,"T1","b"]')
    const odd = `'; DROP TABLE x; -- \\ \\\\ " %_ \`$1 ?`
    const long = `${odd}${'~'.repeat(MEMO_MAX_LENGTH - odd.length)}`
    assert.equal(long.length, MEMO_MAX_LENGTH)
    for (const memo of [odd, long, ' ']) {
      const key = paidKey()
      await probe.settleOnce(key, memo)
      const dup = await probe.settleOnce(key, 'another memo, not stored')
      assert.deepEqual([dup.status, dup.memo], ['done', memo], JSON.stringify(memo))
    }
    const none = paidKey()
    await probe.settleOnce(none)
    assert.equal((await probe.settleOnce(none)).memo, undefined)
  })

  peekTest('peek: open, busy, done with its memo; counts no attempt, takes no lease, and a peeked key settles as before', async (s, probe) => {
    const key = paidKey()
    assert.equal((await s.peek(key)).status, 'open')
    assert.equal((await s.peek(key)).status, 'open')
    const held = await probe.hold(key)
    assert.equal(held.attempt, 1, 'peek must not count an attempt')
    assert.equal((await s.peek(key)).status, 'busy')
    await held.finish()
    const other = paidKey()
    await probe.settleOnce(other, 'memo-of-other')
    const done: PeekResult = await s.peek(other)
    assert.equal(done.status, 'done')
    if (done.memo !== undefined) assert.equal(done.memo, 'memo-of-other')
    assert.equal((await probe.settleOnce(other)).status, 'done')
    // Settled without a memo: done, and no memo to compare a duplicate with.
    const plain = paidKey()
    await probe.settleOnce(plain)
    const plainDone = await s.peek(plain)
    assert.deepEqual([plainDone.status, plainDone.memo], ['done', undefined])
  })

  peekTest('peek: a note outlives given-back attempts, a peek without a note leaves it, and a peek counts no attempt on a key tried before', async (s, probe) => {
    const key = paidKey()
    const note = '[1,"f",1990,"","b"]'
    await (await probe.hold(key)).finish(false)
    assert.equal((await s.peek(key, note)).status, 'open')
    assert.equal((await s.peek(key)).status, 'open')
    const second = await probe.hold(key)
    assert.equal(second.attempt, 2, 'the note must not reset the attempts of a key tried before')
    await second.finish(false)
    const settled = await probe.settleOnce(key)
    assert.deepEqual([settled.status, settled.note], ['settled', note], 'the note comes back with every later settlement, after a give-back too')
  })

  peekTest('peek: a note on an open key comes back with the next settlement, exactly; a busy or done key gets none', async (s, probe) => {
    const key = paidKey()
    const note = `[1,"f",1990,"","b'\\\\"]`
    assert.equal((await s.peek(key, 'first note')).status, 'open')
    assert.equal((await s.peek(key, note)).status, 'open', 'a note does not make the key busy or done')
    const settled = await probe.settleOnce(key)
    assert.deepEqual([settled.status, settled.note], ['settled', note], 'the latest note comes back')
    const plain = paidKey()
    assert.equal((await probe.settleOnce(plain)).note, undefined, 'no note, none back')

    const busy = paidKey()
    const held = await probe.hold(busy)
    assert.equal((await s.peek(busy, 'late note')).status, 'busy')
    await held.finish(false)
    assert.equal((await probe.settleOnce(busy)).note, undefined, 'a busy key gets no note')

    const done = paidKey()
    await probe.settleOnce(done, 'm')
    assert.equal((await s.peek(done, 'late note')).status, 'done')
    assert.equal((await probe.settleOnce(done)).status, 'done')
  })

  peekTest('peek: watched comes back with it, for a store that keeps marks', async function (s, probe) {
    if (!hasUnsettledLedger(s)) return skipWithout(this, 'unsettled ledger')
    const key = paidKey()
    const open = await s.peek(key)
    if (open.watched === undefined) return skipWithout(this, 'watched marks')
    assert.equal(open.watched, false)
    await s.watchUnsettled(recordFor(key))
    try {
      const marked = await s.peek(key)
      assert.deepEqual([marked.status, marked.watched], ['open', true])
      const held = await probe.hold(key)
      const busy = await s.peek(key)
      assert.deepEqual([busy.status, busy.watched], ['busy', true])
      await held.finish(false)
      await probe.settleOnce(key, 'm')
      const done = await s.peek(key)
      assert.deepEqual([done.status, done.watched], ['done', true])
    } finally {
      await s.resolveUnsettled(key)
    }
    assert.equal((await s.peek(key)).watched, false)
  })
}
