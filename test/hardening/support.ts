/**
 * Shared pieces of the hardening tests: a router under test with a recording logger, raw HTTP
 * (bytes and headers exactly as given, nothing added by a client library) and a raw socket.
 */
import http from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { createHash } from 'node:crypto'
import { guanaitong } from '../../src/adapters/express/router'
import { canonicalString } from '../../src/kernel/signature'
import type { Fields, GuanaitongOptions, Payment } from '../../src/kernel/types'
import { APP_ID, EXPRESS_VERSIONS, SECRET, recordingLogger, unusedClient } from '../helpers'

export const FORM = 'application/x-www-form-urlencoded'

type ExpressFactory = (typeof EXPRESS_VERSIONS)[number]['express']

/** An app with the router on `/gat`, recording every payment and log line. */
export function notifyApp(express: ExpressFactory, extra: Partial<GuanaitongOptions> = {}) {
  const paid: Payment[] = []
  const logger = recordingLogger()
  const app = express()
  app.use('/gat', guanaitong({
    appId: APP_ID, appSecret: SECRET, client: unusedClient, logger, payPath: false,
    onPaid: async (p) => { paid.push(p) },
    ...extra,
  }))
  return { app, paid, logger }
}

/** Starts `app` on an ephemeral port; `close()` also drops idle keep-alive sockets. */
export async function listen(app: http.RequestListener): Promise<{ server: http.Server; port: number; close: () => Promise<void> }> {
  const server = http.createServer(app)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const close = () => new Promise<void>((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })
  return { server, port, close }
}

export interface RawAnswer {
  status: number
  text: string
  headers: http.IncomingHttpHeaders
}

/** POSTs `body` with exactly `headers` (plus Content-Length unless given) and reads the whole answer. */
export function rawPost(port: number, path: string, headers: Record<string, string>, body: Buffer | string): Promise<RawAnswer> {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, path, method: 'POST', agent: false,
      headers: { 'content-length': String(bytes.length), ...headers },
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), headers: res.headers }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(bytes)
  })
}

/**
 * Opens a raw TCP connection, writes `data`, waits `until` (ms, or a promise), then ends or destroys the socket.
 * Resolves with whatever came back before the connection closed.
 */
export async function rawSocket(port: number, data: string, how: 'end' | 'destroy', until: number | Promise<unknown> = 50): Promise<string> {
  const socket = net.connect(port, '127.0.0.1')
  let received = ''
  socket.on('data', (d) => { received += d.toString('latin1') })
  socket.on('error', () => { /* the server may reset a connection it refused; what matters is that it lives on */ })
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
  await new Promise<void>((resolve) => socket.on('connect', () => resolve()))
  socket.write(data)
  await (typeof until === 'number' ? new Promise((resolve) => setTimeout(resolve, until)) : until)
  if (how === 'end') socket.end()
  else socket.destroy()
  await closed
  return received
}

/** A form body with keys and values percent-encoded as given, in the given order; duplicates allowed. */
export function pairsBody(pairs: ReadonlyArray<readonly [string, string]>): string {
  return pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')
}

/** SHA-1 over the canonical string with empty values kept as `k=` (the newer signer's way). */
export function signKeepingEmpty(fields: Fields, secret = SECRET): string {
  return createHash('sha1').update(canonicalString(fields, secret, 'keep'), 'utf8').digest('hex')
}

/** Unix seconds of a fixed clock used where the timestamp window matters. */
export const NOW_MS = 1_700_000_000_000
export const NOW_SEC = NOW_MS / 1000

export { APP_ID, SECRET }
