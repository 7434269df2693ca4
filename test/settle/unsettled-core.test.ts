/**
 * The unsettled ledger and the settlement core on their own: which settlements remove a record
 * (and that none waits for it), and the sweep's check against a transactional store.
 */
import { expect } from 'chai'
import { createSettlement, type Settlement, type SettleOutcome } from '../../src/core/settle/settle'
import { listUnsettled, sweepUnsettled, unsettledKey } from '../../src/core/settle/unsettled'
import { MemoryStore } from '../../src/stores/memory'
import type { Notification, SettleOptions, TransactionalStore, UnsettledLedger, UnsettledRecord } from '../../src/kernel/types'
import { APP_ID, recordingLogger, sleep } from '../helpers'

let seq = 0
function payment(overrides: Partial<Notification> = {}): Notification {
  seq += 1
  return {
    appId: APP_ID, outerTradeNo: `C${Date.now() % 1e8}${seq}`, tradeNo: `20180709${String(seq).padStart(8, '0')}`,
    buyerOpenId: 'buyer', totalAmount: '12.50', totalFen: 1250, attach: '', timestamp: Math.floor(Date.now() / 1000),
    raw: {}, ...overrides,
  }
}

function recordOf(n: Notification, deadline = Date.now() - 1): UnsettledRecord {
  return {
    key: unsettledKey(n), appId: n.appId, outerTradeNo: n.outerTradeNo, totalAmount: n.totalAmount, totalFen: n.totalFen,
    buyerOpenId: n.buyerOpenId, tradeNo: null, reason: 'AMBIGUOUS', since: deadline - 1000, deadline,
  }
}

const req = {} as Settlement['req']
const reasonOf = (o: SettleOutcome) => (o.answer === 'fail' ? o.rejection.reason : o.how)

function settlement(options: Partial<SettleOptions> = {}) {
  const logger = recordingLogger()
  return { settle: createSettlement({ onPaid: () => {}, logger, ...options }), logger }
}

async function keys(store: UnsettledLedger): Promise<string[]> {
  return (await store.listUnsettled()).map((r) => r.key)
}

/**
 * A TransactionalStore in memory (done and held sets, a log of commits and rollbacks) that
 * keeps its unsettled ledger in a MemoryStore, as a SQL store would keep both in its database.
 */
function transactionalWithLedger() {
  const done = new Set<string>()
  const held = new Set<string>()
  const log: string[] = []
  const ledger = new MemoryStore()
  const store: TransactionalStore & UnsettledLedger = {
    transactional: true,
    retentionMs: 1000,
    async settle(key, work) {
      if (done.has(key)) return { status: 'done' }
      if (held.has(key)) return { status: 'busy' }
      held.add(key)
      try {
        await work({}, 1)
        done.add(key)
        log.push(`commit ${key}`)
        return { status: 'completed' }
      } catch (err) {
        log.push(`rollback ${key}`)
        throw err
      } finally {
        held.delete(key)
      }
    },
    watchUnsettled: (r) => ledger.watchUnsettled(r),
    resolveUnsettled: (k) => ledger.resolveUnsettled(k),
    listUnsettled: (l) => ledger.listUnsettled(l),
    takeDueUnsettled: (now, l, lease) => ledger.takeDueUnsettled(now, l, lease),
  }
  return { store, done, held, log }
}

describe('unsettled ledger and the settlement core', () => {
  it('a payment settled from either channel, or acknowledged as a duplicate, leaves the ledger', async () => {
    const store = new MemoryStore()
    const { settle } = settlement()
    const [a, b] = [payment(), payment()]
    await store.watchUnsettled(recordOf(a))
    await store.watchUnsettled(recordOf(b))
    expect(reasonOf(await settle({ notification: a, req, source: 'notify', store }))).to.equal('settled')
    await sleep(0)
    expect(await keys(store)).to.deep.equal([unsettledKey(b)])
    // b was settled before it was recorded (by the pay answer, say): its duplicate removes it.
    await store.watchUnsettled(recordOf(a))
    expect(reasonOf(await settle({ notification: a, req, source: 'pay', store }))).to.equal('duplicate')
    expect(reasonOf(await settle({ notification: b, req, source: 'pay', store }))).to.equal('settled')
    await sleep(0)
    expect(await keys(store)).to.deep.equal([])
  })

  it('a failure notice for the order removes it; a failed settlement does not', async () => {
    const store = new MemoryStore()
    const n = payment()
    await store.watchUnsettled(recordOf(n))
    const failing = settlement({ onPayFailed: () => { throw new Error('db down') } })
    expect(reasonOf(await failing.settle({ notification: { ...n, tradeNo: '' }, req, source: 'notify', store }))).to.equal('HANDLER_FAILED')
    await sleep(0)
    expect(await keys(store)).to.deep.equal([unsettledKey(n)])
    const { settle } = settlement({ onPayFailed: () => undefined })
    expect(reasonOf(await settle({ notification: { ...n, tradeNo: '' }, req, source: 'notify', store }))).to.equal('settled')
    await sleep(0)
    expect(await keys(store)).to.deep.equal([])
  })

  it('a handler that finishes after its time-out was answered fail removes it when it finishes', async () => {
    const store = new MemoryStore()
    const n = payment()
    await store.watchUnsettled(recordOf(n))
    const { settle } = settlement({ handlerTimeoutMs: 50, onPaid: () => sleep(150) })
    expect(reasonOf(await settle({ notification: n, req, source: 'pay', store }))).to.equal('HANDLER_TIMEOUT')
    expect(await keys(store)).to.deep.equal([unsettledKey(n)])
    await sleep(200)
    expect(await keys(store)).to.deep.equal([])
  })

  it('the answer never waits for the removal, and a failed removal is only logged', async () => {
    const store = new MemoryStore()
    const first = payment()
    await store.watchUnsettled(recordOf(first))
    let removals = 0
    store.resolveUnsettled = () => { removals++; return new Promise(() => undefined) }
    const { settle } = settlement()
    const started = Date.now()
    expect(reasonOf(await settle({ notification: first, req, source: 'notify', store }))).to.equal('settled')
    expect(Date.now() - started).to.be.below(1000)
    await sleep(0)
    expect(removals).to.equal(1, 'the watched order is removed')
    const failing = new MemoryStore()
    const second = payment()
    await failing.watchUnsettled(recordOf(second))
    failing.resolveUnsettled = async () => { throw new Error('ledger down') }
    const { settle: settle2, logger } = settlement()
    expect(reasonOf(await settle2({ notification: second, req, source: 'notify', store: failing }))).to.equal('settled')
    await sleep(0)
    expect(logger.lines.filter((l) => l.level === 'warn').map((l) => l.message).join('\n')).to.match(/could not remove the settled .*ledger down/)
  })

  it('an order the ledger does not hold costs no ledger call: a new payment, its duplicates, a failure notice (issue 20)', async () => {
    const store = new MemoryStore()
    const calls: string[] = []
    for (const name of ['watchUnsettled', 'resolveUnsettled', 'listUnsettled', 'takeDueUnsettled'] as const) {
      const real = store[name].bind(store) as (...args: unknown[]) => Promise<unknown>
      ;(store as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => { calls.push(name); return real(...args) }
    }
    const { settle } = settlement({ onPayFailed: () => undefined })
    const n = payment()
    expect(reasonOf(await settle({ notification: n, req, source: 'pay', store }))).to.equal('settled')
    expect(reasonOf(await settle({ notification: n, req, source: 'notify', store }))).to.equal('duplicate')
    expect(reasonOf(await settle({ notification: n, req, source: 'notify', store }))).to.equal('duplicate')
    const failed = payment({ tradeNo: '' })
    expect(reasonOf(await settle({ notification: failed, req, source: 'notify', store }))).to.equal('settled')
    expect(reasonOf(await settle({ notification: failed, req, source: 'notify', store }))).to.equal('duplicate')
    await sleep(10)
    expect(calls).to.deep.equal([])
    // A watched order is still removed, once.
    const watched = payment()
    await store.watchUnsettled(recordOf(watched))
    calls.length = 0
    expect(reasonOf(await settle({ notification: watched, req, source: 'notify', store }))).to.equal('settled')
    expect(reasonOf(await settle({ notification: watched, req, source: 'notify', store }))).to.equal('duplicate')
    await sleep(10)
    expect(calls).to.deep.equal(['resolveUnsettled'])
    expect(await keys(store)).to.deep.equal([])
  })

  it('a store that keeps no marks (watched absent) has every settlement remove its order, as before', async () => {
    const { store } = transactionalWithLedger()
    let removals = 0
    const resolve = store.resolveUnsettled
    store.resolveUnsettled = (k) => { removals++; return resolve(k) }
    const { settle } = settlement()
    const n = payment()
    await settle({ notification: n, req, source: 'notify', store })
    await settle({ notification: n, req, source: 'notify', store })
    await sleep(10)
    expect(removals).to.equal(2)
  })

  describe('with a transactional store', () => {
    it('a settled payment leaves the ledger', async () => {
      const { store } = transactionalWithLedger()
      const n = payment()
      await store.watchUnsettled(recordOf(n))
      const { settle } = settlement()
      expect(reasonOf(await settle({ notification: n, req, source: 'notify', store }))).to.equal('settled')
      await sleep(0)
      expect(await keys(store)).to.deep.equal([])
    })

    it('the sweep checks each due record with a transaction that rolls back: done is dropped, busy kept, the rest reported', async () => {
      const { store, done, held, log } = transactionalWithLedger()
      const [settled, busy, open, failedNotice] = [payment(), payment(), payment(), payment()]
      for (const n of [settled, busy, open, failedNotice]) await store.watchUnsettled(recordOf(n))
      done.add(unsettledKey(settled))
      held.add(unsettledKey(busy))
      done.add(`${APP_ID}:failed:${failedNotice.outerTradeNo}`)
      const reported: string[] = []
      const result = await sweepUnsettled({ store, onUnsettled: (r) => { reported.push(r.outerTradeNo) }, logger: recordingLogger() })
      expect(result.map((r) => r.outerTradeNo)).to.deep.equal([open.outerTradeNo])
      expect(reported).to.deep.equal([open.outerTradeNo])
      expect(log.filter((l) => l.startsWith('commit')), 'a probe never commits').to.deep.equal([])
      expect(log).to.include(`rollback ${unsettledKey(open)}`)
      expect((await listUnsettled(store)).map((r) => r.outerTradeNo), 'only the busy one is kept').to.deep.equal([busy.outerTradeNo])
    })
  })
})
