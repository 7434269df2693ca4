/**
 * Faults on the shop's side: handlers that throw or hang, stores that throw or hang, an order
 * lookup that disagrees, secrets being rotated, and the retry-budget alarm.
 */
import { expect } from 'chai'
import http from 'node:http'
import { MemoryStore } from '../../src/stores/memory'
import { signNotification } from '../../src/testing/sign-notification'
import type { Fields, GuanaitongOptions, NotifyStore, Mismatch, OrderMismatch, Payment, RetryBudgetInfo } from '../../src/kernel/types'
import { EXPRESS_VERSIONS, formBody, paidFields, sleep } from '../helpers'
import { FORM, SECRET, listen, notifyApp, pairsBody, rawPost, signKeepingEmpty } from './support'

/** The same notification as Guanaitong's next attempt sends it: a later timestamp and a fresh sign. */
function retryOf(fields: Fields, n = 1, secret: string = SECRET): Fields {
  return signNotification({ ...fields, timestamp: String(Number(fields.timestamp) + n), sign: undefined }, secret)
}

/** A MemoryStore with some of its methods replaced. */
function storeWith(overrides: Partial<Pick<NotifyStore, 'claim' | 'complete' | 'release'>>, leaseMs = 60_000): MemoryStore {
  const store = new MemoryStore({ leaseMs })
  Object.assign(store, overrides)
  return store
}

const never = () => new Promise<never>(() => {})

for (const { name, express } of EXPRESS_VERSIONS) {
  describe(`faults (${name})`, () => {
    const servers: Array<() => Promise<void>> = []
    afterEach(async () => {
      await Promise.all(servers.splice(0).map((close) => close()))
    })

    /** A router on a live server; `post` sends one notification and waits for its answer. */
    async function start(options: Partial<GuanaitongOptions> = {}) {
      const ctx = notifyApp(express, options)
      const server = await listen(ctx.app)
      servers.push(server.close)
      const post = (fields: Fields | string) =>
        rawPost(server.port, '/gat/notify', { 'content-type': FORM }, typeof fields === 'string' ? fields : formBody(fields))
      return { ...ctx, port: server.port, post }
    }

    /** Sends a notification and drops the connection as soon as `until` settles, without reading an answer. */
    function postAndHangUp(port: number, fields: Fields, until: Promise<unknown>): Promise<void> {
      return new Promise((resolve) => {
        const body = formBody(fields)
        const req = http.request({
          host: '127.0.0.1', port, path: '/gat/notify', method: 'POST', agent: false,
          headers: { 'content-type': FORM, 'content-length': String(Buffer.byteLength(body)) },
        })
        req.on('error', () => resolve())
        req.on('close', () => resolve())
        req.end(body)
        void until.then(() => req.destroy())
      })
    }

    function deferred() {
      let resolve!: () => void
      let reject!: (err: unknown) => void
      const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej })
      return { promise, resolve, reject }
    }

    describe('onPaid', () => {
      it('throws synchronously → fail (HANDLER_FAILED, 500, logged as error); the retry runs it again → success', async () => {
        let calls = 0
        const { post, logger } = await start({
          onPaid: () => {
            calls++
            if (calls === 1) throw new Error('db down: password=hunter2')
          },
        })
        const fields = paidFields()
        const first = await post(fields)
        expect(first.text).to.equal('fail')
        expect(first.status).to.equal(500)
        expect(logger.reasons()).to.deep.equal(['HANDLER_FAILED'])
        expect(logger.lines.find((l) => l.context?.reason === 'HANDLER_FAILED')?.level).to.equal('error')
        const retry = await post(retryOf(fields))
        expect(retry.text).to.equal('success')
        expect(calls).to.equal(2)
      })

      it('rejects with undefined (not an Error) → fail (HANDLER_FAILED); the retry → success', async () => {
        let calls = 0
        const { post, logger } = await start({
          onPaid: () => {
            calls++
            return calls === 1 ? Promise.reject(undefined) : Promise.resolve()
          },
        })
        const fields = paidFields()
        expect((await post(fields)).text).to.equal('fail')
        expect(logger.reasons()).to.deep.equal(['HANDLER_FAILED'])
        expect((await post(retryOf(fields))).text).to.equal('success')
        expect(calls).to.equal(2)
      })

      it('hangs past handlerTimeoutMs → fail (HANDLER_TIMEOUT, 503); the claim is held while it runs, freed when it finally throws', async () => {
        let calls = 0
        const first = deferred()
        const { post, logger } = await start({
          handlerTimeoutMs: 50,
          onPaid: () => (++calls === 1 ? first.promise : Promise.resolve()),
        })
        const fields = paidFields()
        const answer = await post(fields)
        expect(answer.text).to.equal('fail')
        expect(answer.status).to.equal(503)
        expect(logger.reasons()).to.deep.equal(['HANDLER_TIMEOUT'])

        const whileRunning = await post(retryOf(fields, 1))
        expect(whileRunning.text).to.equal('fail')
        expect(logger.reasons()).to.deep.equal(['HANDLER_TIMEOUT', 'IN_PROGRESS'])
        expect(calls).to.equal(1)

        first.reject(new Error('gave up'))
        await sleep(20)
        expect((await post(retryOf(fields, 2))).text).to.equal('success')
        expect(calls).to.equal(2)
      })

      it('resolves after the client went away → done: the retry reads success, onPaid not run again', async () => {
        let calls = 0
        const started = deferred()
        const gate = deferred()
        let finished = false
        const { port, post, logger } = await start({
          onPaid: async () => {
            calls++
            started.resolve()
            await gate.promise
            finished = true
          },
        })
        const fields = paidFields()
        await postAndHangUp(port, fields, started.promise)
        gate.resolve()
        while (!finished) await sleep(5)
        await sleep(20)
        expect((await post(retryOf(fields))).text).to.equal('success')
        expect(calls).to.equal(1)
        expect(logger.reasons()).to.deep.equal([])
      })

      it('throws after the client went away → claim freed: the retry runs it again → success', async () => {
        let calls = 0
        const started = deferred()
        const gate = deferred()
        const { port, post, logger } = await start({
          onPaid: async () => {
            calls++
            if (calls > 1) return
            started.resolve()
            await gate.promise
            throw new Error('db down')
          },
        })
        const fields = paidFields()
        await postAndHangUp(port, fields, started.promise)
        gate.resolve()
        for (let i = 0; i < 100 && logger.reasons().length === 0; i++) await sleep(5)
        expect(logger.reasons()).to.deep.equal(['HANDLER_FAILED'])
        expect((await post(retryOf(fields))).text).to.equal('success')
        expect(calls).to.equal(2)
      })
    })

    describe('store', () => {
      it('claim throws synchronously → fail (STORE_FAILED, 503), onPaid not called', async () => {
        const store = storeWith({ claim: () => { throw new Error('redis gone') } })
        const { post, paid, logger } = await start({ store })
        const res = await post(paidFields())
        expect(res.text).to.equal('fail')
        expect(res.status).to.equal(503)
        expect(logger.reasons()).to.deep.equal(['STORE_FAILED'])
        expect(paid).to.have.length(0)
      })

      it('claim answers something that is not a claim result → fail (STORE_FAILED), onPaid not called', async () => {
        const store = storeWith({ claim: async () => undefined as never })
        const { post, paid, logger } = await start({ store })
        const res = await post(paidFields())
        expect(res.text).to.equal('fail')
        expect(logger.reasons()).to.deep.equal(['STORE_FAILED'])
        expect(paid).to.have.length(0)
      })

      it('claim answers after storeTimeoutMs → fail (STORE_FAILED); once the lease runs out a retry runs onPaid → success', async () => {
        const inner = new MemoryStore({ leaseMs: 100 })
        let claims = 0
        const store = storeWith({
          claim: async (key) => {
            const result = await inner.claim(key)
            if (++claims === 1) await sleep(80) // only the first answer is late
            return result
          },
        }, 100)
        Object.assign(store, { complete: inner.complete.bind(inner), release: inner.release.bind(inner) })
        const { post, paid, logger } = await start({ store, storeTimeoutMs: 30 })
        const fields = paidFields()
        expect((await post(fields)).text).to.equal('fail')
        expect(logger.reasons()).to.deep.equal(['STORE_FAILED'])
        expect(paid).to.have.length(0)
        await sleep(200)
        expect((await post(retryOf(fields))).text).to.equal('success')
        expect(paid).to.have.length(1)
      })

      it('complete throws after onPaid resolved → success all the same, the error logged (STORE_FAILED)', async () => {
        const store = storeWith({ complete: () => Promise.reject(new Error('redis gone')) })
        const { post, paid, logger } = await start({ store })
        const res = await post(paidFields())
        expect(res.text).to.equal('success')
        expect(res.status).to.equal(200)
        expect(paid).to.have.length(1)
        const line = logger.lines.find((l) => l.context?.reason === 'STORE_FAILED')
        expect(line?.level).to.equal('error')
        expect(line?.message).to.match(/done-marker was not stored/)
      })

      it('complete hangs after onPaid resolved → success after storeTimeoutMs, the error logged (STORE_FAILED)', async () => {
        const store = storeWith({ complete: never })
        const { post, paid, logger } = await start({ store, storeTimeoutMs: 50 })
        const res = await post(paidFields())
        expect(res.text).to.equal('success')
        expect(paid).to.have.length(1)
        expect(logger.reasons()).to.deep.equal(['STORE_FAILED'])
      })

      it('release throws after onPaid threw → fail (HANDLER_FAILED) and STORE_FAILED logged; once the lease runs out the retry → success', async () => {
        let calls = 0
        const store = storeWith({ release: () => Promise.reject(new Error('redis gone')) }, 100)
        const { post, logger } = await start({
          store,
          onPaid: () => { if (++calls === 1) throw new Error('db down') },
        })
        const fields = paidFields()
        const res = await post(fields)
        expect(res.text).to.equal('fail')
        expect(res.status).to.equal(500)
        expect(logger.reasons()).to.have.members(['STORE_FAILED', 'HANDLER_FAILED'])
        await sleep(150)
        expect((await post(retryOf(fields))).text).to.equal('success')
        expect(calls).to.equal(2)
      })

      it('release hangs after onPaid threw → fail (HANDLER_FAILED) after storeTimeoutMs, STORE_FAILED logged', async () => {
        const store = storeWith({ release: never })
        const { post, logger } = await start({
          store, storeTimeoutMs: 50,
          onPaid: () => { throw new Error('db down') },
        })
        const res = await post(paidFields())
        expect(res.text).to.equal('fail')
        expect(logger.reasons()).to.have.members(['STORE_FAILED', 'HANDLER_FAILED'])
      })
    })

    describe('findOrder', () => {
      const order = { totalAmount: '100.00', buyerOpenId: 'd87797eea12a2f80ad72ed93214a0908' }

      async function mismatch(found: unknown) {
        const mismatches: Mismatch[] = []
        const looked: string[] = []
        const ctx = await start({
          findOrder: (outerTradeNo) => { looked.push(outerTradeNo); return found as never },
          onMismatch: (m) => { mismatches.push(m) },
        })
        const fields = paidFields()
        const res = await ctx.post(fields)
        return { res, mismatches, looked, fields, ...ctx }
      }

      function expectMismatch(out: Awaited<ReturnType<typeof mismatch>>, problem: OrderMismatch['problem']) {
        expect(out.res.text).to.equal('fail')
        expect(out.res.status).to.equal(409)
        expect(out.paid).to.have.length(0)
        expect(out.looked).to.deep.equal([out.fields.outer_trade_no])
        expect(out.mismatches).to.have.length(1)
        expect(out.mismatches[0].problem).to.equal(problem)
        expect(out.mismatches[0].notification.outerTradeNo).to.equal(out.fields.outer_trade_no)
        const errors = out.logger.lines.filter((l) => l.level === 'error' && l.context?.reason === 'ORDER_MISMATCH')
        expect(errors.length).to.be.at.least(1)
        expect(out.logger.reasons().every((r) => r === 'ORDER_MISMATCH')).to.equal(true)
      }

      it('a mismatch is logged once: one error line with the problem, amount, buyer and trade number', async () => {
        const out = await mismatch({ ...order, totalAmount: '99.99' })
        const lines = out.logger.lines.filter((l) => l.context?.reason === 'ORDER_MISMATCH')
        expect(lines.map((l) => l.level)).to.deep.equal(['error'])
        expect(lines[0].context).to.include({
          problem: 'amount', outerTradeNo: out.fields.outer_trade_no, totalAmount: out.fields.total_amount,
          buyerOpenId: out.fields.buyer_open_id, tradeNo: out.fields.trade_no,
        })
        expect(lines[0].message).to.contain(`${out.fields.outer_trade_no} does not match the order (amount)`)
      })

      it('unknown order → onMismatch (unknown-order), ORDER_MISMATCH logged, onPaid not called, fail', async () => {
        const out = await mismatch(null)
        expectMismatch(out, 'unknown-order')
        expect((out.mismatches[0] as OrderMismatch).order).to.equal(null)
      })

      it('order of another amount → onMismatch (amount), fail', async () => {
        expectMismatch(await mismatch({ ...order, totalAmount: '99.99' }), 'amount')
      })

      it('order of another amount in fen → onMismatch (amount), fail', async () => {
        expectMismatch(await mismatch({ totalFen: 1000, buyerOpenId: order.buyerOpenId }), 'amount')
      })

      it('order whose amount cannot be read ("1.00 ", "1,000.00") → onMismatch (amount), fail: never waved through', async () => {
        expectMismatch(await mismatch({ ...order, totalAmount: '1.00 ' }), 'amount')
        expectMismatch(await mismatch({ ...order, totalAmount: '1,000.00' }), 'amount')
      })

      for (const [what, found] of [
        ['fen as a string of another value "1000"', { totalFen: '1000' }],
        ['fen as a bigint of another value 10001n', { totalFen: 10001n }],
        ['fen as a string with a fraction "10000.5"', { totalFen: '10000.5' }],
        ['fen as a number with a fraction 10000.5', { totalFen: 10000.5 }],
        ['amount "100.0050" (a fraction of a fen)', { totalAmount: '100.0050' }],
        ['amount "100.0100"', { totalAmount: '100.0100' }],
        ['amount with a sign "+100.00"', { totalAmount: '+100.00' }],
      ] as const) {
        it(`order with ${what} → onMismatch (amount), fail`, async () => {
          expectMismatch(await mismatch(found), 'amount')
        })
      }

      it('order without an amount → onMismatch (amount), fail', async () => {
        expectMismatch(await mismatch({ buyerOpenId: order.buyerOpenId }), 'amount')
      })

      it('order of another buyer → onMismatch (buyer), fail', async () => {
        expectMismatch(await mismatch({ ...order, buyerOpenId: 'someone-else' }), 'buyer')
      })

      // How databases hand amounts back (issue 9): node-postgres returns BIGINT as a string,
      // NUMERIC(12,4) keeps four decimals, a driver may give a bigint. Compared by value, never as floats.
      for (const [what, found] of [
        ['amount and buyer', order],
        ['amount in fen', { totalFen: 10000 }],
        ['amount written "100"', { totalAmount: '100' }],
        ['a promise of the order', Promise.resolve(order)],
        ['fen as a string "10000" (node-postgres BIGINT)', { totalFen: '10000' }],
        ['fen as a bigint 10000n', { totalFen: 10000n }],
        ['amount "100.0000" (NUMERIC(12,4))', { totalAmount: '100.0000' }],
        ['amount as the number 100', { totalAmount: 100 }],
      ] as const) {
        it(`matching order (${what}) → onPaid, success`, async () => {
          const out = await mismatch(found)
          expect(out.res.text).to.equal('success')
          expect(out.paid).to.have.length(1)
          expect(out.mismatches).to.have.length(0)
          expect(out.looked).to.deep.equal([out.fields.outer_trade_no])
        })
      }

      it('findOrder throws → fail (HANDLER_FAILED), onPaid not called; the retry asks again', async () => {
        let lookups = 0
        const { post, paid, logger } = await start({
          findOrder: () => { if (++lookups === 1) throw new Error('db down'); return order },
        })
        const fields = paidFields()
        expect((await post(fields)).text).to.equal('fail')
        expect(logger.reasons()).to.deep.equal(['HANDLER_FAILED'])
        expect(paid).to.have.length(0)
        expect((await post(retryOf(fields))).text).to.equal('success')
        expect(lookups).to.equal(2)
        expect(paid).to.have.length(1)
      })

      it('onMismatch throws → still fail (ORDER_MISMATCH), its error logged', async () => {
        const { post, paid, logger } = await start({
          findOrder: () => null,
          onMismatch: () => { throw new Error('pager down') },
        })
        const res = await post(paidFields())
        expect(res.text).to.equal('fail')
        expect(res.status).to.equal(409)
        expect(paid).to.have.length(0)
        expect(logger.lines.some((l) => l.level === 'error' && /onMismatch threw: pager down/.test(l.message))).to.equal(true)
      })
    })

    describe('signing variants', () => {
      it('secret rotation: appSecret [new, old] verifies notifications signed with either, not with a third', async () => {
        const { post, paid, logger } = await start({ appSecret: ['new-secret', 'old-secret'] })
        expect((await post(paidFields({}, 'new-secret'))).text).to.equal('success')
        expect((await post(paidFields({}, 'old-secret'))).text).to.equal('success')
        expect((await post(paidFields({}, 'other-secret'))).text).to.equal('fail')
        expect((await post(paidFields({}, SECRET))).text).to.equal('fail')
        expect(paid).to.have.length(2)
        expect(logger.reasons()).to.deep.equal(['BAD_SIGN', 'BAD_SIGN'])
      })

      it('empty attach left out of the signed string → success', async () => {
        const { post, paid } = await start()
        const fields = paidFields({ attach: '' })
        expect((await post(fields)).text).to.equal('success')
        expect(paid[0].attach).to.equal('')
      })

      it('empty attach signed as `attach=` → success', async () => {
        const { post, paid } = await start()
        const { sign: _sign, ...rest } = paidFields({ attach: '' })
        const fields = { ...rest, sign: signKeepingEmpty(rest) }
        expect(fields.sign).to.not.equal(_sign)
        expect((await post(pairsBody(Object.entries(fields)))).text).to.equal('success')
        expect(paid).to.have.length(1)
      })

      it('a notification without attach at all → success, attach reads ""', async () => {
        const { post, paid } = await start()
        expect((await post(paidFields({ attach: undefined }))).text).to.equal('success')
        expect(paid[0].attach).to.equal('')
      })

      it('an empty value signed as `k=` but sent without it → fail (BAD_SIGN)', async () => {
        const { post, paid, logger } = await start()
        const { sign: _sign, ...rest } = paidFields({ attach: '' })
        const kept = signKeepingEmpty(rest)
        const { attach: _attach, ...withoutAttach } = rest
        expect((await post({ ...withoutAttach, sign: kept })).text).to.equal('fail')
        expect(logger.reasons()).to.deep.equal(['BAD_SIGN'])
        expect(paid).to.have.length(0)
      })
    })

    describe('onRetryBudgetLow', () => {
      it('fires when a failing payment reaches attempt 7 (the default), not before', async () => {
        const alarms: RetryBudgetInfo[] = []
        const { post } = await start({
          onPaid: () => { throw new Error('db down') },
          onRetryBudgetLow: (info) => { alarms.push(info) },
        })
        const fields = paidFields()
        for (let attempt = 1; attempt <= 6; attempt++) {
          expect((await post(retryOf(fields, attempt))).text).to.equal('fail')
        }
        expect(alarms).to.have.length(0)
        expect((await post(retryOf(fields, 7))).text).to.equal('fail')
        expect(alarms).to.have.length(1)
        expect(alarms[0]).to.include({ attempt: 7, budget: 10, reason: 'HANDLER_FAILED' })
        expect(alarms[0].notification.outerTradeNo).to.equal(fields.outer_trade_no)
      })

      it('counts attempts per payment: two payments failing 4 times each never fire it', async () => {
        const alarms: RetryBudgetInfo[] = []
        const { post } = await start({
          onPaid: () => { throw new Error('db down') },
          onRetryBudgetLow: (info) => { alarms.push(info) },
        })
        const a = paidFields()
        const b = paidFields()
        for (let attempt = 1; attempt <= 4; attempt++) {
          await post(retryOf(a, attempt))
          await post(retryOf(b, attempt))
        }
        expect(alarms).to.have.length(0)
      })

      it('does not fire for a payment that succeeds at its last attempt below the threshold', async () => {
        const alarms: RetryBudgetInfo[] = []
        let calls = 0
        const { post } = await start({
          retryBudgetThreshold: 3,
          onPaid: () => { if (++calls < 3) throw new Error('db down') },
          onRetryBudgetLow: (info) => { alarms.push(info) },
        })
        const fields = paidFields()
        expect((await post(retryOf(fields, 1))).text).to.equal('fail')
        expect((await post(retryOf(fields, 2))).text).to.equal('fail')
        expect((await post(retryOf(fields, 3))).text).to.equal('success')
        expect(alarms).to.have.length(0)
      })

      it('with retryBudgetThreshold 2, a hook that throws does not change the answer (fail) and is logged', async () => {
        const alarms: RetryBudgetInfo[] = []
        const { post, logger } = await start({
          retryBudgetThreshold: 2,
          onPaid: () => { throw new Error('db down') },
          onRetryBudgetLow: (info) => { alarms.push(info); throw new Error('pager down') },
        })
        const fields = paidFields()
        expect((await post(retryOf(fields, 1))).text).to.equal('fail')
        expect(alarms).to.have.length(0)
        const second = await post(retryOf(fields, 2))
        expect(second.text).to.equal('fail')
        expect(second.status).to.equal(500)
        expect(alarms.map((a) => a.attempt)).to.deep.equal([2])
        expect(logger.lines.some((l) => l.level === 'error' && /onRetryBudgetLow threw: pager down/.test(l.message))).to.equal(true)
      })

      it('fires for a handler that timed out too (reason HANDLER_TIMEOUT)', async () => {
        const alarms: RetryBudgetInfo[] = []
        const { post } = await start({
          retryBudgetThreshold: 1,
          handlerTimeoutMs: 30,
          onPaid: never,
          onRetryBudgetLow: (info) => { alarms.push(info) },
        })
        expect((await post(paidFields())).text).to.equal('fail')
        expect(alarms.map((a) => [a.attempt, a.reason])).to.deep.equal([[1, 'HANDLER_TIMEOUT']])
      })

      it('fires once per payment: ten failing attempts → one alarm, at attempt 7', async () => {
        const alarms: RetryBudgetInfo[] = []
        const { post } = await start({
          onPaid: () => { throw new Error('db down') },
          onRetryBudgetLow: (info) => { alarms.push(info) },
        })
        const fields = paidFields()
        for (let attempt = 1; attempt <= 10; attempt++) expect((await post(retryOf(fields, attempt))).text).to.equal('fail')
        expect(alarms.map((a) => [a.attempt, a.reason])).to.deep.equal([[7, 'HANDLER_FAILED']])
      })

      it('store unreachable: ten STORE_FAILED answers → one alarm at the 7th, counted in memory', async () => {
        const alarms: RetryBudgetInfo[] = []
        const { post } = await start({
          store: storeWith({ claim: () => Promise.reject(new Error('redis gone')) }),
          onRetryBudgetLow: (info) => { alarms.push(info) },
        })
        const fields = paidFields()
        for (let attempt = 1; attempt <= 6; attempt++) expect((await post(retryOf(fields, attempt))).text).to.equal('fail')
        expect(alarms).to.have.length(0)
        for (let attempt = 7; attempt <= 10; attempt++) expect((await post(retryOf(fields, attempt))).text).to.equal('fail')
        expect(alarms.map((a) => [a.attempt, a.reason])).to.deep.equal([[7, 'STORE_FAILED']])
        expect(alarms[0].notification.outerTradeNo).to.equal(fields.outer_trade_no)
      })

      it('IN_PROGRESS answers count: a payment held by a handler that never finishes → one alarm at the 7th failed answer', async () => {
        const alarms: RetryBudgetInfo[] = []
        const { post } = await start({
          handlerTimeoutMs: 20,
          onPaid: never,
          onRetryBudgetLow: (info) => { alarms.push(info) },
        })
        const fields = paidFields()
        const reasons: unknown[] = []
        for (let attempt = 1; attempt <= 8; attempt++) {
          expect((await post(retryOf(fields, attempt))).text).to.equal('fail')
          reasons.push(alarms.length)
        }
        // The first attempt timed out (attempt 1 in the store); the claim it keeps makes every later one IN_PROGRESS.
        expect(alarms.map((a) => [a.attempt, a.reason])).to.deep.equal([[7, 'IN_PROGRESS']])
        expect(reasons).to.deep.equal([0, 0, 0, 0, 0, 0, 1, 1])
      })

      it('two instances on one store: the store counts their attempts together → one alarm, at store attempt 7', async () => {
        const alarms: Array<[string, RetryBudgetInfo]> = []
        const store = new MemoryStore()
        const instances = await Promise.all(['a', 'b'].map((name) => start({
          store,
          onPaid: () => { throw new Error('db down') },
          onRetryBudgetLow: (info) => { alarms.push([name, info]) },
        })))
        const fields = paidFields()
        for (let attempt = 1; attempt <= 10; attempt++) {
          expect((await instances[attempt % 2].post(retryOf(fields, attempt))).text).to.equal('fail')
        }
        expect(alarms.map(([name, a]) => [name, a.attempt])).to.deep.equal([['b', 7]])
      })

      it('a store that comes back mid-outage: failures before and after add up (3 STORE_FAILED + 4 HANDLER_FAILED → alarm at 7)', async () => {
        const alarms: RetryBudgetInfo[] = []
        let storeUp = false
        const store = new MemoryStore()
        const claim = store.claim.bind(store)
        const { post } = await start({
          store: Object.assign(store, { claim: (key: string) => (storeUp ? claim(key) : Promise.reject(new Error('redis gone'))) }),
          onPaid: () => { throw new Error('db down') },
          onRetryBudgetLow: (info) => { alarms.push(info) },
        })
        const fields = paidFields()
        for (let attempt = 1; attempt <= 7; attempt++) {
          storeUp = attempt > 3
          expect((await post(retryOf(fields, attempt))).text).to.equal('fail')
        }
        expect(alarms.map((a) => [a.attempt, a.reason])).to.deep.equal([[7, 'HANDLER_FAILED']])
      })
    })
  })
}
