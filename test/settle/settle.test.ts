/**
 * The settlement core on its own: hooks that hang or throw, a handler slower than its time-out
 * and its lease, a store whose extend() misbehaves, and the transactional branch.
 */
import { expect } from 'chai'
import { readFileSync } from 'node:fs'
import { DEFAULTS } from '../../src/kernel/defaults'
import { MemoryStore } from '../../src/stores/memory'
import { RETRY_BUDGET_MEMORY } from '../../src/core/settle/retry-budget'
import { createSettlement, type Settlement, type SettleOutcome } from '../../src/core/settle/settle'
import type { NotifyStore, Notification, SettleOptions, TransactionalStore } from '../../src/kernel/types'
import { APP_ID, recordingLogger, sleep } from '../helpers'

let seq = 0
function payment(overrides: Partial<Notification> = {}): Notification {
  seq += 1
  return {
    appId: APP_ID, outerTradeNo: `S${Date.now() % 1e8}${seq}`, tradeNo: `20180709${String(seq).padStart(8, '0')}`,
    buyerOpenId: 'buyer', totalAmount: '12.50', totalFen: 1250, attach: '', timestamp: Math.floor(Date.now() / 1000),
    raw: {}, ...overrides,
  }
}

const req = {} as Settlement['req']
const reasonOf = (o: SettleOutcome) => (o.answer === 'fail' ? o.rejection.reason : o.how)
const never = () => new Promise<never>(() => {})

function settlement(options: Partial<SettleOptions> = {}) {
  const logger = recordingLogger()
  const settle = createSettlement({ onPaid: () => {}, logger, ...options })
  return { settle, logger }
}

describe('settlement core', () => {
  describe('hooks never delay or change an answer', () => {
    it('an onMismatch that never resolves: ORDER_MISMATCH is answered at once', async () => {
      const { settle } = settlement({ findOrder: () => null, onMismatch: never })
      const started = Date.now()
      const outcome = await settle({ notification: payment(), req, source: 'notify', store: new MemoryStore() })
      expect(reasonOf(outcome)).to.equal('ORDER_MISMATCH')
      expect(Date.now() - started).to.be.below(1000)
    })

    it('an onRetryBudgetLow that never resolves, or throws, leaves the answer as it was', async () => {
      for (const hook of [never, () => { throw new Error('pager down') }, () => Promise.reject(new Error('pager down'))]) {
        const store = new MemoryStore()
        const { settle, logger } = settlement({
          retryBudgetThreshold: 1, onRetryBudgetLow: hook, onPaid: () => { throw new Error('db down') },
        })
        const outcome = await settle({ notification: payment(), req, source: 'notify', store })
        expect(reasonOf(outcome)).to.equal('HANDLER_FAILED')
        await sleep(5)
        if (hook !== never) expect(logger.lines.map((l) => l.message).join('\n')).to.contain('onRetryBudgetLow threw: pager down')
      }
    })

    it(`onRetryBudgetLow's memory holds ${RETRY_BUDGET_MEMORY} payments: past that the oldest is forgotten, a recent one still alerts`, async () => {
      const alarms: string[] = []
      const { settle } = settlement({
        retryBudgetThreshold: 2, onRetryBudgetLow: (info) => { alarms.push(info.notification.outerTradeNo) },
        onPaid: () => { throw new Error('db down') },
      })
      const payments = Array.from({ length: RETRY_BUDGET_MEMORY + 1 }, () => payment())
      for (const n of payments) await settle({ notification: n, req, source: 'notify' })
      const [oldest, recent] = [payments[0], payments[RETRY_BUDGET_MEMORY]]
      await settle({ notification: oldest, req, source: 'notify' })
      await settle({ notification: recent, req, source: 'notify' })
      expect(alarms).to.deep.equal([recent.outerTradeNo])
    })

    it('a settled payment starts counting again from zero (its failures are forgotten)', async () => {
      const alarms: number[] = []
      let fail = true
      const { settle } = settlement({
        retryBudgetThreshold: 2, onRetryBudgetLow: (info) => { alarms.push(info.attempt) },
        onPaid: () => { if (fail) throw new Error('db down') },
      })
      const n = payment()
      await settle({ notification: n, req, source: 'notify' })
      fail = false
      expect(reasonOf(await settle({ notification: n, req, source: 'notify' }))).to.equal('settled')
      fail = true
      await settle({ notification: n, req, source: 'notify' })
      expect(alarms).to.deep.equal([])
    })

    it('a throwing onMismatch does not change ORDER_MISMATCH', async () => {
      const { settle, logger } = settlement({ findOrder: () => ({ totalFen: 1 }), onMismatch: () => { throw new Error('x') } })
      const outcome = await settle({ notification: payment(), req, source: 'notify', store: new MemoryStore() })
      expect(reasonOf(outcome)).to.equal('ORDER_MISMATCH')
      expect(logger.lines.some((l) => l.message.includes('onMismatch threw: x'))).to.equal(true)
    })
  })

  describe('duplicates, with the least a shop configures', () => {
    it('a logger without debug (it is optional): a duplicate is acknowledged', async () => {
      const lines: string[] = []
      const logger = { info: (_: object, m: string) => lines.push(m), warn: (_: object, m: string) => lines.push(m), error: (_: object, m: string) => lines.push(m) }
      const settle = createSettlement({ onPaid: () => {}, logger })
      const store = new MemoryStore()
      const n = payment()
      expect(await settle({ notification: n, req, source: 'notify', store })).to.deep.equal({ answer: 'success', how: 'settled' })
      expect(await settle({ notification: n, req, source: 'notify', store })).to.deep.equal({ answer: 'success', how: 'duplicate' })
      expect(lines).to.deep.equal([])
    })

    it('a duplicate that differs from what settled, with no onMismatch: one CHANNEL_MISMATCH error, no hook failure', async () => {
      const { settle, logger } = settlement()
      const store = new MemoryStore()
      const n = payment()
      await settle({ notification: n, req, source: 'notify', store })
      const outcome = await settle({ notification: { ...n, totalFen: 1, totalAmount: '0.01' }, req, source: 'notify', store })
      expect(outcome).to.deep.equal({ answer: 'success', how: 'duplicate' })
      await sleep(5)
      expect(logger.reasons()).to.deep.equal(['CHANNEL_MISMATCH'])
    })
  })

  describe("a failure notice's peek of the payment key", () => {
    /** A MemoryStore whose peek answers after 30 ms. */
    const slowPeek = () => {
      const store = new MemoryStore()
      const peek = store.peek.bind(store)
      store.peek = async (key, note) => { await sleep(30); return peek(key, note) }
      return store
    }
    const failure = () => payment({ tradeNo: '' })

    it('waits the settlement\'s storeTimeoutMs, or the one its caller gives', async () => {
      const byDefault = settlement({ storeTimeoutMs: 2000, onPayFailed: () => {} })
      expect(await byDefault.settle({ notification: failure(), req, source: 'notify', store: slowPeek() }))
        .to.deep.equal({ answer: 'success', how: 'settled' })
      const byCaller = settlement({ storeTimeoutMs: 5, onPayFailed: () => {} })
      expect(await byCaller.settle({ notification: failure(), req, source: 'notify', store: slowPeek(), storeTimeoutMs: 2000 }))
        .to.deep.equal({ answer: 'success', how: 'settled' })
      const short = settlement({ storeTimeoutMs: 5, onPayFailed: () => {} })
      expect(reasonOf(await short.settle({ notification: failure(), req, source: 'notify', store: slowPeek() }))).to.equal('STORE_FAILED')
    })
  })

  describe('a handler slower than handlerTimeoutMs and the lease', () => {
    it('keeps its lease renewed until it settles: a retry past the lease gets IN_PROGRESS, then success; onPaid ran once', async () => {
      const store = new MemoryStore({ leaseMs: 150 })
      let runs = 0
      const { settle } = settlement({
        handlerTimeoutMs: 50,
        onPaid: async () => { runs += 1; await sleep(700) },
      })
      const n = payment()
      const first = await settle({ notification: n, req, source: 'notify', store })
      expect(reasonOf(first)).to.equal('HANDLER_TIMEOUT')
      await sleep(400) // well past the 150 ms lease
      expect(reasonOf(await settle({ notification: n, req, source: 'notify', store }))).to.equal('IN_PROGRESS')
      await sleep(500)
      expect(reasonOf(await settle({ notification: n, req, source: 'notify', store }))).to.equal('duplicate')
      expect(runs).to.equal(1)
    })
  })

  describe('the lease renewal cap (DEFAULTS.leaseRenewalCapMs: README, "Reason codes"; docs/operations.md)', () => {
    it('renews a timed-out handler\'s lease until 10 minutes after it started, then stops (HANDLER_TIMEOUT warning): the lease runs out and a retry runs the handler again', async () => {
      expect(DEFAULTS.leaseRenewalCapMs).to.equal(10 * 60 * 1000)
      const realNow = Date.now
      let skew = 0
      Date.now = () => realNow() + skew
      try {
        const store = new MemoryStore({ leaseMs: 90, now: realNow })
        let runs = 0
        const { settle, logger } = settlement({ handlerTimeoutMs: 20, onPaid: async () => { runs += 1; if (runs === 1) await never() } })
        const n = payment()
        expect(reasonOf(await settle({ notification: n, req, source: 'notify', store }))).to.equal('HANDLER_TIMEOUT')
        // Just before the cap the lease is still renewed: a retry well past leaseMs is IN_PROGRESS.
        skew = DEFAULTS.leaseRenewalCapMs - 1000
        await sleep(300)
        expect(reasonOf(await settle({ notification: n, req, source: 'notify', store }))).to.equal('IN_PROGRESS')
        expect(logger.lines.filter((l) => l.context?.reason === 'HANDLER_TIMEOUT' && l.level === 'warn')).to.have.length(0)
        // Past the cap: renewal stops, with a warning, and the lease lapses within leaseMs.
        skew = DEFAULTS.leaseRenewalCapMs + 1000
        await sleep(300)
        const stopped = logger.lines.filter((l) => l.level === 'warn' && l.context?.reason === 'HANDLER_TIMEOUT')
        expect(stopped.map((l) => l.message)).to.have.length(1)
        expect(stopped[0].message).to.match(/still running after 600000 ms; no longer renewing its lease/)
        expect(reasonOf(await settle({ notification: n, req, source: 'notify', store }))).to.equal('settled')
        expect(runs, 'the retry ran the handler alongside the one still running').to.equal(2)
      } finally {
        Date.now = realNow
      }
    })
  })

  describe('the docs on the lease after a handler timeout', () => {
    const read = (doc: string) => readFileSync(new URL(`../../${doc}`, import.meta.url), 'utf8')
    const cap = `${DEFAULTS.leaseRenewalCapMs / 60_000} minutes`
    /** The paragraph or list item holding `text`, on one line. */
    const paragraphWith = (doc: string, text: string) =>
      doc.split(/\n\n|\n(?=- )/).map((p) => p.replace(/\s+/g, ' ')).find((p) => p.includes(text)) ?? ''

    it(`README, docs/operations.md and docs/settlement.md say the lease is renewed past handlerTimeoutMs up to ${cap}, never that it stops at the timeout`, () => {
      const readme = read('README.md')
      const operations = read('docs/operations.md')
      expect(paragraphWith(readme, 'A handler that times out keeps its claim')).to.contain(cap)
      expect(paragraphWith(operations, '**Lease extension.**')).to.contain(cap)
      expect(paragraphWith(operations, 'a lease that ran out while `onPaid` was still running')).to.contain(cap)
      expect(paragraphWith(read('docs/settlement.md'), 'the lease is renewed, also past `handlerTimeoutMs`')).to.contain(cap)
      for (const doc of ['README.md', 'docs/operations.md', 'docs/settlement.md']) {
        expect(read(doc).replace(/\s+/g, ' '), doc).to.not.match(/lease (is|was) no longer (extended|renewed)/)
      }
    })
  })

  describe("a custom store's extend()", () => {
    function withExtend(extend: NotifyStore['extend']): NotifyStore {
      const inner = new MemoryStore({ leaseMs: 60 })
      return {
        claim: (k) => inner.claim(k), complete: (k, o) => inner.complete(k, o), release: (k, o) => inner.release(k, o),
        extend, leaseMs: inner.leaseMs, retentionMs: inner.retentionMs,
      }
    }

    it('throwing synchronously is logged and retried, never an uncaught exception; the handler still settles', async () => {
      let calls = 0
      const store = withExtend(() => { calls += 1; throw new Error('sync boom') })
      const { settle, logger } = settlement({ onPaid: () => sleep(150) })
      expect(reasonOf(await settle({ notification: payment(), req, source: 'notify', store }))).to.equal('settled')
      expect(calls).to.be.greaterThan(0)
      expect(logger.lines.some((l) => String(l.context?.error).includes('sync boom'))).to.equal(true)
    })

    it('returning a plain true (not a promise) keeps renewing', async () => {
      let calls = 0
      const store = withExtend((() => { calls += 1; return true }) as unknown as NotifyStore['extend'])
      const { settle } = settlement({ onPaid: () => sleep(150) })
      expect(reasonOf(await settle({ notification: payment(), req, source: 'notify', store }))).to.equal('settled')
      expect(calls).to.be.greaterThan(1)
    })
  })

  describe('a transactional store', () => {
    /** An in-memory TransactionalStore: a done set, a held set, and a log of what each settle did. */
    function memoryTransactions(options: { commitFails?: boolean; claimDelayMs?: number } = {}) {
      const done = new Set<string>()
      const held = new Set<string>()
      const attempts = new Map<string, number>()
      const log: string[] = []
      const store: TransactionalStore<{ writes: string[] }> = {
        transactional: true,
        retentionMs: 1000,
        async settle(key, work) {
          if (options.claimDelayMs) await sleep(options.claimDelayMs)
          if (done.has(key)) return { status: 'done' }
          if (held.has(key)) return { status: 'busy' }
          held.add(key)
          const attempt = (attempts.get(key) ?? 0) + 1
          attempts.set(key, attempt)
          const tx = { writes: [] as string[] }
          try {
            await work(tx, attempt)
            if (options.commitFails) throw new Error('connection lost at COMMIT')
            done.add(key)
            log.push(`commit ${tx.writes.join(',')}`)
            return { status: 'completed' }
          } catch (err) {
            log.push('rollback')
            throw err
          } finally {
            held.delete(key)
          }
        },
      }
      return { store, log }
    }

    it('runs the handler with ctx.tx inside the transaction and answers success after the commit; a duplicate reads done', async () => {
      const { store, log } = memoryTransactions()
      const seen: unknown[] = []
      const { settle } = settlement({ onPaid: (p, _r, ctx) => { seen.push(ctx); (ctx.tx as { writes: string[] }).writes.push(p.outerTradeNo) } })
      const n = payment()
      expect(reasonOf(await settle({ notification: n, req, source: 'notify', store }))).to.equal('settled')
      expect(reasonOf(await settle({ notification: n, req, source: 'pay', store }))).to.equal('duplicate')
      expect(log).to.deep.equal([`commit ${n.outerTradeNo}`])
      expect(seen).to.deep.equal([{ source: 'notify', attempt: 1, tx: { writes: [n.outerTradeNo] } }])
    })

    it('a handler that throws rolls back and answers HANDLER_FAILED; the next attempt runs it again', async () => {
      const { store, log } = memoryTransactions()
      let calls = 0
      const { settle } = settlement({ onPaid: () => { calls += 1; if (calls === 1) throw new Error('constraint') } })
      const n = payment()
      expect(reasonOf(await settle({ notification: n, req, source: 'notify', store }))).to.equal('HANDLER_FAILED')
      expect(reasonOf(await settle({ notification: n, req, source: 'notify', store }))).to.equal('settled')
      expect(log).to.deep.equal(['rollback', 'commit '])
    })

    it('a duplicate while the first holds the key answers IN_PROGRESS at once', async () => {
      const { store } = memoryTransactions()
      const { settle } = settlement({ onPaid: () => sleep(200) })
      const n = payment()
      const first = settle({ notification: n, req, source: 'notify', store })
      await sleep(20)
      expect(reasonOf(await settle({ notification: n, req, source: 'notify', store }))).to.equal('IN_PROGRESS')
      expect(reasonOf(await first)).to.equal('settled')
    })

    it('a failed COMMIT answers STORE_FAILED, never success', async () => {
      const { store } = memoryTransactions({ commitFails: true })
      const { settle } = settlement()
      const outcome = await settle({ notification: payment(), req, source: 'notify', store })
      expect(reasonOf(outcome)).to.equal('STORE_FAILED')
    })

    it('onRetryBudgetLow: a database that cannot be reached (STORE_FAILED) and a held row (IN_PROGRESS) count too, in memory; one alarm', async () => {
      const { store } = memoryTransactions()
      const alarms: Array<[number, string]> = []
      let down = true
      const settleOrRefuse: typeof store.settle = (key, work) => (down ? Promise.reject(new Error('ECONNREFUSED')) : store.settle(key, work))
      const { settle } = settlement({
        retryBudgetThreshold: 4, onPaid: () => sleep(100), onRetryBudgetLow: (info) => { alarms.push([info.attempt, info.reason]) },
      })
      const n = payment()
      const unreachable = { ...store, settle: settleOrRefuse }
      for (let i = 0; i < 2; i++) expect(reasonOf(await settle({ notification: n, req, source: 'notify', store: unreachable }))).to.equal('STORE_FAILED')
      down = false
      const first = settle({ notification: n, req, source: 'notify', store: unreachable })
      await sleep(20)
      for (let i = 0; i < 3; i++) expect(reasonOf(await settle({ notification: n, req, source: 'notify', store: unreachable }))).to.equal('IN_PROGRESS')
      expect(reasonOf(await first)).to.equal('settled')
      expect(alarms).to.deep.equal([[4, 'IN_PROGRESS']])
    })

    it('a claim slower than storeTimeoutMs answers STORE_FAILED, and when it arrives it rolls back without running the handler', async () => {
      const { store, log } = memoryTransactions({ claimDelayMs: 150 })
      let calls = 0
      const { settle } = settlement({ storeTimeoutMs: 50, onPaid: () => { calls += 1 } })
      expect(reasonOf(await settle({ notification: payment(), req, source: 'notify', store }))).to.equal('STORE_FAILED')
      await sleep(200)
      expect(calls).to.equal(0)
      expect(log).to.deep.equal(['rollback'])
    })
  })
})
