/**
 * Property tests of the notification route: what is signed is exactly what is checked, no body
 * can crash it or get anything but `success`/`fail`, and no interleaving of duplicates, handler
 * failures and retries runs a payment's handler to success twice or leaves it stuck.
 *
 * Runs are reproducible: on a failure fast-check prints the seed and the counterexample
 * (for the scheduler property, the order in which the scheduled steps ran).
 */
import { expect } from 'chai'
import fc from 'fast-check'
import { deflateSync, gzipSync } from 'node:zlib'
import express from 'express'
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { dedupeNotification } from '../../src/adapters/express/dedupe'
import { handleNotification } from '../../src/adapters/express/handle'
import { parseNotification } from '../../src/adapters/express/parse'
import { verifyNotification } from '../../src/adapters/express/verify'
import { resolveOptions } from '../../src/guanaitong'
import { canonicalString } from '../../src/kernel/signature'
import { MemoryStore } from '../../src/stores/memory'
import { signNotification } from '../../src/testing/sign-notification'
import type { Fields, NotifyStore, Payment } from '../../src/kernel/types'
import { DEDUPE_RULES, HANDLE_RULES, PARSE_RULES, pickOptions, VERIFY_RULES, type Rules } from '../../src/kernel/validate'
import { paidFields, recordingLogger, unusedClient } from '../helpers'
import { APP_ID, FORM, SECRET, listen, notifyApp, rawPost } from './support'

/** Fields of a notification; extra fields never take these names. */
const NOTIFICATION_KEYS = ['appid', 'outer_trade_no', 'buyer_open_id', 'total_amount', 'trade_no', 'attach', 'timestamp', 'sign']
const REQUIRED = new Set(['appid', 'outer_trade_no', 'total_amount', 'timestamp', 'sign'])
const RESERVED = new Set([...NOTIFICATION_KEYS, 'appsecret'])

/** Keys: a safe alphabet (no `[`, `]`, `&`, `=`), some non-ASCII. */
const KEY_CHARS = [...'abcdefghijklmnopqrstuvwxyz0123456789_.-', '中', 'é']
const keyChar = fc.constantFrom(...KEY_CHARS)
const keyArb = fc.string({ unit: keyChar, minLength: 1, maxLength: 8 }).filter((k) => !RESERVED.has(k))
/** One unit of a value: the characters form encoding and signing could trip on, or any code point. */
const valueUnit = fc.oneof(
  fc.constantFrom('&', '=', '+', '%', '%25', '%zz', '😀', '中', ' ', '\u3000', '\u00a0', '\t', '\r\n', '#', '[', ']', '\u0000'),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
)
const valueArb = fc.string({ unit: valueUnit, maxLength: 10 })
/** `&` and `=` make a notification unsignable (RESERVED_CHARACTER): a valid one never holds them. */
const hasReserved = (text: string) => /[&=]/.test(text)
const extrasArb = fc.dictionary(keyArb, valueArb.filter((v) => !hasReserved(v)), { maxKeys: 6, noNullPrototype: true })

/** True when the signer puts this value in the signed string (not empty, not blank). */
const isSigned = (value: string) => canonicalString({ k: value }, 's') !== 'appsecret=s'

/** One `k=v` pair, spaces as `+` (URLSearchParams, as browsers and most clients send) or as `%20`. */
function pair(key: string, value: string, plus: boolean): string {
  return plus ? new URLSearchParams([[key, value]]).toString() : `${encodeURIComponent(key)}=${encodeURIComponent(value)}`
}

/** The form body of `fields` in the order given by `seeds` (one random number per key; its parity picks the encoding). */
function shuffledBody(fields: Fields, seeds: number[]): string {
  const keys = Object.keys(fields)
  const order = keys.map((k, i) => ({ k, s: seeds[i % seeds.length] ?? 0 })).sort((a, b) => a.s - b.s || (a.k < b.k ? -1 : 1))
  return order.map(({ k, s }) => pair(k, fields[k], s % 2 === 0)).join('&')
}

function replaceCodePoint(text: string, pos: number, replacement: string): string {
  const points = [...text]
  const at = pos % points.length
  const next = replacement === points[at] ? (points[at] === 'z' ? 'y' : 'z') : replacement
  points[at] = next
  return points.join('')
}

type Mutation =
  | { kind: 'value' | 'key'; pick: number; pos: number; char: string; keyChar: string }
  | { kind: 'drop'; pick: number }
  | { kind: 'add'; key: string; value: string }

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constantFrom('value' as const, 'key' as const), pick: fc.nat(), pos: fc.nat(), char: valueUnit, keyChar }),
  fc.record({ kind: fc.constant('drop' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('add' as const), key: keyArb, value: valueArb.filter(isSigned) }),
)

interface Mutated {
  /** The fields to send. */
  changed: Fields
  /** A pair sent besides them (a renamed key, which may now repeat another). */
  extra?: readonly [string, string]
  /** The reason code the router must log. */
  reason: string
  what: string
}

/** Applies `m` to the signed `fields`: the changed notification and the reason the router must give. */
function mutate(fields: Fields, m: Mutation): Mutated {
  const signedKeys = Object.keys(fields).filter((k) => k !== 'sign' && isSigned(fields[k]))
  const changed: Fields = { ...fields }
  if (m.kind === 'add') {
    let key = m.key
    while (key in fields) key += '0'
    changed[key] = m.value
    return { changed, reason: hasReserved(m.value) ? 'RESERVED_CHARACTER' : 'BAD_SIGN', what: `added ${key}=${JSON.stringify(m.value)}` }
  }
  if (m.kind === 'drop') {
    const candidates = [...signedKeys, 'sign']
    const key = candidates[m.pick % candidates.length]
    delete changed[key]
    return { changed, reason: REQUIRED.has(key) ? 'MISSING_FIELD' : 'BAD_SIGN', what: `dropped ${key}` }
  }
  const key = signedKeys[m.pick % signedKeys.length]
  if (m.kind === 'value') {
    // One code point of the value; a single-char unit keeps surrogate pairs whole.
    const value = replaceCodePoint(fields[key], m.pos, [...m.char][0])
    changed[key] = value
    let reason = 'BAD_SIGN'
    if (hasReserved(value)) reason = 'RESERVED_CHARACTER'
    else if (REQUIRED.has(key) && !isSigned(value)) reason = 'MISSING_FIELD'
    else if (key === 'appid') reason = 'APPID_MISMATCH'
    else if (key === 'timestamp' && !/^[0-9]{1,10}$/.test(value)) reason = 'BAD_TIMESTAMP'
    return { changed, reason, what: `${key}: ${JSON.stringify(fields[key])} → ${JSON.stringify(value)}` }
  }
  const renamed = replaceCodePoint(key, m.pos, m.keyChar)
  delete changed[key]
  let reason = 'BAD_SIGN'
  if (renamed in fields) reason = 'DUPLICATE_KEY'
  else if (REQUIRED.has(key)) reason = 'MISSING_FIELD'
  return { changed, extra: [renamed, fields[key]], reason, what: `key ${key} → ${renamed}` }
}

/** The unhandled rejections seen while a describe block runs. */
function watchUnhandledRejections(): unknown[] {
  const seen: unknown[] = []
  const listener = (reason: unknown) => { seen.push(reason) }
  before(() => { process.on('unhandledRejection', listener) })
  after(() => { process.off('unhandledRejection', listener) })
  return seen
}

describe('properties of the notify route', function () {
  this.timeout(60_000)
  const unhandled = watchUnhandledRejections()
  afterEach(() => expect(unhandled, 'unhandled rejections').to.deep.equal([]))

  describe('signature covers exactly the signed fields (HTTP, express 5)', () => {
    const paid: Payment[] = []
    const ctx = notifyApp(express, { onPaid: (p) => { paid.push(p) } })
    let server: Awaited<ReturnType<typeof listen>>
    before(async () => { server = await listen(ctx.app) })
    after(() => server.close())
    const post = (body: string) => rawPost(server.port, '/gat/notify', { 'content-type': FORM }, body)

    it('any extra fields, in any order: valid → success once; one change to a signed field, key, or one field more or less → fail', async () => {
      await fc.assert(
        fc.asyncProperty(extrasArb, fc.array(fc.nat(), { minLength: 1, maxLength: 16 }), mutationArb, async (extras, seeds, m) => {
          paid.length = 0
          ctx.logger.lines.length = 0
          const fields = paidFields(extras)

          const ok = await post(shuffledBody(fields, seeds))
          expect(ok.text, 'valid notification').to.equal('success')
          expect(paid).to.have.length(1)
          expect({ ...paid[0].raw }).to.deep.equal(fields)

          const mutated = mutate(fields, m)
          let body = shuffledBody(mutated.changed, seeds)
          if (mutated.extra) {
            const extra = pair(mutated.extra[0], mutated.extra[1], true)
            body = seeds[0] % 2 ? `${extra}&${body}` : `${body}&${extra}`
          }
          ctx.logger.lines.length = 0
          const bad = await post(body)
          expect(bad.text, mutated.what).to.equal('fail')
          expect(bad.status, mutated.what).to.be.within(400, 499)
          expect(ctx.logger.reasons(), mutated.what).to.deep.equal([mutated.reason])
          expect(paid, mutated.what).to.have.length(1)
        }),
        { numRuns: 100 },
      )
    })
  })

  describe('any bytes, any content type (HTTP, express 5)', () => {
    const paid: Payment[] = []
    const ctx = notifyApp(express, { onPaid: (p) => { paid.push(p) } })
    let server: Awaited<ReturnType<typeof listen>>
    before(async () => { server = await listen(ctx.app) })
    after(() => server.close())

    const CONTENT_TYPES = [
      FORM, `${FORM}; charset=utf-8`, `${FORM}; charset=gbk`, `${FORM}; charset=gb18030`, 'application/json', 'text/plain',
      null, 'garbage', `${FORM}; charset=klingon`, ';;;charset==', `${FORM}; charset`,
    ]
    /** Content types under which the untouched notification must be accepted. */
    const ACCEPTS_UTF8 = new Set([FORM, `${FORM}; charset=utf-8`, `${FORM}; charset`])
    const ENCODINGS = ['identity', 'gzip', 'deflate', 'gzip-label-only', 'br'] as const

    const bodyArb = fc.oneof(
      fc.record({ kind: fc.constant('random' as const), bytes: fc.uint8Array({ maxLength: 300 }) }),
      fc.record({ kind: fc.constant('intact' as const) }),
      fc.record({
        kind: fc.constant('spliced' as const), at: fc.nat(), remove: fc.nat({ max: 4 }), insert: fc.uint8Array({ maxLength: 4 }),
      }),
      fc.record({
        kind: fc.constant('pieces' as const),
        pieces: fc.array(fc.constantFrom('&', '=', '%', '%2', '%E6', '%zz', '+', 'a', 'sign', 'appid', '[', ']', '__proto__', '\u00ff', '中', '%00'), { maxLength: 30 }),
      }),
    )

    it('answers exactly success or fail, never 5xx, and runs onPaid only for what was signed', async () => {
      await fc.assert(
        fc.asyncProperty(bodyArb, fc.constantFrom(...CONTENT_TYPES), fc.constantFrom(...ENCODINGS), async (shape, type, encoding) => {
          paid.length = 0
          ctx.logger.lines.length = 0
          const fields = paidFields()
          const valid = Buffer.from(new URLSearchParams(fields).toString())
          let plain: Buffer
          if (shape.kind === 'random') plain = Buffer.from(shape.bytes)
          else if (shape.kind === 'intact') plain = valid
          else if (shape.kind === 'pieces') plain = Buffer.from(shape.pieces.join(''), 'utf8')
          else {
            const at = shape.at % (valid.length + 1)
            plain = Buffer.concat([valid.subarray(0, at), Buffer.from(shape.insert), valid.subarray(at + shape.remove)])
          }
          const headers: Record<string, string> = {}
          if (type !== null) headers['content-type'] = type
          let sent = plain
          if (encoding === 'gzip') sent = gzipSync(plain)
          if (encoding === 'deflate') sent = deflateSync(plain)
          if (encoding !== 'identity') headers['content-encoding'] = encoding === 'gzip-label-only' ? 'gzip' : encoding

          const res = await rawPost(server.port, '/gat/notify', headers, sent)
          const label = `${shape.kind} as ${type} (${encoding}): ${JSON.stringify(plain.toString('latin1').slice(0, 120))}`
          expect(['success', 'fail'], label).to.include(res.text)
          expect(res.status, label).to.be.below(500)
          for (const line of ctx.logger.lines) expect(line.message, label).to.not.match(/\n\s+at /)
          if (res.text === 'success') expect(paid, label).to.have.length(1)
          for (const p of paid) {
            // Whatever reached onPaid is, field for field, what was signed.
            expect(canonicalString(p.raw, SECRET), label).to.equal(canonicalString(fields, SECRET))
          }
          const mustPass = plain.equals(valid) && type !== null && ACCEPTS_UTF8.has(type) &&
            (encoding === 'identity' || encoding === 'gzip' || encoding === 'deflate')
          if (mustPass) expect(res.text, label).to.equal('success')
        }),
        { numRuns: 400 },
      )
    })
  })

  describe('interleavings of duplicates, handler failures and retries (fast-check scheduler)', () => {
    type Plan = 'ok' | 'throw-early' | 'throw-late'
    interface Answer { status: number; text: string }

    /** Runs the four middleware the router mounts, on a request whose body another parser already read. */
    function deliver(chain: RequestHandler[], body: string, plan: Plan): Promise<Answer> {
      return new Promise((resolve, reject) => {
        const req = { method: 'POST', headers: { 'content-type': FORM }, body: Buffer.from(body), _body: true, readableEnded: true, plan }
        const res = {
          locals: {},
          statusCode: 200,
          headersSent: false,
          setHeader() {},
          end(text: string) {
            res.headersSent = true
            resolve({ status: res.statusCode, text })
          },
        }
        let i = 0
        const next: NextFunction = (err?: unknown) => {
          if (err) return reject(err)
          const middleware = chain[i++]
          if (!middleware) return reject(new Error('the chain fell through without answering'))
          void middleware(req as unknown as Request, res as unknown as Response, next)
        }
        next()
      })
    }

    const planArb = fc.record({
      payments: fc.integer({ min: 1, max: 3 }),
      deliveries: fc.array(
        fc.record({
          payment: fc.nat({ max: 2 }),
          handler: fc.constantFrom<Plan>('ok', 'throw-early', 'throw-late'),
          /** Arrives at a point the scheduler picks, rather than at once. */
          late: fc.boolean(),
        }),
        { minLength: 1, maxLength: 8 },
      ),
    })

    it('onPaid never succeeds twice for a payment, never overlaps itself, and after a clean retry every payment is done', async () => {
      await fc.assert(
        fc.asyncProperty(fc.scheduler(), planArb, async (s, plan) => {
          const inner = new MemoryStore()
          /** Each store call runs, atomically, at a point the scheduler picks; its answer arrives at another. */
          const step = <T>(label: string, op: () => Promise<T>) =>
            s.schedule(Promise.resolve(), `${label} runs`).then(op).then((r) => s.schedule(Promise.resolve(r), `${label} answers`))
          const store: NotifyStore = {
            leaseMs: inner.leaseMs,
            retentionMs: inner.retentionMs,
            claim: (key) => step(`claim ${key}`, () => inner.claim(key)),
            complete: (key, owner) => step(`complete ${key}`, () => inner.complete(key, owner)),
            release: (key, owner) => step(`release ${key}`, () => inner.release(key, owner)),
          }

          let clock = 0
          const succeededAt = new Map<string, number[]>()
          const running = new Map<string, number>()
          let overlap = false
          const logger = recordingLogger()
          const options = resolveOptions({
            appId: APP_ID, appSecret: SECRET, client: unusedClient, logger, payPath: false, store,
            onPaid: async (p, req) => {
              const key = p.outerTradeNo
              const how = (req as unknown as { plan: Plan }).plan
              running.set(key, (running.get(key) ?? 0) + 1)
              if (running.get(key)! > 1) overlap = true
              try {
                await s.schedule(Promise.resolve(), `onPaid ${key} (${how}) step 1`)
                if (how === 'throw-early') throw new Error('db down')
                await s.schedule(Promise.resolve(), `onPaid ${key} (${how}) step 2`)
                if (how === 'throw-late') throw new Error('db down')
                succeededAt.set(key, [...(succeededAt.get(key) ?? []), clock++])
              } finally {
                running.set(key, running.get(key)! - 1)
              }
            },
          })
          const only = (rules: Rules) => pickOptions(options, rules) as never
          const chain = [
            parseNotification(only(PARSE_RULES)), verifyNotification(only(VERIFY_RULES)),
            dedupeNotification(only(DEDUPE_RULES)), handleNotification(only(HANDLE_RULES)),
          ]

          const payments = Array.from({ length: plan.payments }, () => paidFields())
          /** Delivery `n` of a payment: Guanaitong re-signs each attempt with a new timestamp. */
          const bodyOf = (p: number, n: number) => new URLSearchParams(signNotification({
            ...payments[p], timestamp: String(Number(payments[p].timestamp) + n), sign: undefined,
          }, SECRET)).toString()

          const answers: Array<Answer & { key: string; at: number }> = []
          const runs = plan.deliveries.map((d, n) => {
            const p = d.payment % plan.payments
            const arrives = d.late ? s.schedule(Promise.resolve(), `delivery ${n} arrives`) : Promise.resolve()
            return arrives
              .then(() => deliver(chain, bodyOf(p, n + 1), d.handler))
              .then((a) => { answers.push({ ...a, key: payments[p].outer_trade_no, at: clock++ }) })
          })
          await s.waitFor(Promise.all(runs))

          for (const a of answers) {
            if (a.text === 'success') {
              expect(a.status).to.equal(200)
              const first = succeededAt.get(a.key)?.[0]
              expect(first, `success answered for ${a.key} before onPaid succeeded`).to.be.a('number')
              expect(first!).to.be.below(a.at)
            } else {
              expect(a.text).to.equal('fail')
              expect([409, 500]).to.include(a.status)
            }
          }
          for (const reason of logger.reasons()) expect(['IN_PROGRESS', 'HANDLER_FAILED']).to.include(reason)
          expect(overlap, 'onPaid ran twice at once for one payment').to.equal(false)

          for (let p = 0; p < plan.payments; p++) {
            const final = await s.waitFor(deliver(chain, bodyOf(p, 100), 'ok'))
            expect(final.text, `clean retry of payment ${p}`).to.equal('success')
          }
          for (const payment of payments) {
            expect(succeededAt.get(payment.outer_trade_no) ?? [], `onPaid successes for ${payment.outer_trade_no}`).to.have.length(1)
          }
        }),
        { numRuns: 300 },
      )
    })
  })
})
