/**
 * Every transport fault × call (token, pay) × moment (before the request was written, after it,
 * during the answer), through the real pay route, the real client and real sockets: the sandbox's
 * fault injection for everything after the request was written; a closed port and a TCP listener
 * that never finishes the TLS handshake for "before write". Each row says what the cashier page
 * is told and whether the employee was really charged. docs/pay-outcomes.md is checked against it.
 */
import { readFileSync } from 'node:fs'
import { createServer, type Server as NetServer, type Socket } from 'node:net'
import { expect } from 'chai'
import express from 'express'
import { Redis } from 'ioredis'
import request from 'supertest'
import { MemoryTokenCache } from '../../src/client/token'
import { OUTER_TRADE_NO_EXISTS_CODE } from '../../src/kernel/errors'
import { PAY_ANSWERS } from '../../src/core/pay/answers'
import { guanaitong } from '../../src/adapters/express/router'
import { RedisTokenCache } from '../../src/stores/redis-token-cache'
import { createSandbox, PAY_PATH, TOKEN_PATH, type Sandbox } from '../../src/testing/sandbox'
import type { TokenCache } from '../../src/kernel/types'
import { recordingLogger } from '../helpers'
import { deleteKeys, REDIS_URL, uniquePrefix, unusedPort } from '../stores/redis-helpers'

const APP = { appId: '20110698', appSecret: 'sandbox-secret' }
/** Long enough that a loaded machine does not time out a healthy call; each time-out row waits this long. */
const TIMEOUT_MS = 1000

type Call = 'token cache' | 'token call' | 'pay call'
type When = 'before write' | 'after write' | 'during the answer' | 'answered'

/** Where the client points and with what token cache; `cleanup` undoes what `setup` started. */
interface Target {
  baseUrl: string
  tokenCache?: TokenCache
  sandbox?: Sandbox
  cleanup: () => Promise<void>
}

interface Case {
  call: Call
  when: When
  fault: string
  setup: () => Promise<Target>
  /** What the pay route answers. */
  status: number
  code: string | number
  ambiguous: boolean
  /** Whether a payment exists at the sandbox afterwards (null: no sandbox was reached). */
  charged: boolean | null
}

async function sandboxWith(arm: (s: Sandbox) => void, tokenCache?: TokenCache): Promise<Target> {
  const sandbox = createSandbox(APP)
  await sandbox.start()
  arm(sandbox)
  return { baseUrl: sandbox.url, sandbox, tokenCache, cleanup: () => sandbox.close() }
}

/** A token cache that already holds a token, so the pay is the first request the client makes. */
async function warmCache(): Promise<MemoryTokenCache> {
  const cache = new MemoryTokenCache()
  await cache.set({ token: 'cached-token', expiresAt: Date.now() + 3_600_000, refreshAt: Date.now() + 3_600_000 })
  return cache
}

async function closedPort(tokenCache?: TokenCache): Promise<Target> {
  return { baseUrl: `http://127.0.0.1:${await unusedPort()}`, tokenCache, cleanup: async () => {} }
}

/** Accepts TCP connections and never says a word: an https client never finishes its handshake, so never writes the request. */
async function silentTls(tokenCache?: TokenCache): Promise<Target> {
  const sockets = new Set<Socket>()
  const server: NetServer = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    baseUrl: `https://127.0.0.1:${port}`,
    tokenCache,
    cleanup: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

const token = { path: TOKEN_PATH, processed: true }
const pay = (processed: boolean) => ({ path: PAY_PATH, processed })
const NOT_SENT = { status: 503, code: 'UNAVAILABLE', ambiguous: false } as const

const CASES: Case[] = [
  // Nothing of the pay is sent: every failure before it answers 503, never ambiguous.
  { call: 'token cache', when: 'before write', fault: 'Redis unreachable, no token in this process', ...NOT_SENT, charged: null,
    setup: async () => {
      const port = await unusedPort()
      const client = new Redis({ port, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null })
      const sandbox = createSandbox(APP)
      await sandbox.start()
      return {
        baseUrl: sandbox.url, sandbox, tokenCache: new RedisTokenCache({ client, prefix: 'unreachable:' }),
        cleanup: async () => { client.disconnect(); await sandbox.close() },
      }
    } },
  { call: 'token cache', when: 'before write', fault: 'another instance holds the refresh lock past waitMs (TOKEN_REFRESH_TIMEOUT)', ...NOT_SENT, charged: false,
    setup: async () => {
      const client = new Redis(REDIS_URL)
      const prefix = uniquePrefix('pay-outcomes')
      await client.set(`${prefix}lock`, 'another-instance', 'PX', 10_000)
      const sandbox = createSandbox(APP)
      await sandbox.start()
      return {
        baseUrl: sandbox.url, sandbox, tokenCache: new RedisTokenCache({ client, prefix, waitMs: 200, pollMs: 20 }),
        cleanup: async () => { await deleteKeys(client, prefix); client.disconnect(); await sandbox.close() },
      }
    } },
  { call: 'token call', when: 'before write', fault: 'connection refused', ...NOT_SENT, charged: null, setup: () => closedPort() },
  { call: 'token call', when: 'before write', fault: 'no connection within timeoutMs (TLS handshake never completes)', ...NOT_SENT, charged: null, setup: () => silentTls() },
  { call: 'token call', when: 'after write', fault: 'no answer within timeoutMs', ...NOT_SENT, charged: false, setup: () => sandboxWith((s) => s.hang(token)) },
  { call: 'token call', when: 'after write', fault: 'connection reset before any answer', ...NOT_SENT, charged: false, setup: () => sandboxWith((s) => s.reset(token)) },
  { call: 'token call', when: 'during the answer', fault: 'headers and half the body, then silence', ...NOT_SENT, charged: false, setup: () => sandboxWith((s) => s.hang({ ...token, midAnswer: true })) },
  { call: 'token call', when: 'during the answer', fault: 'headers and half the body, then reset', ...NOT_SENT, charged: false, setup: () => sandboxWith((s) => s.reset({ ...token, midAnswer: true })) },
  { call: 'token call', when: 'during the answer', fault: '502 HTML page', ...NOT_SENT, charged: false, setup: () => sandboxWith((s) => s.respond5xx(token)) },
  { call: 'token call', when: 'during the answer', fault: '200 with a body that is not JSON', ...NOT_SENT, charged: false, setup: () => sandboxWith((s) => s.garble(token)) },
  { call: 'token call', when: 'answered', fault: 'well-formed refusal (code 999912345)', ...NOT_SENT, charged: false, setup: () => sandboxWith((s) => s.refuse({ path: TOKEN_PATH, code: 999_912_345 })) },
  { call: 'pay call', when: 'before write', fault: 'connection refused', ...NOT_SENT, charged: null, setup: async () => closedPort(await warmCache()) },
  { call: 'pay call', when: 'before write', fault: 'no connection within timeoutMs (TLS handshake never completes)', ...NOT_SENT, charged: null, setup: async () => silentTls(await warmCache()) },
  // The pay may have reached Guanaitong and no well-formed answer came: ambiguous, whether or not it was charged.
  { call: 'pay call', when: 'after write', fault: 'no answer within timeoutMs, not processed', status: 504, code: 'GAT_TIMEOUT', ambiguous: true, charged: false, setup: () => sandboxWith((s) => s.hang(pay(false))) },
  { call: 'pay call', when: 'after write', fault: 'no answer within timeoutMs, processed', status: 504, code: 'GAT_TIMEOUT', ambiguous: true, charged: true, setup: () => sandboxWith((s) => s.hang(pay(true))) },
  { call: 'pay call', when: 'after write', fault: 'connection reset before any answer, not processed', status: 502, code: 'GAT_NETWORK', ambiguous: true, charged: false, setup: () => sandboxWith((s) => s.reset(pay(false))) },
  { call: 'pay call', when: 'after write', fault: 'connection reset before any answer, processed', status: 502, code: 'GAT_NETWORK', ambiguous: true, charged: true, setup: () => sandboxWith((s) => s.reset(pay(true))) },
  { call: 'pay call', when: 'during the answer', fault: 'headers and half the body, then silence', status: 504, code: 'GAT_TIMEOUT', ambiguous: true, charged: true, setup: () => sandboxWith((s) => s.hang({ ...pay(true), midAnswer: true })) },
  { call: 'pay call', when: 'during the answer', fault: 'headers and half the body, then reset', status: 502, code: 'GAT_NETWORK', ambiguous: true, charged: true, setup: () => sandboxWith((s) => s.reset({ ...pay(true), midAnswer: true })) },
  { call: 'pay call', when: 'during the answer', fault: '502 HTML page, not processed', status: 502, code: 'GAT_HTTP', ambiguous: true, charged: false, setup: () => sandboxWith((s) => s.respond5xx(pay(false))) },
  { call: 'pay call', when: 'during the answer', fault: '502 HTML page, processed', status: 502, code: 'GAT_HTTP', ambiguous: true, charged: true, setup: () => sandboxWith((s) => s.respond5xx(pay(true))) },
  { call: 'pay call', when: 'during the answer', fault: '503 HTML page, processed', status: 502, code: 'GAT_HTTP', ambiguous: true, charged: true, setup: () => sandboxWith((s) => s.respond5xx({ ...pay(true), status: 503 })) },
  { call: 'pay call', when: 'during the answer', fault: '200 with a body that is not JSON, processed', status: 502, code: 'GAT_INVALID_RESPONSE', ambiguous: true, charged: true, setup: () => sandboxWith((s) => s.garble(pay(true))) },
  { call: 'pay call', when: 'during the answer', fault: '200 with a body over 1 MB, processed', status: 502, code: 'GAT_INVALID_RESPONSE', ambiguous: true, charged: true,
    setup: () => sandboxWith((s) => s.answerData({ ...pay(true), data: '2'.repeat(2 * 1024 * 1024) })) },
  // Code 0 says the pay went through; a trade number that cannot be one says nothing certain about which.
  { call: 'pay call', when: 'answered', fault: 'code 0 with a blank trade number, processed', status: 502, code: 'GAT_INVALID_RESPONSE', ambiguous: true, charged: true,
    setup: () => sandboxWith((s) => s.answerData({ ...pay(true), data: ' ' })) },
  // A well-formed answer says what happened: not ambiguous.
  { call: 'pay call', when: 'answered', fault: 'well-formed refusal (code 999912345)', status: 502, code: 999_912_345, ambiguous: false, charged: false, setup: () => sandboxWith((s) => s.refuse({ path: PAY_PATH, code: 999_912_345 })) },
  { call: 'pay call', when: 'answered', fault: `outer_trade_no used before (${OUTER_TRADE_NO_EXISTS_CODE})`, status: 409, code: OUTER_TRADE_NO_EXISTS_CODE, ambiguous: false, charged: false,
    setup: () => sandboxWith((s) => { s.sendNotification({ notifyUrl: 'http://127.0.0.1:9/unused', outerTradeNo: 'USED-BEFORE', totalAmount: '1.00' }) }) },
]

let seq = 0

describe('pay outcomes: every transport fault × call × moment through the pay route', function () {
  this.timeout(20_000)

  for (const c of CASES) {
    it(`${c.call}, ${c.when}: ${c.fault} → ${c.status} ${c.code}, ambiguous ${c.ambiguous}`, async () => {
      const target = await c.setup()
      try {
        const logger = recordingLogger()
        const app = express()
        app.use('/gat', guanaitong({
          ...APP, baseUrl: target.baseUrl, tokenCache: target.tokenCache, timeoutMs: TIMEOUT_MS, logger, onPaid: () => {},
          preparePayment: (_req, params) => ({ ...params, buyer_open_id: 'buyer-1', total_amount: '12.50' }),
        }))
        const outerTradeNo = c.code === OUTER_TRADE_NO_EXISTS_CODE ? 'USED-BEFORE' : `PO${Date.now() % 1e8}${++seq}`
        const res = await request(app).post('/gat/pay')
          .send({ outer_trade_no: outerTradeNo, reason: '午餐', asset_type: '1', asset_open_id: 'asset-1' })

        expect(res.status, JSON.stringify(res.body)).to.equal(c.status)
        expect(res.body.code).to.equal(c.code)
        expect(res.body.ambiguous).to.equal(c.ambiguous)
        expect(res.body.outer_trade_no).to.equal(outerTradeNo)
        if (c.status === 503) expect(res.body.msg).to.match(/nothing was charged/)
        if (c.ambiguous) expect(res.body.msg).to.not.match(/nothing was charged/)
        // Every failure is logged once, at error level except a reused order number.
        const failures = logger.lines.filter((l) => /pay answered/.test(l.message))
        expect(failures).to.have.length(1)
        expect(failures[0].level).to.equal(c.status === 409 ? 'warn' : 'error')
        // The moment is the one the row names: an HTTP status arrived only during (or with) the answer.
        const upstreamStatus = failures[0].context?.upstreamStatus
        if (c.call !== 'token cache') {
          if (c.when === 'before write' || c.when === 'after write') expect(upstreamStatus, 'no answer had begun').to.equal(0)
          else expect(upstreamStatus, 'the answer had begun').to.be.above(0)
        }

        const sandbox = target.sandbox
        if (c.charged === null) {
          expect(sandbox?.stats.payCalls ?? 0).to.equal(0)
        } else {
          expect(sandbox, 'a row with a charge column reaches a sandbox').to.not.equal(undefined)
          const made = sandbox!.getPayment(outerTradeNo)
          expect(made !== undefined && made.source === 'pay', 'a payment was made').to.equal(c.charged)
          if (c.call !== 'pay call') expect(sandbox!.stats.payCalls, 'no pay was sent').to.equal(0)
          else expect(sandbox!.stats.payCalls, 'the pay was sent exactly once, never re-sent').to.equal(1)
        }
      } finally {
        await target.cleanup()
      }
    })
  }

  it('docs/pay-outcomes.md states the answer table as src/core/pay/answers.ts has it', () => {
    const doc = readFileSync(new URL('../../docs/pay-outcomes.md', import.meta.url), 'utf8')
    for (const [reason, row] of Object.entries(PAY_ANSWERS)) {
      const line = doc.split('\n').find((l) => l.startsWith(`| \`${reason}\` |`))
      expect(line, reason).to.be.a('string')
      const [, status, , level, charged] = line!.split(' | ')
      if (reason !== 'BAD_REQUEST') expect(status, reason).to.equal(String(row.status))
      expect(level, reason).to.equal(row.level)
      expect(charged.startsWith(row.mayHaveCharged ? '**yes**' : 'no'), `${reason}: ${charged}`).to.equal(true)
    }
  })

  it('docs/pay-outcomes.md shows exactly the rows tested here', () => {
    const doc = readFileSync(new URL('../../docs/pay-outcomes.md', import.meta.url), 'utf8')
    const rows = doc.split('\n').filter((line) => /^\| (token cache|token call|pay call) \|/.test(line))
    const expected = CASES.map((c) => `| ${c.call} | ${c.when} | ${c.fault} | ${c.status} | \`${c.code}\` | ${c.ambiguous} | ${c.charged === null ? '–' : c.charged ? 'yes' : 'no'} |`)
    expect(rows).to.deep.equal(expected)
  })
})
