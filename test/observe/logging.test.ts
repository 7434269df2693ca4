/**
 * The Logger convention: pino (real, writing JSON to a stream) gets `(fields, message)` through
 * `child({ name: 'express-guanaitong' })`; console keeps `(message, fields)`; no line carries the secret.
 */
import { expect } from 'chai'
import { Writable } from 'node:stream'
import pino from 'pino'
import request from 'supertest'
import { createClient } from '../../src/client'
import { guanaitong } from '../../src/adapters/express/router'
import { createSandbox } from '../../src/testing/sandbox'
import type { GuanaitongOptions, Logger } from '../../src/kernel/types'
import { APP_ID, EXPRESS_VERSIONS, formBody, paidFields, unusedClient } from '../helpers'

const express = EXPRESS_VERSIONS[0].express
/** Distinctive, so a search of the output cannot miss it or match something else. */
const SECRET = 'Sekrit-7f3a9c-never-logged'

/** A real pino logger at debug level whose JSON lines are kept, parsed. */
function pinoLines(level = 'debug') {
  const lines: Record<string, unknown>[] = []
  let text = ''
  const stream = new Writable({
    write(chunk, _encoding, done) {
      text += chunk.toString()
      for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(JSON.parse(line))
      done()
    },
  })
  const logger = pino({ level, name: 'shop' }, stream)
  return { logger, lines, text: () => text }
}

function notifyApp(logger: Logger, options: Partial<GuanaitongOptions> = {}) {
  const app = express()
  app.use('/gat', guanaitong({ appId: APP_ID, appSecret: SECRET, client: unusedClient, payPath: false, logger, onPaid: () => {}, ...options }))
  return app
}

const post = (app: ReturnType<typeof notifyApp>, body: string) => request(app).post('/gat/notify').type('form').send(body)

describe('observability: logs that pino understands', () => {
  it('a rejection: one JSON line with name, level, reason and outerTradeNo as fields, the message without the prefix', async () => {
    const { logger, lines } = pinoLines()
    const fields = paidFields({}, SECRET)
    await post(notifyApp(logger), formBody({ ...fields, sign: '0'.repeat(40) })).expect(401, 'fail')
    expect(lines).to.have.length(1)
    expect(lines[0]).to.include({ level: 40, name: 'express-guanaitong', reason: 'BAD_SIGN', outerTradeNo: fields.outer_trade_no })
    expect(lines[0].msg).to.match(/^notification rejected \(BAD_SIGN\)/)
  })

  it('every line about a notification carries outerTradeNo and reason: handler failure, duplicate, missing onPayFailed', async () => {
    const { logger, lines } = pinoLines()
    let calls = 0
    const app = notifyApp(logger, { onPaid: () => { if (++calls === 1) throw new Error('db down') } })
    const paid = paidFields({}, SECRET)
    await post(app, formBody(paid)).expect(500, 'fail')
    await post(app, formBody(paidFields({ outer_trade_no: paid.outer_trade_no, trade_no: paid.trade_no }, SECRET))).expect(200, 'success')
    await post(app, formBody(paidFields({ outer_trade_no: paid.outer_trade_no, trade_no: paid.trade_no }, SECRET))).expect(200, 'success')
    const failed = paidFields({ trade_no: '' }, SECRET)
    await post(app, formBody(failed)).expect(200, 'success')

    expect(lines.map((l) => [l.level, l.reason, l.outerTradeNo])).to.deep.equal([
      [50, 'HANDLER_FAILED', paid.outer_trade_no],
      [20, 'DUPLICATE', paid.outer_trade_no],
      [40, 'PAY_FAILED_UNHANDLED', failed.outer_trade_no],
    ])
    expect(lines.every((l) => l.name === 'express-guanaitong')).to.equal(true)
  })

  it('honours the logger\'s level: at info, acknowledged duplicates (debug) are not written', async () => {
    const { logger, lines } = pinoLines('info')
    const app = notifyApp(logger)
    const paid = paidFields({}, SECRET)
    await post(app, formBody(paid)).expect('success')
    await post(app, formBody(paidFields({ outer_trade_no: paid.outer_trade_no, trade_no: paid.trade_no }, SECRET))).expect('success')
    expect(lines).to.deep.equal([])
  })

  it('never writes the secret: debug sign dumps, handler and store failures, API failures, token refreshes', async () => {
    const { logger, text, lines } = pinoLines()
    const app = notifyApp(logger, { debug: true, onPaid: () => { throw new Error('db down') } })
    await post(app, formBody({ ...paidFields({}, SECRET), sign: '0'.repeat(40) })).expect('fail')
    await post(app, formBody(paidFields({}, SECRET))).expect('fail')
    const broken = notifyApp(logger, { store: { leaseMs: 1000, retentionMs: 1000, claim: async () => { throw new Error(`cannot reach redis`) }, complete: async () => true, release: async () => true } })
    await post(broken, formBody(paidFields({}, SECRET))).expect('fail')

    const sandbox = createSandbox({ appId: APP_ID, appSecret: SECRET })
    await sandbox.start()
    try {
      const client = createClient({ appId: APP_ID, appSecret: SECRET, baseUrl: sandbox.url, logger, timeoutMs: 2000 })
      await client.getToken()
      sandbox.expireTokens()
      await client.request('/platformDealer/employee/pay', {}).catch(() => {})
      sandbox.respond5xx({ path: '/token/create', times: 5 })
      sandbox.expireTokens()
      await client.request('/platformDealer/employee/pay', {}).catch(() => {})
    } finally {
      await sandbox.close()
    }
    const reasons = lines.map((l) => l.reason)
    expect(reasons).to.include.members(['BAD_SIGN', 'HANDLER_FAILED', 'STORE_FAILED'])
    // The debug sign dump is there, masked.
    expect(lines.find((l) => l.reason === 'BAD_SIGN')?.canonical).to.be.a('string').and.contain('appsecret=***')
    expect(lines.some((l) => /access token rejected/.test(String(l.msg)))).to.equal(true)
    expect(text()).to.not.contain(SECRET)
  })

  it('console keeps message-first lines: (message, fields)', async () => {
    const seen: unknown[][] = []
    const original = console.warn
    console.warn = (...args: unknown[]) => { seen.push(args) }
    try {
      const fields = paidFields({}, SECRET)
      await post(notifyApp(console), formBody({ ...fields, sign: '0'.repeat(40) })).expect('fail')
      expect(seen).to.have.length(1)
      expect(seen[0][0]).to.be.a('string').and.match(/^\[express-guanaitong\] notification rejected \(BAD_SIGN\)/)
      expect(seen[0][1]).to.include({ reason: 'BAD_SIGN', outerTradeNo: fields.outer_trade_no })
    } finally {
      console.warn = original
    }
  })

  it('a logger whose child() refuses the name (bunyan) is used as it is, its messages keep the prefix', async () => {
    const lines: { fields: Record<string, unknown>; message: string }[] = []
    const logger: Logger = {
      warn: (fields, message) => { lines.push({ fields, message }) },
      error: (fields, message) => { lines.push({ fields, message }) },
      child: () => { throw new TypeError('invalid options.name: child cannot set logger name') },
    }
    await post(notifyApp(logger), formBody({ ...paidFields({}, SECRET), sign: '0'.repeat(40) })).expect('fail')
    expect(lines).to.have.length(1)
    expect(lines[0].message).to.match(/^\[express-guanaitong\] notification rejected/)
    expect(lines[0].fields.reason).to.equal('BAD_SIGN')
  })
})
