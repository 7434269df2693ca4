/**
 * One behaviour, every framework: the same table of notifications and pays, sent over real HTTP
 * to each adapter (servers.ts) with the sandbox playing Guanaitong. A row that passes on Express
 * and fails on another adapter is that adapter's bug.
 */
import { expect } from 'chai'
import net from 'node:net'
import { gzipSync } from 'node:zlib'
import { createSandbox, type Sandbox } from '../../src/testing/sandbox'
import type { Fields, Payment, PayFailedNotice } from '../../src/kernel/types'
import { flipHexDigit, formBody, paidFields, recordingLogger, SECRET, APP_ID, unusedClient } from '../helpers'
import { ADAPTER_SERVERS, type Running } from './servers'

const FORM = 'application/x-www-form-urlencoded'

interface Sent {
  /** Sent over the form type; a header given as undefined is not sent at all. */
  headers?: Record<string, string | undefined>
  body: string | Buffer
}

interface NotifyCase {
  what: string
  send: () => Sent
  status: number
  text: 'success' | 'fail'
  /** The reason logged for a `fail`. */
  reason?: string
}

const form = (fields: Fields): Sent => ({ body: formBody(fields) })

const NOTIFY_CASES: NotifyCase[] = [
  { what: 'a signed payment', send: () => form(paidFields()), status: 200, text: 'success' },
  { what: 'a gzip-compressed signed payment', send: () => ({ headers: { 'content-encoding': 'gzip' }, body: gzipSync(formBody(paidFields())) }), status: 200, text: 'success' },
  { what: 'a signature wrong in one digit', send: () => { const f = paidFields(); return form({ ...f, sign: flipHexDigit(f.sign, 3) }) }, status: 401, text: 'fail', reason: 'BAD_SIGN' },
  { what: 'another appid, signed', send: () => form(paidFields({ appid: '99999999' })), status: 403, text: 'fail', reason: 'APPID_MISMATCH' },
  { what: 'a timestamp an hour old', send: () => form(paidFields({ timestamp: String(Math.floor(Date.now() / 1000) - 3600) })), status: 401, text: 'fail', reason: 'STALE_TIMESTAMP' },
  { what: 'a JSON body', send: () => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(paidFields()) }), status: 415, text: 'fail', reason: 'UNSUPPORTED_MEDIA_TYPE' },
  // Fastify 5 answers a Content-Type it cannot parse with its own 415 before any parser: the core must answer instead.
  { what: 'a Content-Type that is no media type', send: () => ({ headers: { 'content-type': 'foo' }, body: formBody(paidFields()) }), status: 415, text: 'fail', reason: 'UNSUPPORTED_MEDIA_TYPE' },
  { what: 'a body with no Content-Type', send: () => ({ headers: { 'content-type': undefined }, body: Buffer.from(formBody(paidFields())) }), status: 415, text: 'fail', reason: 'UNSUPPORTED_MEDIA_TYPE' },
  { what: 'a repeated key', send: () => ({ body: `${formBody(paidFields())}&appid=${APP_ID}` }), status: 400, text: 'fail', reason: 'DUPLICATE_KEY' },
  { what: 'a nested key', send: () => ({ body: `${formBody(paidFields())}&a[b]=1` }), status: 400, text: 'fail', reason: 'NESTED_KEY' },
  { what: '101 parameters', send: () => ({ body: Array.from({ length: 101 }, (_, i) => `k${i}=v`).join('&') }), status: 413, text: 'fail', reason: 'TOO_MANY_PARAMETERS' },
  { what: 'a body over 64 kB', send: () => ({ body: `${formBody(paidFields())}&pad=${'x'.repeat(70_000)}` }), status: 413, text: 'fail', reason: 'BODY_TOO_LARGE' },
  { what: 'a gzip bomb', send: () => ({ headers: { 'content-encoding': 'gzip' }, body: gzipSync(Buffer.alloc(10_000_000, 'a')) }), status: 413, text: 'fail', reason: 'BODY_TOO_LARGE' },
  { what: 'an unknown content-encoding', send: () => ({ headers: { 'content-encoding': 'br' }, body: formBody(paidFields()) }), status: 415, text: 'fail', reason: 'UNSUPPORTED_MEDIA_TYPE' },
  { what: 'a signed attach holding & (the re-split forgery)', send: () => form(paidFields({ attach: 'a&total_amount=0.01' })), status: 400, text: 'fail', reason: 'RESERVED_CHARACTER' },
  { what: 'an amount of 0.001', send: () => form(paidFields({ total_amount: '0.001' })), status: 400, text: 'fail', reason: 'BAD_AMOUNT' },
]

async function post(base: string, path: string, sent: Sent): Promise<{ status: number; text: string; headers: Headers }> {
  const headers = Object.entries({ 'content-type': FORM, ...sent.headers }).filter((header): header is [string, string] => header[1] !== undefined)
  const res = await fetch(`${base}${path}`, { method: 'POST', headers, body: sent.body })
  return { status: res.status, text: await res.text(), headers: res.headers }
}

for (const adapter of ADAPTER_SERVERS) {
  describe(`the shared behaviour suite: ${adapter.name}`, function () {
    this.timeout(20_000)
    let server: Running
    let sandbox: Sandbox
    let paid: Array<{ payment: Payment; source: string; ownRequest: boolean }>
    let failed: PayFailedNotice[]
    let failNext: boolean
    const logger = recordingLogger()

    before(async () => {
      sandbox = createSandbox({ appId: APP_ID, appSecret: SECRET, timeScale: 0.001 })
      await sandbox.start()
    })
    after(() => sandbox.close())

    beforeEach(async () => {
      paid = []
      failed = []
      failNext = false
      logger.lines.length = 0
      server = await adapter.start({
        appId: APP_ID,
        appSecret: SECRET,
        baseUrl: sandbox.url,
        notifyUrl: 'http://placeholder.invalid/gat/notify',
        logger,
        onPaid: (payment: Payment, req: unknown, ctx: { source: string }) => {
          if (failNext) {
            failNext = false
            throw new Error('the shop database is down')
          }
          paid.push({ payment, source: ctx.source, ownRequest: adapter.ownRequest(req) })
        },
        onPayFailed: (notice: PayFailedNotice) => { failed.push(notice) },
        preparePayment: (_req: unknown, params: { outer_trade_no: string }) => {
          if (params.outer_trade_no === 'LOGGED-OUT') throw Object.assign(new Error('please log in'), { status: 401 })
          return { ...params, buyer_open_id: 'd87797eea12a2f80ad72ed93214a0908', total_amount: '12.50' }
        },
      } as never)
    })
    afterEach(() => server.close())

    describe('notifications', () => {
      for (const c of NOTIFY_CASES) {
        it(`${c.what} → ${c.status} ${c.text}${c.reason ? ` (${c.reason})` : ''}`, async () => {
          const res = await post(server.base, '/gat/notify', c.send())
          expect({ status: res.status, text: res.text }).to.deep.equal({ status: c.status, text: c.text })
          expect(res.headers.get('content-type')).to.equal('text/plain; charset=utf-8')
          expect(paid).to.have.length(c.text === 'success' ? 1 : 0)
          if (c.reason) expect(logger.reasons()).to.deep.equal([c.reason])
        })
      }

      it('the shop\'s callback gets the framework\'s own request, untouched', async () => {
        await post(server.base, '/gat/notify', form(paidFields()))
        expect(paid.map((p) => p.ownRequest)).to.deep.equal([true])
      })

      it('the same notification twice → success both times, onPaid once', async () => {
        const body = form(paidFields())
        expect((await post(server.base, '/gat/notify', body)).text).to.equal('success')
        expect((await post(server.base, '/gat/notify', body)).text).to.equal('success')
        expect(paid).to.have.length(1)
      })

      it('onPaid throws → 500 fail (HANDLER_FAILED); the retry settles it once', async () => {
        failNext = true
        const body = form(paidFields())
        const first = await post(server.base, '/gat/notify', body)
        expect({ status: first.status, text: first.text }).to.deep.equal({ status: 500, text: 'fail' })
        expect(logger.reasons()).to.deep.equal(['HANDLER_FAILED'])
        expect((await post(server.base, '/gat/notify', body)).text).to.equal('success')
        expect(paid).to.have.length(1)
      })

      it('a failure notice (empty trade_no) → success, onPayFailed once, onPaid never', async () => {
        const res = await post(server.base, '/gat/notify', form(paidFields({ trade_no: '' })))
        expect(res.text).to.equal('success')
        expect(failed).to.have.length(1)
        expect(paid).to.have.length(0)
      })

      it('a GET is not a notification: the framework answers it (404), the package never runs', async () => {
        const res = await fetch(`${server.base}/gat/notify`)
        expect(res.status).to.equal(404)
        expect(logger.lines).to.deep.equal([])
      })
    })

    describe('pays', () => {
      const pay = (body: string, type = 'application/json') => fetch(`${server.base}/gat/pay`, { method: 'POST', headers: { 'content-type': type }, body })
      const order = (outerTradeNo: string) => JSON.stringify({ outer_trade_no: outerTradeNo, reason: '午餐', asset_type: '1', asset_open_id: 'a5fad9894edd0d2202639248fa0461ec' })

      it('a pay → 200 {trade_no, settled: true}, onPaid once from the pay answer, given the framework\'s own request', async () => {
        const outerTradeNo = `B${Date.now() % 1e9}${adapter.name.length}`
        const res = await pay(order(outerTradeNo))
        const body = await res.json() as Record<string, unknown>
        expect(res.status).to.equal(200)
        expect(body).to.include({ outer_trade_no: outerTradeNo, settled: true })
        expect(body.trade_no).to.be.a('string')
        expect(paid.map((p) => [p.source, p.payment.totalAmount, p.ownRequest])).to.deep.equal([['pay', '12.50', true]])
      })

      it('a text/plain body → 415 UNSUPPORTED_MEDIA_TYPE, nothing sent', async () => {
        const res = await pay(order('O1'), 'text/plain')
        expect(res.status).to.equal(415)
        expect(((await res.json()) as { code: string }).code).to.equal('UNSUPPORTED_MEDIA_TYPE')
      })

      it('a Content-Type that is no media type → 415 UNSUPPORTED_MEDIA_TYPE', async () => {
        const res = await pay(order('O1'), 'foo')
        expect(res.status).to.equal(415)
        expect(((await res.json()) as { code: string }).code).to.equal('UNSUPPORTED_MEDIA_TYPE')
      })

      it('malformed JSON → 400 entity.parse.failed', async () => {
        const res = await pay('{"outer_trade_no":')
        expect(res.status).to.equal(400)
        expect(((await res.json()) as { code: string }).code).to.equal('entity.parse.failed')
      })

      it('preparePayment refusing with a 401 → 401 UNAUTHORIZED with its message', async () => {
        const res = await pay(order('LOGGED-OUT'))
        expect(res.status).to.equal(401)
        expect(await res.json()).to.deep.equal({ code: 'UNAUTHORIZED', msg: 'please log in' })
      })
    })

    it('a body still arriving after bodyTimeoutMs → 408 fail, and the connection closed', async () => {
      const slow = await adapter.start({ appId: APP_ID, appSecret: SECRET, client: unusedClient, logger, bodyTimeoutMs: 200, onPaid: () => undefined } as never)
      try {
        const { port } = new URL(slow.base)
        // 3 of the 100 bytes announced, then nothing: the socket must not be held past the time-out.
        const answer = await new Promise<string>((resolve, reject) => {
          const socket = net.connect(Number(port), '127.0.0.1', () =>
            socket.write(`POST /gat/notify HTTP/1.1\r\nHost: x\r\nContent-Type: ${FORM}\r\nContent-Length: 100\r\n\r\nabc`))
          let data = ''
          socket.on('data', (chunk) => { data += chunk })
          socket.on('close', () => resolve(data))
          setTimeout(() => { socket.destroy(); reject(new Error(`the connection was still open after 3 s; got ${JSON.stringify(data)}`)) }, 3000)
        })
        const [head, wire] = answer.split('\r\n\r\n')
        // The fetch bridge sends no Content-Length: its body comes chunked (`4\r\nfail\r\n0\r\n\r\n`).
        const body = /\r\ntransfer-encoding: chunked\r\n/i.test(`${head}\r\n`) ? wire.split('\r\n').filter((_, i) => i % 2 === 1).join('') : wire
        expect(head).to.match(/^HTTP\/1\.1 408 /)
        expect(`${head}\r\n`).to.match(/\r\nconnection: close\r\n/i)
        expect(body).to.equal('fail')
        expect(logger.reasons()).to.include('BODY_TIMEOUT')
      } finally {
        await slow.close()
      }
    })
  })
}
