import { spawn } from 'node:child_process'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { expect } from 'chai'
import { httpAgent, httpsAgent } from '../../src/client/agent'
import { postForm } from '../../src/client/http'
import { caught, waitFor } from '../helpers'

// A self-signed certificate for localhost / 127.0.0.1, valid 2000–2100.
const KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg9+tC0LU5Y2gfmlXi
55jTqCRuusFnNbwKw1jfKUrnA1OhRANCAASClJucoFDNouQ5Qnv/2VVgPjkfElMS
gNviLCDvI+5YuSlsu3bPv4qlvJlZjFd17nO7SokqCZ6/vHfTjyWDv6Pe
-----END PRIVATE KEY-----
`
const CERT = `-----BEGIN CERTIFICATE-----
MIIBZjCCAQ2gAwIBAgIBATAKBggqhkjOPQQDAjAUMRIwEAYDVQQDDAlsb2NhbGhv
c3QwIBcNMDAwMTAxMDAwMDAwWhgPMjEwMDAxMDEwMDAwMDBaMBQxEjAQBgNVBAMM
CWxvY2FsaG9zdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABIKUm5ygUM2i5DlC
e//ZVWA+OR8SUxKA2+IsIO8j7li5KWy7ds+/iqW8mVmMV3Xuc7tKiSoJnr+8d9OP
JYO/o96jTjBMMA8GA1UdEwEB/wQFMAMBAf8wGgYDVR0RBBMwEYIJbG9jYWxob3N0
hwR/AAABMB0GA1UdDgQWBBQ9ocyv5Tlv0aXgyic3LquYMNVbYzAKBggqhkjOPQQD
AgNHADBEAiAFKxHTwRyghRiQEgqiS64tPu9BzgdLU6QWoYDGe7zaCwIgdW/M4UiF
dz9j+0P8wtMZ4H7OrO1c7NCh1eTFrkva6GI=
-----END CERTIFICATE-----
`

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void
const OK: Handler = (req, res) => {
  req.resume()
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'x-trace-id': 't-ok' })
    res.end('{"code":0,"msg":"OK","data":null}')
  })
}

/** A server that counts TCP connections, closed ones, and requests; `handle` gets the request's number. */
class Counting {
  connections = 0
  closed = 0
  requests = 0
  readonly sockets = new Set<Socket>()
  url = ''
  private constructor(readonly server: http.Server) {}

  static async start(handle: Handler = OK, secure = false): Promise<Counting> {
    const server = secure ? https.createServer({ key: KEY, cert: CERT }) : http.createServer()
    const c = new Counting(server)
    server.on('request', (req, res) => handle(req, res, ++c.requests))
    // https: 'secureConnection' (a completed handshake); the TCP 'connection' comes before it.
    server.on(secure ? 'secureConnection' : 'connection', (socket: Socket) => {
      c.connections += 1
      c.sockets.add(socket)
      socket.on('close', () => {
        c.closed += 1
        c.sockets.delete(socket)
      })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    c.url = `${secure ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`
    return c
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((r) => this.server.close(() => r()))
  }
}

describe('client/http: transport (node:http, keep-alive)', () => {
  let server: Counting | undefined
  afterEach(async () => {
    await server?.close()
    server = undefined
  })

  it('sends the headers and body as before: form type, accept json, Content-Length, no chunking', async () => {
    let seen: http.IncomingHttpHeaders = {}
    let body = ''
    server = await Counting.start((req, res) => {
      seen = req.headers
      req.setEncoding('utf8')
      req.on('data', (c: string) => { body += c })
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json', 'x-trace-id': 't-ok' })
        res.end('{"code":0,"msg":"OK","data":null}')
      })
    })
    const fields = { reason: '午餐 & 饮料=1', a: 'x y+z' }
    const res = await postForm(`${server.url}/p?q=1`, fields, 2000)
    expect(res).to.deep.equal({ code: 0, msg: 'OK', data: null, status: 200, traceId: 't-ok' })
    expect(seen['content-type']).to.equal('application/x-www-form-urlencoded;charset=UTF-8')
    expect(seen.accept).to.equal('application/json')
    expect(seen['transfer-encoding']).to.equal(undefined)
    expect(body).to.equal(new URLSearchParams(fields).toString())
    expect(seen['content-length']).to.equal(String(Buffer.byteLength(body)))
  })

  it('20 sequential calls share one connection', async () => {
    server = await Counting.start()
    for (let i = 0; i < 20; i++) expect((await postForm(`${server.url}/x`, { i: String(i) }, 2000)).code).to.equal(0)
    expect(server.requests).to.equal(20)
    expect(server.connections).to.equal(1)
  })

  it('an answer with a byte order mark and split multi-byte characters decodes as UTF-8', async () => {
    server = await Counting.start((req, res) => {
      req.resume()
      const bytes = Buffer.from('\uFEFF{"code":0,"msg":"外部交易号","data":null}', 'utf8')
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': bytes.length })
      // One byte at a time: characters are split across chunks.
      let i = 0
      const next = () => (i < bytes.length ? res.write(bytes.subarray(i, ++i), () => setImmediate(next)) : res.end())
      next()
    })
    const res = await postForm(`${server.url}/x`, {}, 2000)
    expect(res.msg).to.equal('外部交易号')
  })

  it('a timed-out request destroys its socket; the next call gets a new one', async () => {
    server = await Counting.start((req, res, n) => {
      if (n === 1) return OK(req, res, n)
      req.resume() // n === 2 hangs
      if (n > 2) OK(req, res, n)
    })
    await postForm(`${server.url}/x`, {}, 2000)
    const e = await caught(postForm(`${server.url}/x`, {}, 150))
    expect(e).to.include({ kind: 'timeout', ambiguous: true, status: 0 })
    // The hung call ran on the warm socket: the server sees it closed by the client.
    await waitFor('the timed-out socket to close', () => server!.closed === 1, { timeoutMs: 2000, everyMs: 5 })
    expect(httpAgent.freeSockets[`127.0.0.1:${new URL(server.url).port}:`]).to.equal(undefined)
    expect((await postForm(`${server.url}/x`, {}, 2000)).code).to.equal(0)
    expect(server.connections).to.equal(2)
    expect(server.requests).to.equal(3)
  })

  it('headers then a stalled body: the timeout destroys the socket too', async () => {
    server = await Counting.start((req, res) => {
      req.resume()
      res.writeHead(200, { 'content-type': 'application/json', 'x-trace-id': 't-stall' })
      res.write('{"code":0,')
    })
    const e = await caught(postForm(`${server.url}/x`, {}, 150))
    expect(e).to.include({ kind: 'timeout', ambiguous: true, status: 200, traceId: 't-stall' })
    await waitFor('the stalled socket to close', () => server!.closed === 1, { timeoutMs: 2000, everyMs: 5 })
  })

  it('a non-200 whose body stalls is still an http error once the timer fires (sent, so ambiguous)', async () => {
    server = await Counting.start((req, res) => {
      req.resume()
      res.writeHead(502, { 'content-type': 'text/html' })
      res.write('<html>')
    })
    const e = await caught(postForm(`${server.url}/x`, {}, 150))
    expect(e).to.include({ kind: 'http', status: 502, sent: true, ambiguous: true })
    await waitFor('the stalled socket to close', () => server!.closed === 1, { timeoutMs: 2000, everyMs: 5 })
  })

  it('a 200 cut off mid-body → network, ambiguous, with status and trace id', async () => {
    server = await Counting.start((req, res) => {
      req.resume()
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100', 'x-trace-id': 't-cut' })
      res.write('{"code":0,', () => res.socket?.destroy())
    })
    const e = await caught(postForm(`${server.url}/x`, {}, 2000))
    expect(e).to.include({ kind: 'network', ambiguous: true, status: 200, traceId: 't-cut' })
  })

  it('a reused socket reset before any answer byte → network, ambiguous, and not retried', async () => {
    server = await Counting.start((req, res, n) => {
      if (n !== 2) return OK(req, res, n)
      req.resume()
      req.on('end', () => (req.socket as Socket).resetAndDestroy())
    })
    await postForm(`${server.url}/x`, {}, 2000)
    const e = await caught(postForm(`${server.url}/x`, {}, 2000))
    expect(e).to.include({ kind: 'network', ambiguous: true, status: 0 })
    expect(e.msg).to.contain('ECONNRESET')
    expect(server.requests).to.equal(2)
    expect(server.connections).to.equal(1)
  })

  it('a first connection closed after the request was sent → ambiguous too', async () => {
    server = await Counting.start((req) => {
      req.resume()
      req.on('end', () => (req.socket as Socket).resetAndDestroy())
    })
    const e = await caught(postForm(`${server.url}/x`, {}, 2000))
    expect(e).to.include({ kind: 'network', ambiguous: true })
    expect(server.requests).to.equal(1)
  })

  it('an answer slower than the idle-socket timeout (4 s) still arrives on its socket', async function () {
    this.timeout(10_000)
    server = await Counting.start((req, res, n) => setTimeout(() => OK(req, res, n), 4300))
    const res = await postForm(`${server.url}/x`, {}, 8000)
    expect(res.code).to.equal(0)
    expect(server.closed).to.equal(0)
  })

  it("closes an idle socket before the server's announced keep-alive timeout runs out", async () => {
    server = await Counting.start()
    server.server.keepAliveTimeout = 2000 // announced as Keep-Alive: timeout=2; the client keeps it 1 s
    const started = Date.now()
    await postForm(`${server.url}/x`, {}, 2000)
    await waitFor('the idle socket to close', () => server!.closed === 1, { timeoutMs: 3000, everyMs: 5 })
    expect(Date.now() - started).to.be.below(1800)
  })

  it('parallel calls each get a socket and all succeed', async () => {
    server = await Counting.start()
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => postForm(`${server!.url}/x`, { i: String(i) }, 2000)))
    expect(answers.every((a) => a.code === 0)).to.equal(true)
    expect(server.requests).to.equal(10)
  })

  it('an unknown host → network, not ambiguous', async function () {
    this.timeout(15_000)
    const e = await caught(postForm('http://no-such-host.invalid/x', {}, 10_000))
    expect(e.kind).to.equal('network')
    expect(e.ambiguous).to.equal(false)
    expect(e.msg).to.match(/ENOTFOUND|EAI_AGAIN/)
  })

  it('an unsupported protocol → network, nothing sent', async () => {
    const e = await caught(postForm('ftp://127.0.0.1/x', {}, 2000))
    expect(e).to.include({ kind: 'network', sent: false, ambiguous: false })
  })

  describe('https', () => {
    it('a certificate the client rejects → network, not ambiguous, and no request reached the server', async () => {
      server = await Counting.start(OK, true)
      const e = await caught(postForm(`${server.url}/x`, {}, 2000))
      expect(e).to.include({ kind: 'network', ambiguous: false, status: 0 })
      expect(e.msg).to.contain('DEPTH_ZERO_SELF_SIGNED_CERT')
      expect(server.requests).to.equal(0)
    })

    it('a handshake that never completes → timeout, not sent, so not ambiguous', async () => {
      const sockets = new Set<Socket>()
      const silent = net.createServer((socket) => sockets.add(socket))
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
      try {
        const e = await caught(postForm(`https://127.0.0.1:${(silent.address() as AddressInfo).port}/x`, {}, 200))
        expect(e).to.include({ kind: 'timeout', sent: false, ambiguous: false, status: 0 })
        expect(e.msg).to.contain('no connection was made')
        expect(sockets.size).to.equal(1)
      } finally {
        for (const s of sockets) s.destroy()
        await new Promise<void>((r) => silent.close(() => r()))
      }
    })

    describe('with the certificate trusted', () => {
      // The shared agent's options are merged into every request it makes, and `ca` is part of
      // its pool key: trusting the test certificate here does not mix with other tests' sockets.
      beforeEach(() => { (httpsAgent.options as https.AgentOptions).ca = CERT })
      afterEach(() => { delete (httpsAgent.options as https.AgentOptions).ca })

      it('reuses one TLS connection for sequential calls', async () => {
        server = await Counting.start(OK, true)
        for (let i = 0; i < 10; i++) expect((await postForm(`${server.url}/x`, { i: String(i) }, 2000)).traceId).to.equal('t-ok')
        expect(server.requests).to.equal(10)
        expect(server.connections).to.equal(1)
      })

      it('a connection reset after the handshake and the request → ambiguous', async () => {
        server = await Counting.start((req) => {
          req.resume()
          req.on('end', () => req.socket.destroy())
        }, true)
        const e = await caught(postForm(`${server.url}/x`, {}, 2000))
        expect(e).to.include({ kind: 'network', ambiguous: true })
        expect(server.requests).to.equal(1)
      })
    })
  })

  it('pooled sockets do not keep the process alive', async function () {
    this.timeout(20_000)
    server = await Counting.start()
    // Longer than the agent's idle timeout (4 s): only unref'd sockets let the child exit sooner.
    server.server.keepAliveTimeout = 60_000
    const module = pathToFileURL(resolve('src/client/http.ts')).href
    const script = `
      const { postForm } = await import(${JSON.stringify(module)})
      for (let i = 0; i < 3; i++) await postForm(${JSON.stringify(`${server.url}/x`)}, { i: String(i) }, 2000)
      console.log('done')
    `
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c })
    let doneAt = 0
    child.stdout.setEncoding('utf8').on('data', (c: string) => { if (c.includes('done')) doneAt = Date.now() })
    const code = await new Promise<number | null>((r) => child.on('exit', r))
    expect(code, stderr).to.equal(0)
    expect(doneAt).to.be.above(0)
    expect(Date.now() - doneAt).to.be.below(2500)
    expect(server.requests).to.equal(3)
    expect(server.connections).to.equal(1)
    // The idle socket was still open when the child exited: it was the process exiting that closed it.
    await waitFor('the child socket to close', () => server!.closed === 1, { timeoutMs: 2000, everyMs: 5 })
  })
})
