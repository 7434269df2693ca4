import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { expect } from 'chai'
import { neverSent, postForm } from '../../src/client/http'
import { DEFAULTS } from '../../src/kernel/defaults'
import { createSandbox, type Sandbox } from '../../src/testing/sandbox'
import { caught, sandboxLog } from '../helpers'

/** postForm against the sandbox, on a path of no API: only the answers the test writes (faults) matter. */
describe('client/http: postForm', () => {
  let sandbox: Sandbox
  let log: ReturnType<typeof sandboxLog>
  let x: string
  beforeEach(async () => {
    sandbox = createSandbox()
    await sandbox.start()
    log = sandboxLog(sandbox)
    x = `${sandbox.url}/x`
  })
  afterEach(() => sandbox.close())

  it('posts a UTF-8 form body and parses {code,msg,data} with the trace id', async () => {
    sandbox.respondWith({ path: '/x', body: { code: 0, msg: 'OK', data: 'd' }, headers: { 'x-trace-id': 'abc' } })
    const res = await postForm(x, { reason: '午餐 & 饮料=1', trade_info: '{"a":"b"}' }, 2000)
    expect(res).to.deep.equal({ code: 0, msg: 'OK', data: 'd', status: 200, traceId: 'abc' })
    const [seen] = log.seen('/x')
    expect(seen.method).to.equal('POST')
    // The sandbox reads a body as a UTF-8 form only (params is null otherwise).
    expect(seen.params).to.deep.equal({ reason: '午餐 & 饮料=1', trade_info: '{"a":"b"}' })
  })

  it('returns a non-zero code as an answer, not an error (the caller judges it)', async () => {
    sandbox.refuse({ path: '/x', code: 1001220005, msg: '外部交易号已存在' })
    const res = await postForm(x, {}, 2000)
    expect(res.code).to.equal(1001220005)
    expect(res.msg).to.equal('外部交易号已存在')
  })

  it('a 500 HTML page → kind http with status, snippet and trace id', async () => {
    sandbox.respondWith({ path: '/x', status: 500, body: '<html><body><h1>502 Bad Gateway</h1>\n<hr>nginx</body></html>', headers: { 'x-trace-id': 't-500' } })
    const e = await caught(postForm(x, {}, 2000))
    expect(e.kind).to.equal('http')
    expect(e.status).to.equal(500)
    expect(e.traceId).to.equal('t-500')
    expect(e.msg).to.contain('HTTP 500').and.contain('502 Bad Gateway')
    expect(e.message).to.contain('x-trace-id t-500')
    // It reached something that answered: the call may have been processed behind it.
    expect(e).to.include({ sent: true, ambiguous: true })
  })

  it('a non-200 that carries valid JSON is still http (the official client rejects any non-200)', async () => {
    sandbox.respondWith({ path: '/x', status: 503, body: { code: 0, msg: 'OK', data: 'x' } })
    expect((await caught(postForm(x, {}, 2000))).kind).to.equal('http')
  })

  it('does not follow a redirect (it would drop the POST body)', async () => {
    sandbox.respondWith({ path: '/x', status: 302, headers: { location: '/elsewhere' } })
    const e = await caught(postForm(x, {}, 2000))
    expect(e.kind).to.equal('http')
    expect(e.status).to.equal(302)
    expect(log.requests.map((r) => r.path)).to.deep.equal(['/x'])
  })

  it('shortens a huge error body in the message', async () => {
    sandbox.respondWith({ path: '/x', status: 500, body: 'x'.repeat(100_000) })
    const e = await caught(postForm(x, {}, 2000))
    expect(e.msg.length).to.be.below(300)
  })

  describe('every answer is read up to DEFAULTS.maxResponseBytes (issue 21, item 3)', () => {
    /** A server that streams `bytes` with `status`, chunked (no Content-Length), and records whether the client hung up before the end. */
    async function streaming(status: number, bytes: number) {
      const state = { hungUp: false }
      const server = http.createServer((req, res) => {
        req.resume()
        res.writeHead(status, { 'content-type': 'application/json', 'x-trace-id': 't-big' })
        res.on('close', () => { if (!res.writableFinished) state.hungUp = true })
        const chunk = Buffer.alloc(64 * 1024, 0x32)
        let sent = 0
        const more = () => {
          while (sent < bytes) {
            sent += chunk.length
            if (!res.write(chunk)) return void res.once('drain', more)
          }
          res.end()
        }
        more()
      })
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, state, close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()) }) }
    }

    it('a 200 streamed past the cap without Content-Length → invalid-response, ambiguous, the connection dropped', async () => {
      const big = await streaming(200, 4 * DEFAULTS.maxResponseBytes)
      try {
        const e = await caught(postForm(`${big.url}/x`, {}, 5000))
        expect(e).to.include({ kind: 'invalid-response', status: 200, traceId: 't-big', ambiguous: true })
        expect(e.msg).to.equal(`answer is over the ${DEFAULTS.maxResponseBytes}-byte limit`)
        await new Promise((r) => setTimeout(r, 50))
        expect(big.state.hungUp, 'the client stopped reading').to.equal(true)
      } finally {
        await big.close()
      }
    })

    it('a 502 streamed past the cap → still kind http with its status, a snippet of what was read', async () => {
      const big = await streaming(502, 4 * DEFAULTS.maxResponseBytes)
      try {
        const e = await caught(postForm(`${big.url}/x`, {}, 5000))
        expect(e).to.include({ kind: 'http', status: 502 })
        expect(e.msg).to.match(/^HTTP 502: 2+…$/)
      } finally {
        await big.close()
      }
    })

    it('an answer of exactly the cap is read', async () => {
      const json = JSON.stringify({ code: 0, msg: 'OK', data: '' })
      const body = json.replace('"data":""', `"data":"${'2'.repeat(DEFAULTS.maxResponseBytes - json.length)}"`)
      expect(Buffer.byteLength(body)).to.equal(DEFAULTS.maxResponseBytes)
      sandbox.respondWith({ path: '/x', body, headers: { 'content-type': 'application/json' } })
      const res = await postForm(x, {}, 5000)
      expect(res.data).to.have.length(DEFAULTS.maxResponseBytes - json.length)
    })
  })

  const invalid: Array<[string, string]> = [
    ['an HTML page with 200', '<!DOCTYPE html><html><title>WAF</title></html>'],
    ['garbled JSON', '{"code":0,"msg":"OK","data":"2020'],
    ['JSON without code', '{"msg":"OK","data":"x"}'],
    ['JSON with a string code', '{"code":"0","msg":"OK"}'],
    ['a JSON array', '[0]'],
    ['JSON null', 'null'],
    ['an empty body', ''],
  ]
  for (const [name, body] of invalid) {
    it(`${name} → kind invalid-response with trace id`, async () => {
      sandbox.respondWith({ path: '/x', body, headers: { 'content-type': 'application/json', 'x-trace-id': 't-inv' } })
      const e = await caught(postForm(x, {}, 2000))
      expect(e.kind).to.equal('invalid-response')
      expect(e.status).to.equal(200)
      expect(e.traceId).to.equal('t-inv')
    })
  }

  it('a hanging server → kind timeout, ambiguous, and it was sent exactly once', async () => {
    sandbox.hang({ path: '/x' })
    const e = await caught(postForm(x, { a: '1' }, 200))
    expect(e.kind).to.equal('timeout')
    expect(e.ambiguous).to.equal(true)
    expect(e.status).to.equal(0)
    expect(e.message).to.contain('look up the outer_trade_no')
    expect(log.seen('/x')).to.have.length(1)
  })

  it('headers then a stalled body → still a timeout (one timer covers the body too)', async () => {
    // Processed, so the half-sent answer carries the trace id the whole one would have had.
    sandbox.hang({ path: '/x', midAnswer: true, processed: true })
    const e = await caught(postForm(x, {}, 200))
    expect(e.kind).to.equal('timeout')
    expect(e.ambiguous).to.equal(true)
    expect(e.traceId).to.be.a('string').and.equal(log.seen('/x')[0].traceId)
  })

  it('a socket closed after the request was sent → kind network, ambiguous', async () => {
    sandbox.reset({ path: '/x' })
    const e = await caught(postForm(x, {}, 2000))
    expect(e.kind).to.equal('network')
    expect(e.ambiguous).to.equal(true)
    expect(log.seen('/x')).to.have.length(1)
  })

  it('a refused connection → kind network, not ambiguous (nothing was sent)', async () => {
    const server = http.createServer()
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as AddressInfo).port
    await new Promise<void>((r) => server.close(() => r()))
    const e = await caught(postForm(`http://127.0.0.1:${port}/x`, {}, 2000))
    expect(e.kind).to.equal('network')
    expect(e.ambiguous).to.equal(false)
    expect(e.msg).to.contain('ECONNREFUSED')
  })
})

describe('client/http: neverSent', () => {
  it('is true only when every connection attempt failed before sending', () => {
    expect(neverSent(new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } }))).to.equal(true)
    expect(neverSent(new TypeError('fetch failed', { cause: { code: 'ECONNRESET' } }))).to.equal(false)
    expect(neverSent(new TypeError('fetch failed', { cause: { code: 'UND_ERR_SOCKET' } }))).to.equal(false)
    expect(neverSent(new TypeError('fetch failed'))).to.equal(false)
    const refusedTwice = new AggregateError([{ code: 'ECONNREFUSED' }, { code: 'ECONNREFUSED' }])
    expect(neverSent(new TypeError('fetch failed', { cause: refusedTwice }))).to.equal(true)
    const mixed = new AggregateError([{ code: 'ECONNREFUSED' }, { code: 'ECONNRESET' }])
    expect(neverSent(new TypeError('fetch failed', { cause: mixed }))).to.equal(false)
  })

  it('reads node:http errors as they come: the code on the error, happy eyeballs as an AggregateError', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })
    expect(neverSent(refused)).to.equal(true)
    expect(neverSent(Object.assign(new Error('getaddrinfo ENOTFOUND x'), { code: 'ENOTFOUND' }))).to.equal(true)
    expect(neverSent(Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }))).to.equal(true)
    expect(neverSent(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))).to.equal(false)
    const attempts = Object.assign(new AggregateError([{ code: 'ECONNREFUSED' }, { code: 'ENETUNREACH' }]), { code: 'ECONNREFUSED' })
    expect(neverSent(attempts)).to.equal(true)
    const oneGotThrough = Object.assign(new AggregateError([{ code: 'ECONNREFUSED' }, { code: 'ETIMEDOUT' }]), { code: 'ECONNREFUSED' })
    expect(neverSent(oneGotThrough)).to.equal(false)
  })

  it('is false once the socket connected (or was a reused keep-alive one), whatever the code', () => {
    const unreachable = Object.assign(new Error('read EHOSTUNREACH'), { code: 'EHOSTUNREACH' })
    expect(neverSent(unreachable, false)).to.equal(true)
    expect(neverSent(unreachable, true)).to.equal(false)
    expect(neverSent(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }), true)).to.equal(false)
  })
})
