/**
 * The settlement core's less travelled paths (src/core/settle/settle.ts, claim.ts, hooks.ts): no store,
 * a lost lease, the order check and its hook, the retry-budget alert's conditions, and the
 * transactional branch's time-outs, attempts and ledger removals. Fast, in memory.
 */
import { expect } from 'chai'
import { createSettlement, type Settlement, type SettleOutcome } from '../../src/core/settle/settle'
import { keepLease } from '../../src/core/settle/claim'
import { unsettledKey } from '../../src/core/settle/unsettled'
import { MemoryStore } from '../../src/stores/memory'
import { toLogger } from '../../src/observe/log'
import type { Notification, NotifyStore, RetryBudgetInfo, SettleOptions, TransactionalStore, UnsettledLedger, UnsettledRecord } from '../../src/kernel/types'
import { APP_ID, recordingLogger, sleep } from '../helpers'

let seq = 0
function payment(overrides: Partial<Notification> = {}): Notification {
  seq += 1
  return {
    appId: APP_ID, outerTradeNo: `P${Date.now() % 1e8}${seq}`, tradeNo: `20180709${String(seq).padStart(8, '0')}`,
    buyerOpenId: 'buyer', totalAmount: '12.50', totalFen: 1250, attach: '', timestamp: Math.floor(Date.now() / 1000),
    raw: {}, ...overrides,
  }
}

const req = {} as Settlement['req']
const reasonOf = (o: SettleOutcome) => (o.answer === 'fail' ? o.rejection.reason : o.how)
const problems = (logger: ReturnType<typeof recordingLogger>) => logger.lines.filter((l) => l.level !== 'debug').map((l) => [l.level, l.context])

function settlement(options: Partial<SettleOptions> = {}) {
  const logger = recordingLogger()
  return { settle: createSettlement({ onPaid: () => {}, logger, ...options }), logger }
}

/** A TransactionalStore in memory with a ledger; `delayMs` before it claims, `answer` to force done/busy. */
function transactional(options: { delayMs?: number; answer?: 'done' | 'busy' } = {}) {
  const ledger = new MemoryStore()
  let attempts = 0
  const store: TransactionalStore & UnsettledLedger = {
    transactional: true,
    retentionMs: 1000,
    async settle(_key, work) {
      if (options.delayMs) await sleep(options.delayMs)
      if (options.answer) return { status: options.answer }
      await work({}, ++attempts)
      return { status: 'completed' }
    },
    watchUnsettled: (r) => ledger.watchUnsettled(r),
    resolveUnsettled: (k) => ledger.resolveUnsettled(k),
    listUnsettled: (l) => ledger.listUnsettled(l),
    takeDueUnsettled: (now, l, lease) => ledger.takeDueUnsettled(now, l, lease),
  }
  return store
}

function recordOf(n: Notification): UnsettledRecord {
  return {
    key: unsettledKey(n), appId: n.appId, outerTradeNo: n.outerTradeNo, totalAmount: n.totalAmount, totalFen: n.totalFen,
    buyerOpenId: n.buyerOpenId, tradeNo: null, reason: 'AMBIGUOUS', since: 1, deadline: 2,
  }
}

describe('settlement core paths', () => {
  describe('without a store', () => {
    it('runs the handler once per call, as attempt 1, and answers settled; a slow one times out', async () => {
      const seen: unknown[] = []
      const { settle } = settlement({ onPaid: (_p, _r, ctx) => { seen.push(ctx) } })
      expect(reasonOf(await settle({ notification: payment(), req, source: 'pay' }))).to.equal('settled')
      expect(seen).to.deep.equal([{ source: 'pay', attempt: 1 }])
      const slow = settlement({ handlerTimeoutMs: 20, onPaid: () => sleep(200) })
      expect(reasonOf(await slow.settle({ notification: payment(), req, source: 'notify' }))).to.equal('HANDLER_TIMEOUT')
    })
  })

  describe('claim stores', () => {
    it('a handler that finished after its lease was lost: still success, and a LEASE_LOST warning', async () => {
      const inner = new MemoryStore()
      const store: NotifyStore = {
        leaseMs: inner.leaseMs, retentionMs: inner.retentionMs,
        claim: (k) => inner.claim(k), release: (k, o) => inner.release(k, o), complete: async () => false,
      }
      const n = payment()
      const { settle, logger } = settlement()
      expect(reasonOf(await settle({ notification: n, req, source: 'notify', store }))).to.equal('settled')
      expect(problems(logger)).to.deep.equal([['warn', { outerTradeNo: n.outerTradeNo, reason: 'LEASE_LOST' }]])
    })

    it('a key held by another request: IN_PROGRESS naming the order', async () => {
      const store = new MemoryStore()
      const n = payment()
      const { settle } = settlement({ onPaid: () => sleep(100) })
      const first = settle({ notification: n, req, source: 'notify', store })
      await sleep(10)
      const second = await settle({ notification: n, req, source: 'pay', store })
      expect(second.answer === 'fail' && [second.rejection.reason, second.rejection.context]).to.deep.equal(['IN_PROGRESS', { outerTradeNo: n.outerTradeNo }])
      expect(reasonOf(await first)).to.equal('settled')
    })

    it('a duplicate is logged at debug only, with its channel', async () => {
      const store = new MemoryStore()
      const n = payment()
      const { settle, logger } = settlement()
      await settle({ notification: n, req, source: 'notify', store })
      expect(reasonOf(await settle({ notification: n, req, source: 'pay', store }))).to.equal('duplicate')
      expect(logger.lines.map((l) => [l.level, l.context])).to.deep.equal([['debug', { outerTradeNo: n.outerTradeNo, reason: 'DUPLICATE', source: 'pay' }]])
    })
  })

  describe('the order check', () => {
    it('a mismatch: ORDER_MISMATCH carrying what differs (logged once, by whoever answers), and onMismatch told', async () => {
      const told: unknown[] = []
      const n = payment()
      const { settle, logger } = settlement({ findOrder: () => ({ totalFen: 1 }), onMismatch: (m) => { told.push(m.problem) } })
      const outcome = await settle({ notification: n, req, source: 'notify', store: new MemoryStore() })
      expect(outcome.answer === 'fail' && [outcome.rejection.reason, outcome.rejection.context]).to.deep.equal(['ORDER_MISMATCH', {
        problem: 'amount', outerTradeNo: n.outerTradeNo, totalAmount: '12.50', buyerOpenId: 'buyer', tradeNo: n.tradeNo,
      }])
      expect(problems(logger)).to.deep.equal([])
      await sleep(0)
      expect(told).to.deep.equal(['amount'])
    })

    it('without onMismatch nothing else is called or logged', async () => {
      const { settle, logger } = settlement({ findOrder: () => null })
      expect(reasonOf(await settle({ notification: payment(), req, source: 'notify', store: new MemoryStore() }))).to.equal('ORDER_MISMATCH')
      await sleep(0)
      expect(logger.reasons()).to.deep.equal([])
    })

    it('an onMismatch that throws is logged as HOOK_FAILED naming the hook and the order', async () => {
      const n = payment()
      const { settle, logger } = settlement({ findOrder: () => null, onMismatch: () => { throw new Error('pager down') } })
      await settle({ notification: n, req, source: 'notify', store: new MemoryStore() })
      await sleep(0)
      expect(problems(logger)).to.deep.equal([['error', { outerTradeNo: n.outerTradeNo, reason: 'HOOK_FAILED', hook: 'onMismatch' }]])
    })

    it('is not asked for a failure notice, which has no trade number to compare', async () => {
      let asked = 0
      const failed: Notification[] = []
      const { settle } = settlement({ findOrder: () => { asked += 1; return null }, onPayFailed: (n) => { failed.push(n) } })
      const n = payment({ tradeNo: '' })
      expect(reasonOf(await settle({ notification: n, req, source: 'notify', store: new MemoryStore() }))).to.equal('settled')
      expect([asked, failed]).to.deep.equal([0, [n]])
    })

    it('a failure notice without onPayFailed is settled with a PAY_FAILED_UNHANDLED warning', async () => {
      const n = payment({ tradeNo: '' })
      const { settle, logger } = settlement()
      expect(reasonOf(await settle({ notification: n, req, source: 'notify', store: new MemoryStore() }))).to.equal('settled')
      expect(problems(logger)).to.deep.equal([['warn', { outerTradeNo: n.outerTradeNo, reason: 'PAY_FAILED_UNHANDLED' }]])
    })
  })

  describe('onRetryBudgetLow', () => {
    async function alerts(source: Settlement['source'], threshold: number, attempts: number, store: () => Settlement['store']) {
      const seen: RetryBudgetInfo[] = []
      const { settle } = settlement({ retryBudgetThreshold: threshold, onRetryBudgetLow: (info) => { seen.push(info) }, onPaid: () => { throw new Error('db down') } })
      const n = payment()
      const s = store()
      for (let i = 0; i < attempts; i++) await settle({ notification: n, req, source, store: s })
      await sleep(0)
      return seen.map((info) => [info.attempt, info.reason])
    }

    it('fires once per payment, at the threshold, for the notification channel only', async () => {
      const store = () => new MemoryStore()
      expect(await alerts('notify', 2, 3, store)).to.deep.equal([[2, 'HANDLER_FAILED']])
      expect(await alerts('pay', 1, 2, store)).to.deep.equal([])
    })

    it('counts a transactional store\'s attempts, and a STORE_FAILED answer (the handler never started) in memory', async () => {
      expect(await alerts('notify', 1, 2, () => transactional())).to.deep.equal([[1, 'HANDLER_FAILED']])
      const seen: RetryBudgetInfo[] = []
      const { settle } = settlement({ retryBudgetThreshold: 1, storeTimeoutMs: 20, onRetryBudgetLow: (info) => { seen.push(info) } })
      expect(reasonOf(await settle({ notification: payment(), req, source: 'notify', store: transactional({ delayMs: 100 }) }))).to.equal('STORE_FAILED')
      await sleep(0)
      expect(seen.map((info) => [info.attempt, info.reason])).to.deep.equal([[1, 'STORE_FAILED']])
    })
  })

  describe('transactional stores', () => {
    it('the store timeout bounds only the wait for the claim: a handler slower than it, within handlerTimeoutMs, settles', async () => {
      const { settle } = settlement({ storeTimeoutMs: 30, handlerTimeoutMs: 2000, onPaid: () => sleep(150) })
      expect(reasonOf(await settle({ notification: payment(), req, source: 'notify', store: transactional() }))).to.equal('settled')
    })

    it('a settlement\'s own storeTimeoutMs wins over the option', async () => {
      const { settle } = settlement()
      const started = Date.now()
      const outcome = await settle({ notification: payment(), req, source: 'notify', store: transactional({ delayMs: 300 }), storeTimeoutMs: 20 })
      expect(reasonOf(outcome)).to.equal('STORE_FAILED')
      expect(Date.now() - started).to.be.below(250)
    })

    it('a store that resolves with no result: STORE_FAILED, and no unhandled rejection on the side', async () => {
      const unhandled: unknown[] = []
      const onUnhandled = (reason: unknown) => { unhandled.push(reason) }
      process.on('unhandledRejection', onUnhandled)
      try {
        const store = transactional()
        store.settle = async (_key, work) => { await work({}, 1); return undefined as never }
        const { settle } = settlement()
        expect(reasonOf(await settle({ notification: payment(), req, source: 'notify', store }))).to.equal('STORE_FAILED')
        await sleep(10)
      } finally {
        process.off('unhandledRejection', onUnhandled)
      }
      expect(unhandled).to.deep.equal([])
    })

    it('settled now or before leaves the ledger; busy and failed do not', async () => {
      const cases: [string, TransactionalStore & UnsettledLedger, Partial<SettleOptions>, string, boolean][] = [
        ['completed', transactional(), {}, 'settled', true],
        ['done', transactional({ answer: 'done' }), {}, 'duplicate', true],
        ['busy', transactional({ answer: 'busy' }), {}, 'IN_PROGRESS', false],
        ['failed', transactional(), { onPaid: () => { throw new Error('db down') } }, 'HANDLER_FAILED', false],
      ]
      for (const [what, store, options, reason, removed] of cases) {
        const n = payment()
        await store.watchUnsettled(recordOf(n))
        const { settle } = settlement(options)
        expect(reasonOf(await settle({ notification: n, req, source: 'pay', store })), what).to.equal(reason)
        await sleep(0)
        expect((await store.listUnsettled()).length, what).to.equal(removed ? 0 : 1)
      }
    })
  })

  describe('keepLease', () => {
    it('stops renewing after maxMs, with a warning, while the handler still runs', async () => {
      let renewals = 0
      const store: NotifyStore = {
        leaseMs: 30, retentionMs: 1000,
        claim: async () => ({ status: 'busy' }), complete: async () => true, release: async () => true,
        extend: async () => { renewals += 1; return true },
      }
      const lines = recordingLogger()
      const stop = keepLease({ store, key: 'k', owner: 'o', attempt: 1, storeTimeoutMs: 100, outerTradeNo: 'O1' }, toLogger(lines), 60)
      await sleep(300)
      stop()
      expect(renewals).to.be.within(1, 6)
      expect(lines.lines.map((l) => [l.level, l.context])).to.deep.equal([['warn', { outerTradeNo: 'O1', reason: 'HANDLER_TIMEOUT', key: 'k' }]])
    })
  })
})
