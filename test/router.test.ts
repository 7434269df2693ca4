import { expect } from 'chai'
import express5 from 'express'
import request from 'supertest'
import { guanaitong } from '../src/adapters/express/router'
import { MemoryStore } from '../src/stores/memory'
import type { Payment } from '../src/kernel/types'
import { signNotification } from '../src/testing/sign-notification'
import { APP_ID, EXPRESS_VERSIONS, SECRET, formBody, paidFields, recordingLogger, sleep, unusedClient, waitFor } from './helpers'

for (const { name, express } of EXPRESS_VERSIONS) {
  describe(`router notify route (${name})`, () => {
    function setup(extra: Record<string, unknown> = {}, before?: (app: ReturnType<typeof express>) => void) {
      const paid: Payment[] = []
      const logger = recordingLogger()
      const app = express()
      before?.(app)
      app.use('/gat', guanaitong({
        appId: APP_ID, appSecret: SECRET, client: unusedClient, logger, payPath: false,
        onPaid: async (p) => { paid.push(p) },
        ...extra,
      }))
      return { app, paid, logger }
    }
    const post = (app: Parameters<typeof request>[0], body: string, type = 'application/x-www-form-urlencoded') =>
      request(app).post('/gat/notify').set('Content-Type', type).send(body)

    it('runs onPaid once with the typed payment and answers exactly "success" as text/plain', async () => {
      const { app, paid } = setup()
      const fields = paidFields()
      const res = await post(app, formBody(fields))
      expect(res.status).to.equal(200)
      expect(res.text).to.equal('success')
      expect(res.headers['content-type']).to.match(/^text\/plain/)
      expect(paid).to.have.length(1)
      expect(paid[0]).to.include({
        appId: APP_ID, outerTradeNo: fields.outer_trade_no, tradeNo: fields.trade_no, totalAmount: '100.00',
        totalFen: 10000, attach: '测试', buyerOpenId: fields.buyer_open_id, timestamp: Number(fields.timestamp),
      })
      expect(paid[0].raw.sign).to.equal(fields.sign)
    })

    it('a POST to the configured path reaches its handler without the Router walking its stack; any other request takes the walk, and matches as before', async () => {
      // The router guanaitong() builds is Express 5's (the package's own express), whichever app mounts it.
      const proto = (express5.Router as unknown as { prototype: { handle: (...args: unknown[]) => unknown } }).prototype
      const original = proto.handle
      const walked: unknown[] = []
      proto.handle = function (this: unknown, ...args: unknown[]) {
        walked.push(this)
        return original.apply(this, args)
      }
      try {
        const paid: Payment[] = []
        const router = guanaitong({ appId: APP_ID, appSecret: SECRET, client: unusedClient, logger: recordingLogger(), payPath: false, onPaid: async (p) => { paid.push(p) } })
        router.get('/health', (_req, res) => { res.send('ok') })
        const app = express().use('/gat', router)
        const walks = async (send: () => request.Test, status: number, text: string) => {
          walked.length = 0
          const res = await send()
          expect(res.status, res.text).to.equal(status)
          expect(res.text).to.equal(text)
          return walked.filter((r) => r === router).length
        }
        const notify = (path: string) => () => request(app).post(`/gat${path}`).type('form').send(formBody(paidFields()))
        expect(await walks(notify('/notify'), 200, 'success')).to.equal(0)
        expect(await walks(notify('/notify?via=query'), 200, 'success')).to.equal(0)
        expect(await walks(notify('/NOTIFY'), 200, 'success')).to.equal(1)
        expect(await walks(notify('/notify/'), 200, 'success')).to.equal(1)
        expect(paid).to.have.length(4)
        expect(await walks(() => request(app).get('/gat/health'), 200, 'ok')).to.equal(1)
        expect(await walks(() => request(app).get('/gat/notify'), 404, (await request(express()).get('/x')).text.replace('/x', '/gat/notify'))).to.equal(1)
        expect(paid).to.have.length(4)
      } finally {
        proto.handle = original
      }
    })

    it('answers a repeat with success without running onPaid again (new timestamp and sign), logged at debug only', async () => {
      const { app, paid, logger } = setup()
      const first = paidFields()
      await post(app, formBody(first))
      const retry = signNotification({ ...first, timestamp: String(Number(first.timestamp) + 60), sign: undefined }, SECRET)
      expect(retry.sign).to.not.equal(first.sign)
      const res = await post(app, formBody(retry))
      expect(res.text).to.equal('success')
      expect(paid).to.have.length(1)
      // bench/README.md: a duplicate is Guanaitong's normal retry, logged at debug, not info.
      expect(logger.lines.filter((l) => /duplicate/.test(l.message)).map((l) => l.level)).to.deep.equal(['debug'])
      expect(logger.lines.filter((l) => l.level === 'info')).to.deep.equal([])
    })

    it('runs onPaid once for concurrent duplicates; the others answer fail while it runs, success after', async () => {
      let release!: () => void
      const gate = new Promise<void>((r) => { release = r })
      let calls = 0
      const { app } = setup({ onPaid: async () => { calls++; await gate } })
      const fields = paidFields()
      const server = app.listen(0)
      try {
        const first = post(server, formBody(fields)).then((r) => r)
        await sleep(50)
        const dupes = await Promise.all([1, 2, 3].map(() => post(server, formBody(fields))))
        expect(dupes.map((r) => r.text)).to.deep.equal(['fail', 'fail', 'fail'])
        expect(dupes[0].status).to.equal(409)
        release()
        expect((await first).text).to.equal('success')
        expect((await post(server, formBody(fields))).text).to.equal('success')
        expect(calls).to.equal(1)
      } finally {
        server.close()
      }
    })

    it('answers fail when onPaid throws, and runs it again on the retry', async () => {
      let calls = 0
      const { app, logger } = setup({ onPaid: async () => { calls++; if (calls === 1) throw new Error('db down') } })
      const fields = paidFields()
      const first = await post(app, formBody(fields))
      expect(first.text).to.equal('fail')
      expect(first.text).to.not.contain('db down')
      expect(logger.reasons()).to.include('HANDLER_FAILED')
      expect((await post(app, formBody(fields))).text).to.equal('success')
      expect(calls).to.equal(2)
    })

    it('answers fail after handlerTimeoutMs and keeps the claim until the slow handler settles', async () => {
      let calls = 0
      let finish!: () => void
      const { app, logger } = setup({
        handlerTimeoutMs: 50,
        onPaid: () => { calls++; return new Promise<void>((r) => { finish = r }) },
      })
      const fields = paidFields()
      expect((await post(app, formBody(fields))).text).to.equal('fail')
      expect(logger.reasons()).to.include('HANDLER_TIMEOUT')
      expect((await post(app, formBody(fields))).text).to.equal('fail')
      finish()
      await sleep(20)
      expect((await post(app, formBody(fields))).text).to.equal('success')
      expect(calls).to.equal(1)
    })

    it('calls onPayFailed for an empty trade_no, keyed apart from the payment', async () => {
      const failed: Payment[] = []
      const { app, paid } = setup({ onPayFailed: async (n: Payment) => { failed.push(n) } })
      const notice = paidFields({ trade_no: '' })
      expect((await post(app, formBody(notice))).text).to.equal('success')
      expect(failed).to.have.length(1)
      expect(failed[0].tradeNo).to.equal('')
      expect(paid).to.have.length(0)
      const payment = signNotification({ ...notice, trade_no: '2018', sign: undefined }, SECRET)
      expect((await post(app, formBody(payment))).text).to.equal('success')
      expect(paid).to.have.length(1)
    })

    it('acknowledges a failure notice with only a warning when onPayFailed is not set', async () => {
      const { app, logger, paid } = setup()
      expect((await post(app, formBody(paidFields({ trade_no: undefined })))).text).to.equal('success')
      expect(paid).to.have.length(0)
      expect(logger.lines.some((l) => l.level === 'warn' && /failed at Guanaitong/.test(l.message))).to.equal(true)
    })

    const rejections: Array<[string, () => string, string, string?]> = [
      ['a bad sign', () => formBody({ ...paidFields(), sign: '0'.repeat(40) }), 'BAD_SIGN'],
      ['another appid', () => formBody(paidFields({ appid: '999' })), 'APPID_MISMATCH'],
      ['a stale timestamp', () => formBody(paidFields({ timestamp: String(Math.floor(Date.now() / 1000) - 301) })), 'STALE_TIMESTAMP'],
      ['a future timestamp', () => formBody(paidFields({ timestamp: String(Math.floor(Date.now() / 1000) + 301) })), 'STALE_TIMESTAMP'],
      ['a millisecond timestamp', () => formBody(paidFields({ timestamp: String(Date.now()) })), 'BAD_TIMESTAMP'],
      ['a missing outer_trade_no', () => formBody(paidFields({ outer_trade_no: undefined })), 'MISSING_FIELD'],
      ['a malformed amount', () => formBody(paidFields({ total_amount: '1e2' })), 'BAD_AMOUNT'],
      ['duplicate keys', () => formBody(paidFields()) + '&appid=1', 'DUPLICATE_KEY'],
      ['a nested key', () => formBody(paidFields()) + '&a%5Bb%5D=1', 'NESTED_KEY'],
      ['an empty body', () => '', 'BAD_BODY'],
      ['a JSON body', () => JSON.stringify(paidFields()), 'UNSUPPORTED_MEDIA_TYPE', 'application/json'],
      ['a body over 64 kB', () => formBody(paidFields({ attach: 'x'.repeat(70_000) })), 'BODY_TOO_LARGE'],
      ['a bad percent-escape', () => formBody(paidFields()) + '&x=%zz', 'BAD_BODY'],
    ]
    for (const [what, body, reason, type] of rejections) {
      it(`answers fail with ${reason} for ${what}, without running onPaid`, async () => {
        const { app, paid, logger } = setup()
        const res = await post(app, body(), type)
        expect(res.text).to.equal('fail')
        expect(res.status).to.be.within(400, 499)
        expect(logger.reasons()).to.include(reason)
        expect(paid).to.have.length(0)
      })
    }

    it('uses an injected clock for the timestamp window, both directions, inclusive at the tolerance', async () => {
      const now = 1_531_120_153_000
      const { app, paid } = setup({ now: () => now, toleranceSec: 300 })
      for (const skew of [-300, 300]) {
        const res = await post(app, formBody(paidFields({ timestamp: String(now / 1000 + skew) })))
        expect(res.text, `skew ${skew}`).to.equal('success')
      }
      for (const skew of [-301, 301]) {
        expect((await post(app, formBody(paidFields({ timestamp: String(now / 1000 + skew) })))).text).to.equal('fail')
      }
      expect(paid).to.have.length(2)
    })

    it('logs the masked canonical string on a bad sign with debug on, and never the secret', async () => {
      const { app, logger } = setup({ debug: true })
      await post(app, formBody({ ...paidFields(), sign: 'a'.repeat(40) }))
      const line = logger.lines.find((l) => l.context?.reason === 'BAD_SIGN')!
      expect(String(line.context?.canonical)).to.match(/^appid=20110698&appsecret=\*\*\*&/)
      expect(JSON.stringify(logger.lines)).to.not.contain(SECRET)
    })

    it('decodes a GBK body whose escapes are GBK bytes', async () => {
      const { app, paid } = setup()
      const fields = paidFields({ attach: '午餐支付' })
      const body = Object.entries(fields).map(([k, v]) => `${k}=${k === 'attach' ? '%CE%E7%B2%CD%D6%A7%B8%B6' : encodeURIComponent(v)}`).join('&')
      const res = await post(app, body, 'application/x-www-form-urlencoded; charset=GBK')
      expect(res.text).to.equal('success')
      expect(paid[0].attach).to.equal('午餐支付')
    })

    it('treats __proto__ and constructor as plain keys', async () => {
      const { app, paid } = setup()
      const res = await post(app, formBody(paidFields({ __proto__x: undefined, constructor: 'c' })) + '&__proto__=1')
      expect(res.text).to.equal('fail') // __proto__ was not signed, so the sign no longer matches
      const signed = paidFields({ constructor: 'c', ['__proto__' as string]: 'p' })
      const res2 = await post(app, Object.entries(signed).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&'))
      expect(res2.text).to.equal('success')
      expect(paid[0].raw.constructor).to.equal('c')
      expect(Object.getPrototypeOf(paid[0].raw)).to.equal(null)
      expect(({} as Record<string, unknown>).p).to.equal(undefined)
    })

    it('works when the host app mounted express.urlencoded() and express.json() first', async () => {
      const { app, paid } = setup({}, (a) => { a.use(express.json()); a.use(express.urlencoded({ extended: true })) })
      const fields = paidFields()
      expect((await post(app, formBody(fields))).text).to.equal('success')
      expect(paid).to.have.length(1)
      expect((await post(app, formBody(paidFields()) + '&a%5Bb%5D=1')).text).to.equal('fail')
    })

    it('rejects duplicate keys even when express.urlencoded() parsed them first', async () => {
      const { app, logger } = setup({}, (a) => { a.use(express.urlencoded({ extended: false })) })
      expect((await post(app, formBody(paidFields()) + '&appid=1')).text).to.equal('fail')
      expect(logger.reasons()).to.include('DUPLICATE_KEY')
    })

    it('answers fail (STORE_FAILED) when the store throws, and never runs onPaid', async () => {
      const store = new MemoryStore()
      store.claim = () => Promise.reject(new Error('redis down'))
      const { app, paid, logger } = setup({ store })
      const res = await post(app, formBody(paidFields()))
      expect(res.text).to.equal('fail')
      expect(res.status).to.equal(503)
      expect(logger.reasons()).to.include('STORE_FAILED')
      expect(paid).to.have.length(0)
    })

    it('gives back a claim that arrives after storeTimeoutMs, so the next retry is not blocked for a lease', async () => {
      const store = new MemoryStore()
      const claim = store.claim.bind(store)
      let slow = true
      store.claim = async (key) => {
        if (slow) { slow = false; await sleep(100) }
        return claim(key)
      }
      const { app, paid } = setup({ store, storeTimeoutMs: 30 })
      const fields = paidFields()
      expect((await post(app, formBody(fields))).text).to.equal('fail')
      await sleep(120)
      expect((await post(app, formBody(fields))).text).to.equal('success')
      expect(paid).to.have.length(1)
    })

    it('keeps renewing the lease of a long handler after one renewal failed', async () => {
      const store = new MemoryStore({ leaseMs: 90 })
      const extend = store.extend.bind(store)
      let failedOnce = false
      store.extend = async (key, owner) => {
        if (!failedOnce) { failedOnce = true; throw new Error('redis stalled') }
        return extend(key, owner)
      }
      let calls = 0
      const { app } = setup({ store, onPaid: async () => { calls++; await sleep(300) } })
      const fields = paidFields()
      const server = app.listen(0)
      try {
        const first = post(server, formBody(fields)).then((r) => r)
        await sleep(250)
        const duplicate = await post(server, formBody(fields))
        expect(duplicate.text).to.equal('fail')
        expect((await first).text).to.equal('success')
        expect(failedOnce).to.equal(true)
        expect(calls).to.equal(1)
      } finally {
        server.close()
      }
    })

    it('answers fail when the store hangs past storeTimeoutMs', async () => {
      const store = new MemoryStore()
      store.claim = () => new Promise(() => {})
      const { app, logger } = setup({ store, storeTimeoutMs: 50 })
      expect((await post(app, formBody(paidFields()))).text).to.equal('fail')
      expect(logger.reasons()).to.include('STORE_FAILED')
    })
  })
}

describe('router close()', () => {
  const QUIET = { appId: APP_ID, appSecret: SECRET, client: unusedClient, onPaid: () => undefined, payPath: false as const, logger: recordingLogger() }

  /** A router sweeping a MemoryStore every 10 ms, and how many sweeps have read the ledger so far. */
  function sweeping(onUnsettled: () => unknown = () => undefined) {
    const store = new MemoryStore()
    let sweeps = 0
    const take = store.takeDueUnsettled.bind(store)
    store.takeDueUnsettled = (...args) => { sweeps++; return take(...args) }
    const router = guanaitong({ ...QUIET, store, onUnsettled, sweepEveryMs: 10 })
    return { router, store, sweeps: () => sweeps }
  }

  it('stops the unsettled sweep: no sweep reads the store after it resolves', async () => {
    const { router, sweeps } = sweeping()
    await waitFor('a first sweep', () => sweeps() > 0)
    await router.close()
    const after = sweeps()
    await sleep(100) // ten sweep periods
    expect(sweeps()).to.equal(after)
  })

  it('waits for a sweep in progress to finish, and may be called again', async () => {
    let hookRan = false
    let finish!: () => void
    const hook = new Promise<void>((resolve) => { finish = resolve })
    const { router, store } = sweeping(() => { hookRan = true; return hook })
    await store.watchUnsettled({
      key: `${APP_ID}:paid:T1`, appId: APP_ID, outerTradeNo: 'T1', totalAmount: '1.00', totalFen: 100, buyerOpenId: 'b',
      tradeNo: null, reason: 'AMBIGUOUS', since: 0, deadline: 0,
    })
    await waitFor('the sweep to report the due record', () => hookRan)
    let closed = false
    const closing = router.close().then(() => { closed = true })
    await sleep(50)
    expect(closed, 'close() resolved while onUnsettled was still running').to.equal(false)
    finish()
    await closing
    await router.close()
    expect(await store.listUnsettled(10), 'the sweep finished with the record').to.deep.equal([])
  })

  it('resolves at once for a router that does not sweep', async () => {
    expect(await guanaitong(QUIET).close()).to.equal(undefined)
  })
})
