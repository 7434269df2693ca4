/**
 * The unsettled ledger's functions on their own (src/core/settle/unsettled.ts), in memory and fast:
 * the sweep's options and defaults, what it asks the store, how it probes each kind of store,
 * and what it does when a store or the hook fails. The same paths behind the router, on every
 * store, are in unsettled.test.ts.
 */
import { expect } from 'chai'
import { DEFAULTS } from '../../src/kernel/defaults'
import { GuanaitongError } from '../../src/kernel/errors'
import { toLogger } from '../../src/observe/log'
import {
  forgetUnsettled, hasUnsettledLedger, listUnsettled, startSweeping, sweepUnsettled, unsettledKey, watchUnsettled,
} from '../../src/core/settle/unsettled'
import { notificationKey } from '../../src/core/settle/key'
import { MemoryStore } from '../../src/stores/memory'
import type { Notification, TransactionalStore, UnsettledLedger, UnsettledRecord } from '../../src/kernel/types'
import type { SweepOptions } from '../../src/core/settle/unsettled'
import { APP_ID, recordingLogger, sleep } from '../helpers'

const NOW = 1_700_000_000_000
let seq = 0

function record(overrides: Partial<UnsettledRecord> = {}): UnsettledRecord {
  const outerTradeNo = `SW${++seq}`
  return {
    key: `${APP_ID}:paid:${outerTradeNo}`, appId: APP_ID, outerTradeNo, totalAmount: '12.50', totalFen: 1250,
    buyerOpenId: 'buyer', tradeNo: null, reason: 'AMBIGUOUS', since: NOW - 2000, deadline: NOW - 1000, ...overrides,
  }
}

const failedKey = (r: UnsettledRecord) => notificationKey({ appId: r.appId, outerTradeNo: r.outerTradeNo, tradeNo: '' })

/** A MemoryStore whose ledger calls are recorded. */
function recorded(store = new MemoryStore()) {
  const takes: [number, number, number][] = []
  const lists: (number | undefined)[] = []
  const take = store.takeDueUnsettled.bind(store)
  const list = store.listUnsettled.bind(store)
  store.takeDueUnsettled = (now, limit, leaseMs) => { takes.push([now, limit, leaseMs]); return take(now, limit, leaseMs) }
  store.listUnsettled = (limit) => { lists.push(limit); return list(limit) }
  return { store, takes, lists }
}

async function rejection(promise: Promise<unknown>): Promise<GuanaitongError> {
  const err = await promise.then(() => expect.fail('resolved'), (e: unknown) => e)
  expect(err).to.be.instanceOf(GuanaitongError)
  return err as GuanaitongError
}

function sweep(options: Partial<SweepOptions> & Pick<SweepOptions, 'store'>) {
  const logger = recordingLogger()
  const reported: UnsettledRecord[] = []
  const done = sweepUnsettled({ onUnsettled: (r) => { reported.push(r) }, logger, now: () => NOW, ...options })
  return { done, reported, logger }
}

describe('unsettled ledger functions', () => {
  describe('hasUnsettledLedger, unsettledKey', () => {
    it('a ledger needs all four methods; null, a primitive or a store missing one is none', () => {
      const full = { watchUnsettled() {}, resolveUnsettled() {}, listUnsettled() {}, takeDueUnsettled() {} }
      expect(hasUnsettledLedger(full)).to.equal(true)
      expect(hasUnsettledLedger(new MemoryStore())).to.equal(true)
      for (const name of Object.keys(full)) {
        expect(hasUnsettledLedger({ ...full, [name]: undefined }), `without ${name}`).to.equal(false)
        expect(hasUnsettledLedger({ ...full, [name]: true }), `${name} not a function`).to.equal(false)
      }
      for (const value of [null, undefined, 'store', 1]) expect(hasUnsettledLedger(value)).to.equal(false)
    })

    it('the ledger key of an order is its payment\'s settlement key, whatever trade number it carries', () => {
      expect(unsettledKey({ appId: APP_ID, outerTradeNo: 'A:1' })).to.equal(`${APP_ID}:paid:A:1`)
    })
  })

  describe('watchUnsettled', () => {
    it('records the pay', async () => {
      const store = new MemoryStore()
      const r = record()
      await watchUnsettled(store, r, toLogger(recordingLogger()), 1000)
      expect(await store.listUnsettled()).to.deep.equal([r])
    })

    it('never rejects: a store that throws, rejects or hangs is logged with the whole record', async () => {
      const failures: [string, UnsettledLedger['watchUnsettled'], RegExp][] = [
        ['throws', () => { throw new Error('sync boom') }, /sync boom/],
        ['rejects', async () => { throw new Error('ledger down') }, /ledger down/],
        ['hangs', () => new Promise<void>(() => {}), /did not finish within 30 ms/],
      ]
      for (const [what, watch, message] of failures) {
        const store = new MemoryStore()
        store.watchUnsettled = watch
        const logger = recordingLogger()
        const r = record()
        const started = Date.now()
        await watchUnsettled(store, r, toLogger(logger), 30)
        expect(Date.now() - started, what).to.be.below(1000)
        expect(logger.lines, what).to.have.length(1)
        const [line] = logger.lines
        expect(line.level, what).to.equal('error')
        expect(line.message, what).to.match(message)
        expect(line.context, what).to.deep.equal({ reason: 'STORE_FAILED', outerTradeNo: r.outerTradeNo, unsettled: r })
      }
    })
  })

  describe('forgetUnsettled', () => {
    const n = (outerTradeNo: string): Notification => ({
      appId: APP_ID, outerTradeNo, tradeNo: '2018', buyerOpenId: 'b', totalAmount: '1.00', totalFen: 100, attach: '', timestamp: 1, raw: {},
    })

    it('removes the order\'s record, under its paid key also for a failure notice', async () => {
      const store = new MemoryStore()
      const r = record()
      await store.watchUnsettled(r)
      forgetUnsettled(store, { ...n(r.outerTradeNo), tradeNo: '' }, toLogger(recordingLogger()))
      await sleep(0)
      expect(await store.listUnsettled()).to.deep.equal([])
    })

    it('does nothing without a ledger; a removal that throws, even synchronously, is a warning', async () => {
      const lines = recordingLogger()
      const logger = toLogger(lines)
      forgetUnsettled(undefined, n('X1'), logger)
      forgetUnsettled({ leaseMs: 1, retentionMs: 1, claim: async () => ({ status: 'busy' }), complete: async () => true, release: async () => true }, n('X2'), logger)
      const store = new MemoryStore()
      store.resolveUnsettled = () => { throw new Error('sync boom') }
      expect(() => forgetUnsettled(store, n('X3'), logger)).to.not.throw()
      await sleep(0)
      expect(lines.lines.map((l) => [l.level, l.context])).to.deep.equal([['warn', { reason: 'STORE_FAILED', outerTradeNo: 'X3' }]])
    })
  })

  describe('listUnsettled', () => {
    it('asks for at most 1 000 records unless told, and passes a limit on', async () => {
      const { store, lists } = recorded()
      const [a, b] = [record({ deadline: NOW + 2 }), record({ deadline: NOW + 1 })]
      await store.watchUnsettled(a)
      await store.watchUnsettled(b)
      expect(await listUnsettled(store)).to.deep.equal([b, a])
      expect(await listUnsettled(store, { limit: 1 })).to.deep.equal([b])
      expect(lists).to.deep.equal([DEFAULTS.unsettledListLimit, 1])
    })

    it('refuses a store without a ledger: INVALID_OPTION', async () => {
      const err = await rejection(listUnsettled({ transactional: true, retentionMs: 1, settle: async () => ({ status: 'done' }) }))
      expect(err.code).to.equal('INVALID_OPTION')
      expect(err.message, 'names the function called').to.match(/listUnsettled: the store keeps no unsettled ledger/)
      const sweepErr = await rejection(sweepUnsettled({ store: { transactional: true, retentionMs: 1, settle: async () => ({ status: 'done' }) } as never, onUnsettled: () => {} }))
      expect(sweepErr.message, 'names the function called').to.match(/sweepUnsettled: the store keeps no unsettled ledger/)
    })
  })

  describe('sweepUnsettled: options', () => {
    it('takes the records due at the clock (whole ms), 100 at most, leased for the whole sweep: 5 store calls, the hook and the retry delay', async () => {
      const { store, takes } = recorded()
      await sweepUnsettled({ store, onUnsettled: () => {}, now: () => NOW + 0.9 })
      await sweepUnsettled({ store, onUnsettled: () => {}, now: () => NOW, storeTimeoutMs: 1.5, hookTimeoutMs: 20, retryAfterMs: 30, limit: 7 })
      expect(takes).to.deep.equal([
        [NOW, DEFAULTS.sweepLimit, 5 * DEFAULTS.storeTimeoutMs + DEFAULTS.unsettledHookTimeoutMs + DEFAULTS.unsettledRetryMs],
        [NOW, 7, Math.ceil(5 * 1.5 + 20 + 30)],
      ])
    })

    it('uses Date.now without a clock', async () => {
      const { store, takes } = recorded()
      const before = Date.now()
      await sweepUnsettled({ store, onUnsettled: () => {} })
      expect(takes[0][0]).to.be.within(before, Date.now())
    })

    it('refuses an onUnsettled that is not a function, and every number that is not positive (limit: not whole) with INVALID_OPTION', async () => {
      const store = new MemoryStore()
      expect((await rejection(sweepUnsettled({ store, onUnsettled: 'x' as never }))).code).to.equal('INVALID_OPTION')
      for (const name of ['storeTimeoutMs', 'hookTimeoutMs', 'retryAfterMs', 'limit'] as const) {
        for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '5', null]) {
          const err = await rejection(sweepUnsettled({ store, onUnsettled: () => {}, [name]: bad as never }))
          expect(err.code, `${name}: ${String(bad)}`).to.equal('INVALID_OPTION')
        }
      }
      for (const bad of [1.5, 2 ** 53]) {
        expect((await rejection(sweepUnsettled({ store, onUnsettled: () => {}, limit: bad }))).code).to.equal('INVALID_OPTION')
      }
      // Fractions of a millisecond are fine for the times.
      expect(await sweepUnsettled({ store, onUnsettled: () => {}, storeTimeoutMs: 0.5, hookTimeoutMs: 0.5, retryAfterMs: 0.5 })).to.deep.equal([])
    })

    it('a store that cannot take the due records rejects the sweep: STORE_FAILED, 503, with the cause; a hang after storeTimeoutMs', async () => {
      const store = new MemoryStore()
      const cause = new Error('ledger down')
      store.takeDueUnsettled = async () => { throw cause }
      const err = await rejection(sweepUnsettled({ store, onUnsettled: () => {} }))
      expect([err.code, err.status, err.cause]).to.deep.equal(['STORE_FAILED', 503, cause])
      store.takeDueUnsettled = () => new Promise(() => {})
      const started = Date.now()
      expect((await rejection(sweepUnsettled({ store, onUnsettled: () => {}, storeTimeoutMs: 30 }))).code).to.equal('STORE_FAILED')
      expect(Date.now() - started).to.be.below(1000)
    })
  })

  describe('sweepUnsettled: a claim store', () => {
    it('reports an open order with a copy of its record, removes it, and gives both probe claims back', async () => {
      const store = new MemoryStore()
      const r = record()
      await store.watchUnsettled(r)
      const { done, reported, logger } = sweep({ store })
      expect(await done).to.deep.equal([r])
      expect(reported).to.deep.equal([r])
      expect(await store.listUnsettled()).to.deep.equal([])
      // The probes' claims were released: the notification that comes later can claim either key.
      expect((await store.claim(r.key)).status).to.equal('claimed')
      expect((await store.claim(failedKey(r))).status).to.equal('claimed')
      expect(logger.lines).to.deep.equal([])
    })

    it('hands onUnsettled a copy: changing it changes nothing stored', async () => {
      const store = new MemoryStore()
      const r = record()
      await store.watchUnsettled(r)
      await sweepUnsettled({ store, now: () => NOW, onUnsettled: (got) => { got.deadline = 0; throw new Error('retry') }, logger: recordingLogger() })
      expect((await store.listUnsettled())[0].deadline).to.be.greaterThan(NOW)
    })

    it('an order paid or failed meanwhile is dropped unreported; one being settled right now is kept for later', async () => {
      const store = new MemoryStore()
      const [paid, failed, busy, open] = [record(), record(), record(), record()]
      for (const r of [paid, failed, busy, open]) await store.watchUnsettled(r)
      for (const key of [paid.key, failedKey(failed)]) {
        const c = await store.claim(key)
        if (c.status === 'claimed') await store.complete(key, c.owner)
      }
      expect((await store.claim(busy.key)).status).to.equal('claimed')
      const { done, reported } = sweep({ store })
      expect(await done).to.deep.equal([open])
      expect(reported).to.deep.equal([open])
      expect((await store.listUnsettled()).map((r) => r.outerTradeNo)).to.deep.equal([busy.outerTradeNo])
    })

    it('a paid order whose failure key is held is kept; one whose probe fails is logged and kept, and the others are still reported', async () => {
      const store = new MemoryStore()
      const [heldFailure, broken, open] = [record(), record(), record()]
      for (const r of [heldFailure, broken, open]) await store.watchUnsettled(r)
      expect((await store.claim(failedKey(heldFailure))).status).to.equal('claimed')
      const claim = store.claim.bind(store)
      store.claim = (key) => (key === broken.key ? Promise.reject(new Error('claim down')) : claim(key))
      const { done, reported, logger } = sweep({ store })
      expect(await done).to.deep.equal([open])
      expect(reported).to.deep.equal([open])
      expect((await store.listUnsettled()).map((r) => r.outerTradeNo).sort()).to.deep.equal([heldFailure.outerTradeNo, broken.outerTradeNo].sort())
      expect(logger.lines.map((l) => [l.level, l.context])).to.deep.equal([['error', { reason: 'STORE_FAILED', outerTradeNo: broken.outerTradeNo }]])
    })
  })

  describe('sweepUnsettled: a transactional store', () => {
    function transactional(status?: Record<string, 'done' | 'busy' | 'open'>) {
      const ledger = new MemoryStore()
      const settled: string[] = []
      const store: TransactionalStore & UnsettledLedger = {
        transactional: true,
        retentionMs: 1000,
        settle: async (key) => { settled.push(key); return { status: 'done' } },
        ...(status && { status: async (key: string) => { if (key in status) return status[key]; throw new Error(`no status for ${key}`) } }),
        watchUnsettled: (r) => ledger.watchUnsettled(r),
        resolveUnsettled: (k) => ledger.resolveUnsettled(k),
        listUnsettled: (l) => ledger.listUnsettled(l),
        takeDueUnsettled: (now, l, lease) => ledger.takeDueUnsettled(now, l, lease),
      }
      return { store, settled }
    }

    it('reads status() when the store has it (never settles): done dropped, busy kept, open reported', async () => {
      const [done, busy, open, failed] = [record(), record(), record(), record()]
      const { store, settled } = transactional({
        [done.key]: 'done', [busy.key]: 'busy', [open.key]: 'open', [failedKey(open)]: 'open',
        [failed.key]: 'open', [failedKey(failed)]: 'done',
      })
      for (const r of [done, busy, open, failed]) await store.watchUnsettled(r)
      const { done: result, reported, logger } = sweep({ store })
      expect(await result).to.deep.equal([open])
      expect(reported).to.deep.equal([open])
      expect(settled).to.deep.equal([])
      expect((await store.listUnsettled()).map((r) => r.outerTradeNo)).to.deep.equal([busy.outerTradeNo])
      expect(logger.lines.filter((l) => l.level !== 'debug')).to.deep.equal([])
    })

    it('a status() that fails or hangs past storeTimeoutMs is logged, and the record kept', async () => {
      const r = record()
      const { store } = transactional({})
      await store.watchUnsettled(r)
      const { done, logger } = sweep({ store })
      expect(await done).to.deep.equal([])
      expect(logger.reasons()).to.deep.equal(['STORE_FAILED'])
      store.status = () => new Promise(() => {})
      const hung = sweep({ store, now: () => NOW + 10 * DEFAULTS.unsettledRetryMs, storeTimeoutMs: 30 })
      expect(await hung.done).to.deep.equal([])
      expect(hung.logger.reasons()).to.deep.equal(['STORE_FAILED'])
      expect(await store.listUnsettled()).to.have.length(1)
    })

    it('without status(), a settle whose work throws: rolled back (open), done or busy as the store answers, a failure logged', async () => {
      const [open, done, busy, broken] = [record(), record(), record(), record()]
      const { store } = transactional()
      const answers: Record<string, 'open' | 'done' | 'busy' | 'error'> = {
        [open.key]: 'open', [failedKey(open)]: 'open', [done.key]: 'done', [busy.key]: 'busy', [broken.key]: 'error',
      }
      store.settle = async (key, work) => {
        const answer = answers[key]
        if (answer === 'error') throw new Error('db down')
        if (answer !== 'open') return { status: answer }
        await work({}, 1)
        return { status: 'completed' }
      }
      for (const r of [open, done, busy, broken]) await store.watchUnsettled(r)
      const { done: result, logger } = sweep({ store })
      expect(await result).to.deep.equal([open])
      expect((await store.listUnsettled()).map((r) => r.outerTradeNo).sort()).to.deep.equal([busy.outerTradeNo, broken.outerTradeNo].sort())
      expect(logger.lines.filter((l) => l.level === 'error').map((l) => l.context)).to.deep.equal([{ reason: 'STORE_FAILED', outerTradeNo: broken.outerTradeNo }])
    })
  })

  describe('sweepUnsettled: the hook and the removal', () => {
    it('a hook that throws or outlasts hookTimeoutMs: logged, kept, and due again leaseMs after the sweep took it', async () => {
      for (const hook of [() => { throw new Error('pager down') }, () => new Promise(() => {})]) {
        const store = new MemoryStore()
        const r = record()
        await store.watchUnsettled(r)
        const options = { storeTimeoutMs: 10, hookTimeoutMs: 30, retryAfterMs: 1000 }
        const { done, logger } = sweep({ store, onUnsettled: hook, ...options })
        expect(await done).to.deep.equal([])
        expect(logger.lines.map((l) => [l.level, l.context])).to.deep.equal([['error', { hook: 'onUnsettled', outerTradeNo: r.outerTradeNo }]])
        expect(await store.listUnsettled()).to.deep.equal([{ ...r, deadline: NOW + 5 * 10 + 30 + 1000 }])
      }
    })

    it('a removal that fails after the report is a warning: the record counts as reported', async () => {
      const store = new MemoryStore()
      const r = record()
      await store.watchUnsettled(r)
      store.resolveUnsettled = async () => { throw new Error('ledger down') }
      const { done, reported, logger } = sweep({ store })
      expect(await done).to.deep.equal([r])
      expect(reported).to.deep.equal([r])
      expect(logger.lines.map((l) => [l.level, l.context])).to.deep.equal([['warn', { reason: 'STORE_FAILED', outerTradeNo: r.outerTradeNo }]])
    })

    it('an order found settled is removed, with only a debug line', async () => {
      const store = new MemoryStore()
      const r = record()
      await store.watchUnsettled(r)
      const c = await store.claim(r.key)
      if (c.status === 'claimed') await store.complete(r.key, c.owner)
      const { done, reported, logger } = sweep({ store })
      expect(await done).to.deep.equal([])
      expect(reported).to.deep.equal([])
      expect(await store.listUnsettled()).to.deep.equal([])
      expect(logger.lines.map((l) => [l.level, l.context])).to.deep.equal([['debug', { outerTradeNo: r.outerTradeNo }]])
    })
  })

  describe('startSweeping', () => {
    it('sweeps every everyMs, one sweep at a time, logs a failed sweep, and stops when told', async () => {
      const store = new MemoryStore()
      const logger = recordingLogger()
      let running = 0
      let most = 0
      let takes = 0
      store.takeDueUnsettled = async () => {
        takes += 1
        running += 1
        most = Math.max(most, running)
        await sleep(50)
        running -= 1
        throw new Error('ledger down')
      }
      const stop = startSweeping({ store, onUnsettled: () => {}, logger, everyMs: 10 })
      await sleep(300)
      stop()
      const seen = takes
      expect(seen, 'sweeps').to.be.at.least(2)
      expect(most, 'at once').to.equal(1)
      await sleep(100)
      expect(takes, 'after stop').to.equal(seen)
      expect(logger.lines.length).to.be.greaterThan(0)
      for (const line of logger.lines) expect([line.level, line.context]).to.deep.equal(['error', { reason: 'STORE_FAILED' }])
    })

    it('reports a due record on its own', async () => {
      const store = new MemoryStore()
      const r = record({ deadline: Date.now() - 1 })
      await store.watchUnsettled(r)
      const reported: UnsettledRecord[] = []
      const stop = startSweeping({ store, onUnsettled: (got) => { reported.push(got) }, logger: recordingLogger(), everyMs: 10 })
      try {
        for (let i = 0; i < 100 && reported.length === 0; i++) await sleep(10)
      } finally {
        stop()
      }
      expect(reported).to.deep.equal([r])
    })
  })
})
