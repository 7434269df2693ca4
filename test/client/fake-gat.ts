import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { expect } from 'chai'
import { GatError } from '../../src/errors'
import { verifySign } from '../../src/signature'

/** One request as the fake received it. */
export interface SeenRequest {
  method: string
  path: string
  contentType: string
  /** Body fields plus query fields (both are signed). */
  fields: Record<string, string>
  /** Whether `sign` verified under the fake's secret. */
  signOk: boolean
}

/** A scripted answer. A function gets the request and returns one of the others. */
export type Answer =
  | { json: unknown; status?: number; headers?: Record<string, string> }
  | { body: string; status?: number; contentType?: string; headers?: Record<string, string> }
  | { hang: true }
  | { close: true }
  | ((req: SeenRequest) => Answer)

export const FAKE_BAD_SIGN_CODE = 9_999_999 // the fake's own code, not Guanaitong's

/**
 * A tiny stand-in for Guanaitong on a real port: verifies signatures, issues tokens,
 * accepts pays, and lets a test queue one-shot answers per path.
 */
export class FakeGat {
  readonly requests: SeenRequest[] = []
  readonly appId: string
  readonly secret: string
  expiresIn = 3600
  private readonly scripts = new Map<string, Answer[]>()
  private readonly validTokens = new Set<string>()
  private readonly usedTradeNos = new Set<string>()
  private tokenSeq = 0
  private tradeSeq = 0
  private traceSeq = 0
  private server!: http.Server
  url = ''

  private constructor(appId: string, secret: string) {
    this.appId = appId
    this.secret = secret
  }

  static async start(appId = '20110698', secret = 'secret123'): Promise<FakeGat> {
    const fake = new FakeGat(appId, secret)
    fake.server = http.createServer((req, res) => fake.handle(req, res))
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve))
    fake.url = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`
    return fake
  }

  /** Queues answers for `path`, used once each, in order, before the default behaviour. */
  script(path: string, ...answers: Answer[]): void {
    const queue = this.scripts.get(path) ?? []
    queue.push(...answers)
    this.scripts.set(path, queue)
  }

  seen(path: string): SeenRequest[] {
    return this.requests.filter((r) => r.path === path)
  }

  /** Makes every issued token invalid, as when Guanaitong revokes them. */
  revokeTokens(): void {
    this.validTokens.clear()
  }

  async close(): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake')
      const fields: Record<string, string> = {}
      for (const [k, v] of url.searchParams) fields[k] = v
      for (const [k, v] of new URLSearchParams(Buffer.concat(chunks).toString('utf8'))) fields[k] = v
      const seen: SeenRequest = {
        method: req.method ?? '',
        path: url.pathname,
        contentType: String(req.headers['content-type'] ?? ''),
        fields,
        signOk: verifySign(fields, this.secret),
      }
      this.requests.push(seen)
      const scripted = this.scripts.get(seen.path)?.shift()
      this.answer(res, scripted ?? this.defaultAnswer(seen), seen)
    })
  }

  private answer(res: http.ServerResponse, answer: Answer, seen: SeenRequest): void {
    if (typeof answer === 'function') return this.answer(res, answer(seen), seen)
    if ('hang' in answer) return // never answers; close() destroys the socket
    if ('close' in answer) {
      res.socket?.destroy()
      return
    }
    const headers = { 'x-trace-id': `trace-${++this.traceSeq}`, ...answer.headers }
    if ('json' in answer) {
      res.writeHead(answer.status ?? 200, { 'content-type': 'application/json;charset=UTF-8', ...headers })
      res.end(JSON.stringify(answer.json))
    } else {
      res.writeHead(answer.status ?? 200, { 'content-type': answer.contentType ?? 'text/html', ...headers })
      res.end(answer.body)
    }
  }

  private defaultAnswer(req: SeenRequest): Answer {
    const f = req.fields
    if (req.method !== 'POST') return { json: { code: 405, msg: 'POST only', data: null } }
    if (!req.signOk) return { json: { code: FAKE_BAD_SIGN_CODE, msg: 'fake: bad sign', data: null } }
    if (f.appid !== this.appId || f.version !== '1.0.0' || !/^[0-9]{10}$/.test(f.timestamp ?? '')) {
      return { json: { code: 9_999_998, msg: 'fake: bad public parameters', data: null } }
    }
    if (req.path === '/token/create') {
      if (f.grant_type !== 'client_credential' || 'access_token' in f) {
        return { json: { code: 9_999_997, msg: 'fake: bad token request', data: null } }
      }
      const token = `tok-${++this.tokenSeq}`
      this.validTokens.add(token)
      return { json: { code: 0, msg: 'OK', data: { access_token: token, expires_in: this.expiresIn } } }
    }
    if (!this.validTokens.has(f.access_token ?? '')) {
      return { json: { code: 1000210004, msg: 'access_token无效', data: null } }
    }
    if (req.path === '/platformDealer/employee/pay') {
      if (this.usedTradeNos.has(f.outer_trade_no)) return { json: { code: 1001220005, msg: '外部交易号已存在', data: null } }
      this.usedTradeNos.add(f.outer_trade_no)
      return { json: { code: 0, msg: 'OK', data: `20200702${String(++this.tradeSeq).padStart(8, '0')}` } }
    }
    return { json: { code: 0, msg: 'OK', data: { echo: f } } }
  }
}

/** The GatError `p` rejects with; fails the test when it resolves or throws something else. */
export async function caught(p: Promise<unknown>): Promise<GatError> {
  try {
    await p
  } catch (err) {
    expect(err).to.be.instanceOf(GatError)
    return err as GatError
  }
  throw new Error('expected a GatError, got success')
}
