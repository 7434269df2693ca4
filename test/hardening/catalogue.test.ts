/**
 * A catalogue of hostile and broken notifications, one case each, with the exact answer and the
 * logged reason code in the test name. Every case goes over real HTTP to the mounted router.
 */
import { expect } from 'chai'
import fc from 'fast-check'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { deflateSync, gzipSync } from 'node:zlib'
import iconv from 'iconv-lite'
import type { Server } from 'node:http'
import request from 'supertest'
import { createClient } from '../../src/client'
import { DEFAULTS } from '../../src/kernel/defaults'
import { ConfigError, GatError, ParamError } from '../../src/kernel/errors'
import { MemoryStore } from '../../src/stores/memory'
import { createSandbox, PAY_PATH, SANDBOX_CODES, type Sandbox } from '../../src/testing/sandbox'
import { quietLogger } from '../../src/testing/quiet-logger'
import { guanaitong } from '../../src/adapters/express/router'
import { canonicalString, sign, SIGN_ALGORITHMS } from '../../src/kernel/signature'
import { signNotification } from '../../src/testing/sign-notification'
import type { Fields, GuanaitongOptions, Payment } from '../../src/kernel/types'
import { EXPRESS_VERSIONS, flipHexDigit, formBody, paidFields, recordingLogger, routerBehindSandbox, sleep, unusedClient, waitFor } from '../helpers'
import { APP_ID, FORM, NOW_MS, NOW_SEC, SECRET, listen, notifyApp, pairsBody, rawPost, rawSocket } from './support'

interface Outcome {
  status: number
  text: string
  paid: Payment[]
  reasons: unknown[]
}

for (const { name, express } of EXPRESS_VERSIONS) {
  describe(`hostile and broken notifications (${name})`, () => {
    /** One notification to a fresh router; the answer, the payments onPaid saw and the logged reasons. */
    async function send(
      body: string | Buffer,
      { type = FORM, headers = {}, options = {} }: { type?: string | null; headers?: Record<string, string>; options?: Partial<GuanaitongOptions> } = {},
    ): Promise<Outcome> {
      const { app, paid, logger } = notifyApp(express, options)
      const { port, close } = await listen(app)
      try {
        const all = type === null ? headers : { 'content-type': type, ...headers }
        const res = await rawPost(port, '/gat/notify', all, body)
        return { status: res.status, text: res.text, paid, reasons: logger.reasons() }
      } finally {
        await close()
      }
    }

    function expectFail(out: Outcome, reason: string, status?: number): void {
      expect(out.text).to.equal('fail')
      expect(out.reasons).to.deep.equal([reason])
      expect(out.paid).to.have.length(0)
      if (status !== undefined) expect(out.status).to.equal(status)
      else expect(out.status).to.be.within(400, 499)
    }

    function expectSuccess(out: Outcome): void {
      expect(out.text).to.equal('success')
      expect(out.status).to.equal(200)
      expect(out.reasons).to.deep.equal([])
      expect(out.paid).to.have.length(1)
    }

    /** Re-signs `fields` after applying `changes`, keeping the given timestamp. */
    const resign = (fields: Fields, changes: Record<string, string | undefined>) =>
      signNotification({ ...fields, ...changes, sign: undefined }, SECRET)

    describe('signature', () => {
      it('uppercase signature → fail (BAD_SIGN)', async () => {
        const f = paidFields()
        const upper = f.sign.toUpperCase()
        expect(upper).to.not.equal(f.sign)
        expectFail(await send(formBody({ ...f, sign: upper })), 'BAD_SIGN', 401)
      })

      it('truncated signature (39 hex digits) → fail (BAD_SIGN)', async () => {
        const f = paidFields()
        expectFail(await send(formBody({ ...f, sign: f.sign.slice(0, 39) })), 'BAD_SIGN', 401)
      })

      it('signature one digit too long (41 hex digits) → fail (BAD_SIGN)', async () => {
        const f = paidFields()
        expectFail(await send(formBody({ ...f, sign: `${f.sign}0` })), 'BAD_SIGN', 401)
      })

      it('non-hex signature of the right length → fail (BAD_SIGN)', async () => {
        const f = paidFields()
        expectFail(await send(formBody({ ...f, sign: `${f.sign.slice(0, 39)}g` })), 'BAD_SIGN', 401)
      })

      it('signature with a blank around it → fail (BAD_SIGN)', async () => {
        const f = paidFields()
        expectFail(await send(formBody({ ...f, sign: ` ${f.sign}` })), 'BAD_SIGN', 401)
      })

      it('empty signature → fail (MISSING_FIELD)', async () => {
        expectFail(await send(formBody({ ...paidFields(), sign: '' })), 'MISSING_FIELD', 400)
      })

      it('no signature at all → fail (MISSING_FIELD)', async () => {
        const { sign: _sign, ...unsigned } = paidFields()
        expectFail(await send(formBody(unsigned)), 'MISSING_FIELD', 400)
      })

      it('signature sent twice, same value → fail (DUPLICATE_KEY)', async () => {
        const f = paidFields()
        expectFail(await send(`${formBody(f)}&sign=${f.sign}`), 'DUPLICATE_KEY', 400)
      })

      it('a second signature as sign[] → fail (NESTED_KEY)', async () => {
        const f = paidFields()
        expectFail(await send(`${formBody(f)}&sign%5B%5D=${f.sign}`), 'NESTED_KEY', 400)
      })

      it('a body carrying its own appsecret, signed with it → fail (RESERVED_NAME): the configured secret is always the one used', async () => {
        const { sign: _sign, ...rest } = paidFields()
        const forged = { ...rest, appsecret: 'guess' }
        const signature = createHash('sha1').update(canonicalString(forged, 'guess'), 'utf8').digest('hex')
        expectFail(await send(formBody({ ...forged, sign: signature })), 'RESERVED_NAME', 400)
      })

      it('a genuine notification with an appsecret field added (the signer skips that name, so the sign still matches) → fail (RESERVED_NAME)', async () => {
        const f = paidFields()
        expectFail(await send(formBody({ ...f, appsecret: 'anything' })), 'RESERVED_NAME', 400)
      })

      describe('one hex digit wrong, right length and alphabet (one router for all requests)', () => {
        let router: ReturnType<typeof notifyApp>
        let server: Awaited<ReturnType<typeof listen>>
        before(async () => {
          router = notifyApp(express)
          server = await listen(router.app)
        })
        after(() => server.close())

        /** Posts `fields` signed with `algorithm`, the signature passed through `tamper`; the answer and what it changed. */
        async function post(algorithm: (typeof SIGN_ALGORITHMS)[number], tamper: (sig: string) => string) {
          const { sign: _sign, ...rest } = paidFields()
          const good = sign(rest, SECRET, algorithm)
          const signature = tamper(good)
          const paidBefore = router.paid.length
          const reasonsBefore = router.logger.reasons().length
          const res = await rawPost(server.port, '/gat/notify', { 'content-type': FORM }, formBody({ ...rest, sign: signature }))
          return {
            res, good, signature,
            paid: router.paid.length - paidBefore,
            reasons: router.logger.reasons().slice(reasonsBefore),
          }
        }

        for (const algorithm of SIGN_ALGORITHMS) {
          it(`${algorithm}: the correct signature → success; its last digit changed → fail (BAD_SIGN)`, async () => {
            const ok = await post(algorithm, (sig) => sig)
            expect(ok.res.text).to.equal('success')
            expect(ok.paid).to.equal(1)
            const bad = await post(algorithm, (sig) => flipHexDigit(sig, sig.length - 1))
            expect(bad.signature).to.have.length(bad.good.length).and.not.equal(bad.good)
            expect(bad.res).to.include({ status: 401, text: 'fail' })
            expect(bad.reasons).to.deep.equal(['BAD_SIGN'])
            expect(bad.paid).to.equal(0)
          })
        }

        it('any position, any other digit, any algorithm → fail (BAD_SIGN) (property)', async () => {
          await fc.assert(fc.asyncProperty(
            fc.constantFrom(...SIGN_ALGORITHMS),
            fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
            fc.integer({ min: 1, max: 15 }),
            async (algorithm, where, delta) => {
              const out = await post(algorithm, (sig) => flipHexDigit(sig, Math.floor(where * sig.length), delta))
              return out.res.status === 401 && out.res.text === 'fail' && out.paid === 0 &&
                out.reasons.length === 1 && out.reasons[0] === 'BAD_SIGN'
            },
          ), { numRuns: 60 })
        })
      })

      it('SHA-256 signature of the same fields (64 hex digits) → success', async () => {
        const { sign: _sign, ...rest } = paidFields()
        const sha256 = createHash('sha256').update(canonicalString(rest, SECRET), 'utf8').digest('hex')
        expectSuccess(await send(formBody({ ...rest, sign: sha256 })))
      })

      describe('the algorithm: signType signs requests, notifySignTypes pins notifications (issue 21, item 7)', () => {
        const signedWith = (algorithm: (typeof SIGN_ALGORITHMS)[number]) => {
          const { sign: _sign, ...rest } = paidFields()
          return formBody({ ...rest, sign: sign(rest, SECRET, algorithm) })
        }

        it('signType sha256 without notifySignTypes: a sha1-signed notification → success (any of the three is accepted, as documented)', async () => {
          expectSuccess(await send(signedWith('sha1'), { options: { client: undefined, signType: 'sha256' } }))
        })

        it('notifySignTypes [sha256]: a sha1-signed notification with a correct signature → fail (BAD_SIGN), the message naming the algorithm', async () => {
          const { app, paid, logger } = notifyApp(express, { notifySignTypes: ['sha256'] })
          const { port, close } = await listen(app)
          try {
            const res = await rawPost(port, '/gat/notify', { 'content-type': FORM }, signedWith('sha1'))
            expect(res).to.include({ status: 401, text: 'fail' })
            expect(logger.reasons()).to.deep.equal(['BAD_SIGN'])
            expect(logger.lines[0].message).to.contain('signature is sha1').and.contain('accepts only sha256')
            expect(paid).to.have.length(0)
          } finally {
            await close()
          }
        })

        it('notifySignTypes [sha256]: a sha256-signed notification → success; a sha512-signed one → fail (BAD_SIGN)', async () => {
          const options = { notifySignTypes: ['sha256'] as const }
          expectSuccess(await send(signedWith('sha256'), { options }))
          expectFail(await send(signedWith('sha512'), { options }), 'BAD_SIGN', 401)
        })

        it('notifySignTypes [] or an unknown name → ConfigError when the router is built', () => {
          for (const notifySignTypes of [[], ['md5']]) {
            expect(() => notifyApp(express, { notifySignTypes: notifySignTypes as never })).to.throw(ConfigError, /notifySignTypes/)
          }
        })
      })
    })

    describe('secret', () => {
      for (const [what, secret] of [
        ['a trailing newline', `${SECRET}\n`],
        ['a leading space', ` ${SECRET}`],
        ['a trailing newline in the second secret of a rotation', [SECRET, 'old\n']],
      ] as const) {
        it(`secret with ${what} → ConfigError when the router is built`, () => {
          expect(() => guanaitong({ appId: APP_ID, appSecret: secret, client: unusedClient, onPaid: () => {} }))
            .to.throw(ConfigError, /whitespace/)
        })
      }
    })

    describe('timestamp (clock fixed with `now`)', () => {
      const options = { now: () => NOW_MS }

      it('timestamp in milliseconds → fail (BAD_TIMESTAMP)', async () => {
        expectFail(await send(formBody(paidFields({ timestamp: String(NOW_MS) })), { options }), 'BAD_TIMESTAMP', 400)
      })

      it('timestamp with letters → fail (BAD_TIMESTAMP)', async () => {
        expectFail(await send(formBody(paidFields({ timestamp: '17000000a0' })), { options }), 'BAD_TIMESTAMP', 400)
      })

      it('timestamp with a fraction → fail (BAD_TIMESTAMP)', async () => {
        expectFail(await send(formBody(paidFields({ timestamp: `${NOW_SEC}.5` })), { options }), 'BAD_TIMESTAMP', 400)
      })

      it('timestamp with a leading plus (a space once decoded) → fail (BAD_TIMESTAMP)', async () => {
        const f = paidFields({ timestamp: String(NOW_SEC) })
        const body = formBody(f).replace(`timestamp=${NOW_SEC}`, `timestamp=+${NOW_SEC}`)
        expectFail(await send(body, { options }), 'BAD_TIMESTAMP', 400)
      })

      it('timestamp missing → fail (MISSING_FIELD)', async () => {
        const f = paidFields({ timestamp: String(NOW_SEC) })
        const { timestamp: _t, ...rest } = f
        expectFail(await send(formBody(signNotification({ ...rest, timestamp: '' }, SECRET)), { options }), 'MISSING_FIELD', 400)
      })

      it('timestamp exactly 300 s old → success', async () => {
        expectSuccess(await send(formBody(paidFields({ timestamp: String(NOW_SEC - 300) })), { options }))
      })

      it('timestamp exactly 300 s ahead → success', async () => {
        expectSuccess(await send(formBody(paidFields({ timestamp: String(NOW_SEC + 300) })), { options }))
      })

      it('timestamp 301 s old → fail (STALE_TIMESTAMP)', async () => {
        expectFail(await send(formBody(paidFields({ timestamp: String(NOW_SEC - 301) })), { options }), 'STALE_TIMESTAMP', 401)
      })

      it('timestamp 301 s ahead → fail (STALE_TIMESTAMP)', async () => {
        expectFail(await send(formBody(paidFields({ timestamp: String(NOW_SEC + 301) })), { options }), 'STALE_TIMESTAMP', 401)
      })

      it('a clock 999 ms into the second still counts whole seconds: +300 s → success', async () => {
        const out = await send(formBody(paidFields({ timestamp: String(NOW_SEC + 300) })), { options: { now: () => NOW_MS + 999 } })
        expectSuccess(out)
      })
    })

    describe('appid', () => {
      it('appid missing → fail (MISSING_FIELD)', async () => {
        expectFail(await send(formBody(paidFields({ appid: undefined }))), 'MISSING_FIELD', 400)
      })

      it('another appid, validly signed → fail (APPID_MISMATCH)', async () => {
        expectFail(await send(formBody(paidFields({ appid: '20110699' }))), 'APPID_MISMATCH', 403)
      })

      it('appid with a trailing space → fail (APPID_MISMATCH)', async () => {
        expectFail(await send(formBody(paidFields({ appid: `${APP_ID} ` }))), 'APPID_MISMATCH', 403)
      })
    })

    describe('total_amount (validly signed)', () => {
      for (const amount of ['1e2', '01.00', '1.000', '-1', '0.00', '100000000.00', '1,00', ' 1.00', '１.00', '0x10']) {
        it(`total_amount ${JSON.stringify(amount)} → fail (BAD_AMOUNT)`, async () => {
          expectFail(await send(formBody(paidFields({ total_amount: amount }))), 'BAD_AMOUNT', 400)
        })
      }

      it('total_amount "" → fail (MISSING_FIELD)', async () => {
        expectFail(await send(formBody(paidFields({ total_amount: '' }))), 'MISSING_FIELD', 400)
      })

      for (const [amount, fen] of [['0.01', 1], ['1', 100], ['1.5', 150], ['99999999.99', 9_999_999_999]] as const) {
        it(`total_amount ${JSON.stringify(amount)} → success (${fen} fen)`, async () => {
          const out = await send(formBody(paidFields({ total_amount: amount })))
          expectSuccess(out)
          expect(out.paid[0].totalFen).to.equal(fen)
        })
      }
    })

    describe('keys', () => {
      it('duplicate key with the same value → fail (DUPLICATE_KEY)', async () => {
        expectFail(await send(`${formBody(paidFields())}&appid=${APP_ID}`), 'DUPLICATE_KEY', 400)
      })

      it('duplicate key spelt once with a percent-escape (app%69d) → fail (DUPLICATE_KEY)', async () => {
        expectFail(await send(`app%69d=${APP_ID}&${formBody(paidFields())}`), 'DUPLICATE_KEY', 400)
      })

      it('duplicate empty key (attach= twice) → fail (DUPLICATE_KEY)', async () => {
        expectFail(await send(`${formBody(paidFields({ attach: '' }))}&attach=`), 'DUPLICATE_KEY', 400)
      })

      it('__proto__ key, signed → success, kept as a plain field, no prototype pollution', async () => {
        // Built on a prototype-less map: on a plain object, `__proto__` would not become a key.
        const f: Fields = Object.assign(Object.create(null), paidFields())
        delete f.sign
        f.__proto__ = 'polluted'
        f.sign = sign(f, SECRET)
        const body = pairsBody(Object.entries(f))
        expect(body).to.contain('__proto__=polluted')
        const out = await send(body)
        expectSuccess(out)
        expect(Object.prototype.hasOwnProperty.call(out.paid[0].raw, '__proto__')).to.equal(true)
        expect(out.paid[0].raw.__proto__).to.equal('polluted')
        expect(({} as Record<string, unknown>).polluted).to.equal(undefined)
      })

      it('__proto__ key, not signed → fail (BAD_SIGN)', async () => {
        expectFail(await send(`__proto__=x&${formBody(paidFields())}`), 'BAD_SIGN', 401)
      })

      it('__proto__[admin] key → fail (NESTED_KEY)', async () => {
        expectFail(await send(`${formBody(paidFields())}&__proto__%5Badmin%5D=1`), 'NESTED_KEY', 400)
        expect(({} as Record<string, unknown>).admin).to.equal(undefined)
      })

      it('constructor and hasOwnProperty keys, signed → success', async () => {
        const f = paidFields({ constructor: 'c', hasOwnProperty: 'h' })
        const out = await send(pairsBody(Object.entries(f)))
        expectSuccess(out)
        expect(out.paid[0].raw.constructor).to.equal('c')
        expect(out.paid[0].raw.hasOwnProperty).to.equal('h')
      })

      it('constructor key, not signed → fail (BAD_SIGN)', async () => {
        expectFail(await send(`${formBody(paidFields())}&constructor=x`), 'BAD_SIGN', 401)
      })

      it('1 001 parameters → fail (TOO_MANY_PARAMETERS)', async () => {
        const f = paidFields()
        const extra = Array.from({ length: 1001 - Object.keys(f).length }, (_, i) => `p${i}=1`).join('&')
        const body = `${formBody(f)}&${extra}`
        expect(body.split('&')).to.have.length(1001)
        expectFail(await send(body), 'TOO_MANY_PARAMETERS', 413)
      })

      it('exactly 100 parameters, all signed → success (the default parameterLimit is inclusive)', async () => {
        const base = paidFields()
        const extras: Record<string, string> = {}
        for (let i = 0; Object.keys(base).length + i < 100; i++) extras[`p${i}`] = String(i)
        const f = resign(base, extras)
        expect(Object.keys(f)).to.have.length(100)
        expectSuccess(await send(formBody(f)))
      })

      it('101 parameters, all signed → fail (TOO_MANY_PARAMETERS)', async () => {
        const base = paidFields()
        const extras: Record<string, string> = {}
        for (let i = 0; Object.keys(base).length + i < 101; i++) extras[`p${i}`] = String(i)
        expectFail(await send(formBody(resign(base, extras))), 'TOO_MANY_PARAMETERS', 413)
      })
    })

    describe('re-split forgery: & and = (issue 9)', () => {
      it('& in a signed attach → fail (RESERVED_CHARACTER)', async () => {
        expectFail(await send(formBody(paidFields({ attach: 'x&y' }))), 'RESERVED_CHARACTER', 400)
      })

      it('= in a signed attach → fail (RESERVED_CHARACTER)', async () => {
        expectFail(await send(formBody(paidFields({ attach: 'k=v' }))), 'RESERVED_CHARACTER', 400)
      })

      it('& in a signed key (a%26b) → fail (RESERVED_CHARACTER)', async () => {
        expectFail(await send(pairsBody(Object.entries(paidFields({ 'a&b': '1' })))), 'RESERVED_CHARACTER', 400)
      })

      it('= in a signed key (a%3Db) → fail (RESERVED_CHARACTER)', async () => {
        expectFail(await send(pairsBody(Object.entries(paidFields({ 'a=b': '1' })))), 'RESERVED_CHARACTER', 400)
      })

      it('& in trade_no with a wrong sign → fail (RESERVED_CHARACTER), decided before the signature', async () => {
        const f = paidFields()
        expectFail(await send(formBody({ ...f, trade_no: `${f.trade_no}&x=1`, sign: 'f'.repeat(40) })), 'RESERVED_CHARACTER', 400)
      })

      it('the review\'s re-split of a signed notification (VICTIM, 8888.00, the rest in trade_no, original sign) → fail (RESERVED_CHARACTER)', async () => {
        const future = String(Math.floor(Date.now() / 1000) + 240)
        const carrier = paidFields({ total_amount: '0.01', attach: `x&outer_trade_no=VICTIM&timestamp=${future}&total_amount=8888.00&trade_no=1` })
        const forged: Fields = {
          appid: carrier.appid, attach: 'x', outer_trade_no: 'VICTIM', timestamp: future, total_amount: '8888.00',
          trade_no: `1&buyer_open_id=${carrier.buyer_open_id}&outer_trade_no=${carrier.outer_trade_no}` +
            `&timestamp=${carrier.timestamp}&total_amount=0.01&trade_no=${carrier.trade_no}`,
          sign: carrier.sign,
        }
        expect(canonicalString(forged, SECRET)).to.equal(canonicalString(carrier, SECRET))
        expectFail(await send(formBody(forged)), 'RESERVED_CHARACTER', 400)
      })

      it('attach percent-encoded as this client sends it (x%26y%3Dz%25) → success, payment.attach decoded to x&y=z%', async () => {
        const out = await send(formBody(paidFields({ attach: 'x%26y%3Dz%25' })))
        expectSuccess(out)
        expect(out.paid[0].attach).to.equal('x&y=z%')
        expect(out.paid[0].raw.attach).to.equal('x%26y%3Dz%25')
      })

      it('attach of a pay sent by 0.1, urlencoded by the shop itself (100%25 for "100%") → payment.attach decoded once (100%), raw.attach as it arrived, as docs/security.md "Upgrading from 0.1" says (issue 21, item 8)', async () => {
        const out = await send(formBody(paidFields({ attach: '100%25' })))
        expectSuccess(out)
        expect(out.paid[0].attach).to.equal('100%')
        expect(out.paid[0].raw.attach).to.equal('100%25')
        const upgrade = readFileSync(new URL('../../docs/security.md', import.meta.url), 'utf8').split('## Upgrading from 0.1')[1]
        expect(upgrade, 'docs/security.md has an "Upgrading from 0.1" section').to.be.a('string')
        expect(upgrade).to.contain('`100%25`').and.contain('`payment.raw.attach`')
      })
    })

    describe('log lines: request text is escaped (issue 9)', () => {
      const INJECTED = '\n[express-guanaitong] payment ORDER1 processed\r\u001b[2K\u2028'

      /** The rejection was logged once, with the reason, and no line break or escape sequence from the body. */
      function expectEscaped(out: Outcome, reason: string, lines: Array<{ message: string }>): void {
        expect(out.text).to.equal('fail')
        expect(out.reasons).to.deep.equal([reason])
        expect(lines).to.have.length.greaterThan(0)
        for (const line of lines) expect(line.message).to.not.match(/[\n\r\u001b\u2028]/)
      }

      async function sendLogged(body: string, type: string = FORM, headers: Record<string, string> = {}) {
        const { app, paid, logger } = notifyApp(express)
        const { port, close } = await listen(app)
        try {
          const res = await rawPost(port, '/gat/notify', { 'content-type': type, ...headers }, body)
          return { out: { status: res.status, text: res.text, paid, reasons: logger.reasons() }, lines: logger.lines }
        } finally {
          await close()
        }
      }

      it('an appid carrying a fake log line → fail (APPID_MISMATCH), logged escaped', async () => {
        const { out, lines } = await sendLogged(formBody(paidFields({ appid: `x${INJECTED}` })))
        expectEscaped(out, 'APPID_MISMATCH', lines)
        expect(lines[0].message).to.contain('x\\n[express-guanaitong] payment')
      })

      it('a nested key carrying a fake log line → fail (NESTED_KEY), logged escaped', async () => {
        const { out, lines } = await sendLogged(`${formBody(paidFields())}&${encodeURIComponent(`a[${INJECTED}]`)}=1`)
        expectEscaped(out, 'NESTED_KEY', lines)
      })

      it('a repeated key carrying a fake log line → fail (DUPLICATE_KEY), logged escaped', async () => {
        // No brackets: they would make it a nested key.
        const key = encodeURIComponent('k\nexpress-guanaitong: payment ORDER1 processed\r\u001b\u2028')
        const { out, lines } = await sendLogged(`${formBody(paidFields())}&${key}=1&${key}=2`)
        expectEscaped(out, 'DUPLICATE_KEY', lines)
      })

      it('a bad escape next to a raw line break → fail (BAD_BODY), logged escaped', async () => {
        const { out, lines } = await sendLogged(`${formBody(paidFields())}&x=%zz${INJECTED}`)
        expectEscaped(out, 'BAD_BODY', lines)
      })

      it('a signed failure notice whose order number carries a fake log line and U+202E, no onPayFailed → success, its warning logged escaped (issue 21, item 2)', async () => {
        const { out, lines } = await sendLogged(formBody(paidFields({ trade_no: '', outer_trade_no: `X${INJECTED}\u202eYZ` })))
        expect(out.text).to.equal('success')
        expect(out.reasons).to.deep.equal(['PAY_FAILED_UNHANDLED'])
        for (const line of lines) expect(line.message).to.not.match(/[\n\r\u001b\u2028\u202e]/)
        expect(lines[0].message).to.contain('X\\n[express-guanaitong] payment ORDER1 processed')
      })

      it('a timestamp and an amount carrying fake log lines → fail (BAD_TIMESTAMP / BAD_AMOUNT), logged escaped', async () => {
        const t = await sendLogged(formBody(paidFields({ timestamp: `1${INJECTED}` })))
        expectEscaped(t.out, 'BAD_TIMESTAMP', t.lines)
        const a = await sendLogged(formBody(paidFields({ total_amount: `1${INJECTED}` })))
        expectEscaped(a.out, 'BAD_AMOUNT', a.lines)
      })
    })

    describe('blank values are not signed', () => {
      it('failure notice with trade_no turned into a blank → success through onPayFailed, never onPaid', async () => {
        const failed: Payment[] = []
        const notice = paidFields({ trade_no: '' })
        const out = await send(formBody({ ...notice, trade_no: ' ' }), { options: { onPayFailed: (n) => { failed.push(n) } } })
        expect(out.text).to.equal('success')
        expect(out.paid).to.have.length(0)
        expect(failed).to.have.length(1)
        expect(failed[0].tradeNo).to.equal('')
      })

      it('failure notice without trade_no, given an ideographic-space trade_no → never onPaid', async () => {
        const notice = paidFields({ trade_no: undefined })
        const out = await send(`${formBody(notice)}&trade_no=%E3%80%80`)
        expect(out.text).to.equal('success')
        expect(out.paid).to.have.length(0)
      })

      it('outer_trade_no of blanks (so left out of the signature) → fail (MISSING_FIELD)', async () => {
        expectFail(await send(formBody(paidFields({ outer_trade_no: '  ' }))), 'MISSING_FIELD', 400)
      })
    })

    describe('encoding', () => {
      it('gzip body that inflates past 64 kB → fail (BODY_TOO_LARGE)', async () => {
        const bomb = gzipSync(Buffer.from(`${formBody(paidFields())}&pad=${'a'.repeat(1_000_000)}`))
        expect(bomb.length).to.be.below(16 * 1024)
        expectFail(await send(bomb, { headers: { 'content-encoding': 'gzip' } }), 'BODY_TOO_LARGE', 413)
      })

      it('small valid gzip body → success', async () => {
        expectSuccess(await send(gzipSync(Buffer.from(formBody(paidFields()))), { headers: { 'content-encoding': 'gzip' } }))
      })

      it('small valid deflate body → success', async () => {
        expectSuccess(await send(deflateSync(Buffer.from(formBody(paidFields()))), { headers: { 'content-encoding': 'deflate' } }))
      })

      it('corrupt gzip body → fail (BAD_BODY)', async () => {
        const zipped = gzipSync(Buffer.from(formBody(paidFields())))
        zipped.fill(0x41, 12, 30)
        expectFail(await send(zipped, { headers: { 'content-encoding': 'gzip' } }), 'BAD_BODY', 400)
      })

      it('form body labelled gzip but not compressed → fail (BAD_BODY)', async () => {
        expectFail(await send(formBody(paidFields()), { headers: { 'content-encoding': 'gzip' } }), 'BAD_BODY', 400)
      })

      it('Content-Encoding br → fail (UNSUPPORTED_MEDIA_TYPE)', async () => {
        expectFail(await send(formBody(paidFields()), { headers: { 'content-encoding': 'br' } }), 'UNSUPPORTED_MEDIA_TYPE', 415)
      })

      it('plain body one byte over 64 kB → fail (BODY_TOO_LARGE)', async () => {
        const f = formBody(paidFields())
        const body = `${f}&pad=${'a'.repeat(64 * 1024 - f.length - 5 + 1)}`
        expect(body.length).to.equal(64 * 1024 + 1)
        expectFail(await send(body), 'BODY_TOO_LARGE', 413)
      })

      for (const [what, tail] of [
        ['a non-hex escape %zz', 'x=%zz'],
        ['a lone %', 'x=%'],
        ['a % followed by one digit', 'x=%4'],
        ['a truncated UTF-8 escape', 'x=%E6%B5'],
        ['a surrogate half as UTF-8 (%ED%A0%80)', 'x=%ED%A0%80'],
        ['an overlong UTF-8 escape (%C0%AF)', 'x=%C0%AF'],
        ['a bad escape in a key', '%zz=1'],
      ] as const) {
        it(`invalid percent-escape: ${what} → fail (BAD_BODY)`, async () => {
          expectFail(await send(`${formBody(paidFields())}&${tail}`), 'BAD_BODY', 400)
        })
      }

      it('raw bytes that are not UTF-8, no charset → fail (BAD_BODY)', async () => {
        const body = Buffer.concat([Buffer.from(`${formBody(paidFields())}&x=`), Buffer.from([0xff, 0xfe])])
        expectFail(await send(body), 'BAD_BODY', 400)
      })

      it('GBK body as raw bytes with charset=gbk → success, Chinese decoded', async () => {
        const f = paidFields({ attach: '午餐支付' })
        const body = Buffer.concat(Object.entries(f).map(([k, v], i) =>
          Buffer.concat([Buffer.from(`${i ? '&' : ''}${k}=`), k === 'attach' ? iconv.encode(v, 'gbk') : Buffer.from(encodeURIComponent(v))])))
        const out = await send(body, { type: `${FORM}; charset=gbk` })
        expectSuccess(out)
        expect(out.paid[0].attach).to.equal('午餐支付')
      })

      it('GB18030 body with a four-byte character (😀) escaped, charset=gb18030 → success', async () => {
        const f = paidFields({ attach: '早餐😀' })
        const escaped = [...iconv.encode('早餐😀', 'gb18030')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('')
        const body = Object.entries(f).map(([k, v]) => `${k}=${k === 'attach' ? escaped : encodeURIComponent(v)}`).join('&')
        const out = await send(body, { type: `${FORM}; charset="GB18030"` })
        expectSuccess(out)
        expect(out.paid[0].attach).to.equal('早餐😀')
      })

      it('GBK body without a charset → fail (BAD_BODY)', async () => {
        const f = paidFields({ attach: '午餐' })
        const body = Buffer.concat([Buffer.from(formBody({ ...f, attach: '' })), Buffer.from('&x='), iconv.encode('午餐', 'gbk')])
        expectFail(await send(body), 'BAD_BODY', 400)
      })

      it('an invalid GBK sequence with charset=gbk → fail (BAD_BODY)', async () => {
        expectFail(await send(`${formBody(paidFields())}&x=%FF%FF`, { type: `${FORM}; charset=gbk` }), 'BAD_BODY', 400)
      })

      it('a UTF-8 body declared charset=gbk → fail (BAD_SIGN), the Chinese reads differently', async () => {
        expectFail(await send(formBody(paidFields({ attach: '测试' })), { type: `${FORM}; charset=gbk` }), 'BAD_SIGN', 401)
      })

      it('charset=latin1 → fail (UNSUPPORTED_MEDIA_TYPE)', async () => {
        expectFail(await send(formBody(paidFields()), { type: `${FORM}; charset=latin1` }), 'UNSUPPORTED_MEDIA_TYPE', 415)
      })

      for (const type of ['application/json', 'text/plain', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencodedx', null]) {
        it(`content type ${type ?? 'missing'} → fail (UNSUPPORTED_MEDIA_TYPE)`, async () => {
          expectFail(await send(formBody(paidFields()), { type }), 'UNSUPPORTED_MEDIA_TYPE', 415)
        })
      }

      it('content type in capitals with spaces (APPLICATION/X-WWW-FORM-URLENCODED ; Charset=UTF-8) → success', async () => {
        expectSuccess(await send(formBody(paidFields()), { type: 'APPLICATION/X-WWW-FORM-URLENCODED ; Charset=UTF-8' }))
      })
    })

    describe('a body parser mounted before the router', () => {
      // Pending: the host's express.urlencoded() passes its error (too many parameters, a bad
      // Content-Encoding) to Express's final handler, which answers an HTML page with a stack trace
      // outside production. The fix belongs in src/adapters/express/router.ts (an error handler on the notify path).
    })

    describe('connections', () => {
      it('a body sent slowly (half of it, then nothing) → fail (BODY_TIMEOUT) 408 after bodyTimeoutMs, the connection closed, server lives on (issue 21, item 6)', async () => {
        const { app, paid, logger } = notifyApp(express, { bodyTimeoutMs: 200 })
        const { port, close } = await listen(app)
        try {
          const body = formBody(paidFields())
          const head = `POST /gat/notify HTTP/1.1\r\nHost: shop\r\nContent-Type: ${FORM}\r\nContent-Length: ${body.length}\r\n\r\n`
          // The client never sends the rest: the server must answer and close on its own.
          const received = await rawSocket(port, head + body.slice(0, 40), 'end', waitFor('the BODY_TIMEOUT log line', () => logger.reasons().length > 0).then(() => sleep(50)))
          expect(received).to.match(/^HTTP\/1\.1 408 /).and.match(/\r\n\r\nfail$/)
          expect(received.toLowerCase()).to.contain('connection: close')
          expect(logger.reasons()).to.deep.equal(['BODY_TIMEOUT'])
          expect(paid).to.have.length(0)
          const next = await rawPost(port, '/gat/notify', { 'content-type': FORM }, formBody(paidFields()))
          expect(next.text).to.equal('success')
        } finally {
          await close()
        }
      })

      it('bodyTimeoutMs 0 or over 2^31-1 → ConfigError when the router is built', () => {
        for (const bodyTimeoutMs of [0, 2 ** 31]) expect(() => notifyApp(express, { bodyTimeoutMs })).to.throw(ConfigError, /bodyTimeoutMs/)
      })

      for (const how of ['end', 'destroy'] as const) {
        it(`body cut off mid-stream, client ${how === 'end' ? 'half-closes' : 'resets'} → no answer but fail (BAD_BODY), server lives on`, async () => {
          const { app, paid, logger } = notifyApp(express)
          const { port, close } = await listen(app)
          try {
            const body = formBody(paidFields())
            const head = `POST /gat/notify HTTP/1.1\r\nHost: shop\r\nContent-Type: ${FORM}\r\nContent-Length: ${body.length + 100}\r\n\r\n`
            const received = await rawSocket(port, head + body, how)
            expect(received).to.not.contain('success')
            await waitFor('the rejection to be logged', () => logger.reasons().length > 0)
            expect(logger.reasons()).to.deep.equal(['BAD_BODY'])
            expect(paid).to.have.length(0)
            const next = await rawPost(port, '/gat/notify', { 'content-type': FORM }, formBody(paidFields()))
            expect(next.text).to.equal('success')
            expect(paid).to.have.length(1)
          } finally {
            await close()
          }
        })
      }

      it('client disconnects while onPaid runs, onPaid resolves afterwards → done: the retry reads success, onPaid not run again', async () => {
        let calls = 0
        let started!: () => void
        const running = new Promise<void>((r) => { started = r })
        let finish!: () => void
        const gate = new Promise<void>((r) => { finish = r })
        const store = new MemoryStore()
        let done = false
        const complete = store.complete.bind(store)
        store.complete = async (key, owner) => { const ok = await complete(key, owner); done = true; return ok }
        const { app, logger } = notifyApp(express, {
          store,
          onPaid: async () => {
            calls++
            started()
            await gate
          },
        })
        const { port, close } = await listen(app)
        try {
          const fields = paidFields()
          const body = formBody(fields)
          const head = `POST /gat/notify HTTP/1.1\r\nHost: shop\r\nContent-Type: ${FORM}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`
          const received = await rawSocket(port, head + body, 'destroy', running)
          expect(received).to.equal('')
          finish()
          await waitFor('the settlement to be marked done', () => done)
          const retry = resign(fields, { timestamp: String(Number(fields.timestamp) + 1) })
          const res = await rawPost(port, '/gat/notify', { 'content-type': FORM }, formBody(retry))
          expect(res.text).to.equal('success')
          expect(calls).to.equal(1)
          expect(logger.reasons()).to.deep.equal([])
        } finally {
          await close()
        }
      })
    })
  })

  /**
   * The pay route and Guanaitong's answer to it (issue 21): what the route lets through to the
   * client and the sandbox, and what of the answer it trusts. Real router, real client, the sandbox.
   */
  describe(`hostile pay requests and pay answers (${name})`, function () {
    this.timeout(30_000)
    const SANDBOX = { appId: '20110698', appSecret: 'sandbox-secret' }
    const BUYER = 'd87797eea12a2f80ad72ed93214a0908'
    let sandbox: Sandbox
    let server: Server | undefined
    let seq = 0
    const order = (overrides: Record<string, unknown> = {}) => ({
      outer_trade_no: `HP${Date.now() % 1e8}${++seq}`, reason: '午餐', asset_type: '1', asset_open_id: 'a5fad9894edd0d2202639248fa0461ec', ...overrides,
    })

    beforeEach(async () => {
      sandbox = createSandbox({ ...SANDBOX, timeScale: 0.001 })
      await sandbox.start()
    })
    afterEach(async () => {
      await sandbox.close()
      server?.close()
      server = undefined
    })

    /** The router behind the sandbox; what onPaid and preparePayment saw, the store and the log. */
    function shop(options: Partial<GuanaitongOptions> = {}) {
      const paid: Payment[] = []
      const prepared: unknown[] = []
      const logger = recordingLogger()
      const store = new MemoryStore()
      const built = routerBehindSandbox(express, sandbox, {
        ...SANDBOX, logger, store,
        preparePayment: (_req, params) => {
          prepared.push(params.outer_trade_no)
          return { ...params, buyer_open_id: BUYER, total_amount: '19.99' }
        },
        onPaid: (p) => { paid.push(p) },
        ...options,
      })
      server = built.server
      return { base: built.base, paid, prepared, logger, store }
    }

    describe('outer_trade_no: printable, no whitespace at either end (item 1)', () => {
      const HOSTILE: ReadonlyArray<readonly [string, string, string]> = [
        ['a NUL', 'AB\u0000CD', 'U+0000'],
        ['U+202E (right-to-left override)', 'AB\u202eDC', 'U+202E'],
        ['a zero-width space', 'AB\u200bCD', 'U+200B'],
        ['a line break', 'AB\nCD', 'U+000A'],
        ['a trailing space', 'ABCD ', 'whitespace'],
        ['a leading space', ' ABCD', 'whitespace'],
        ['a trailing ideographic space', 'ABCD\u3000', 'whitespace'],
      ]
      for (const [what, value, named] of HOSTILE) {
        it(`${what} → 400 INVALID_PARAM naming outer_trade_no (${named}), before preparePayment, nothing sent`, async () => {
          const { base, prepared } = shop()
          const res = await request(base).post('/gat/pay').send(order({ outer_trade_no: value }))
          expect(res.status).to.equal(400)
          expect(res.body).to.include({ code: 'INVALID_PARAM', field: 'outer_trade_no' })
          expect(res.body.msg).to.match(/^outer_trade_no /).and.contain(named)
          expect(prepared).to.deep.equal([])
          expect(sandbox.stats.payCalls).to.equal(0)
        })
      }

      it('the same rule in the client (ParamError, nothing sent) and in the sandbox (INVALID_PARAM): one rule for all three', async () => {
        const client = createClient({ ...SANDBOX, baseUrl: sandbox.url, logger: quietLogger() })
        const pay = { ...order(), buyer_open_id: BUYER, total_amount: '1.00' }
        for (const [, value] of HOSTILE) {
          const err = await client.pay({ ...pay, outer_trade_no: value }).catch((e: unknown) => e)
          expect(err).to.be.instanceOf(ParamError).and.include({ field: 'outer_trade_no' })
        }
        expect(sandbox.stats.payCalls).to.equal(0)
        // The sandbox, sent the pay without the client's checks: a raw signed form.
        const token = await client.getToken()
        for (const [what, value] of HOSTILE.filter(([w]) => !w.includes('line break'))) {
          const fields: Record<string, string> = {
            ...pay, outer_trade_no: value, appid: SANDBOX.appId, timestamp: String(Math.floor(Date.now() / 1000)), version: '1.0.0', access_token: token,
          }
          const answer = await fetch(`${sandbox.url}${PAY_PATH}`, {
            method: 'POST', headers: { 'content-type': FORM }, body: formBody({ ...fields, sign: sign(fields, SANDBOX.appSecret) }),
          }).then((r) => r.json() as Promise<{ code: number; msg: string }>)
          expect(answer.code, what).to.equal(SANDBOX_CODES.INVALID_PARAM)
          expect(answer.msg, what).to.match(/^outer_trade_no /)
        }
        expect(sandbox.payments).to.have.length(0)
      })
    })

    describe('the pay answer\'s trade number (item 3)', () => {
      for (const [what, data] of [
        ['a blank " "', ' '],
        ['a line break', '\n'],
        ['65 characters', '2'.repeat(65)],
        ['a U+202E', '2020\u202e0702'],
        ['a number, not a string', 2020070220000015],
        ['"&" and "="', '2020&trade_no=1'],
      ] as const) {
        it(`code 0 with data ${what} → 502 ambiguous (GAT_INVALID_RESPONSE), recorded in the unsettled ledger, not settled`, async () => {
          const { base, paid, store, logger } = shop()
          sandbox.setNotifications('off')
          sandbox.answerData({ path: PAY_PATH, data, processed: true })
          const body = order()
          const res = await request(base).post('/gat/pay').send(body)
          expect(res.status).to.equal(502)
          expect(res.body).to.include({ code: 'GAT_INVALID_RESPONSE', outer_trade_no: body.outer_trade_no, ambiguous: true })
          expect(res.body).to.not.have.property('trade_no')
          expect(paid).to.have.length(0)
          expect(sandbox.getPayment(body.outer_trade_no), 'Guanaitong did charge').to.exist
          const ledger = await store.listUnsettled()
          expect(ledger.map((r) => [r.outerTradeNo, r.reason, r.tradeNo])).to.deep.equal([[body.outer_trade_no, 'AMBIGUOUS', null]])
          expect(logger.reasons()).to.deep.equal(['OUTCOME_UNKNOWN'])
          for (const line of logger.lines) expect(line.message).to.not.match(/[\n\u202e]/)
        })
      }

      it('a 2 MB data → 502 ambiguous: the answer is over the client\'s cap (DEFAULTS.maxResponseBytes), nothing echoed or settled', async () => {
        const { base, paid, store, logger } = shop()
        sandbox.setNotifications('off')
        sandbox.answerData({ path: PAY_PATH, data: '2'.repeat(2 * 1024 * 1024), processed: true })
        const body = order()
        const res = await request(base).post('/gat/pay').send(body)
        expect(res.status).to.equal(502)
        expect(res.body).to.include({ code: 'GAT_INVALID_RESPONSE', ambiguous: true })
        expect(res.body.msg).to.equal(`answer is over the ${DEFAULTS.maxResponseBytes}-byte limit`)
        expect(JSON.stringify(res.body).length).to.be.below(1000)
        expect(paid).to.have.length(0)
        expect((await store.listUnsettled()).map((r) => r.reason)).to.deep.equal(['AMBIGUOUS'])
        expect(logger.lines.every((l) => l.message.length < 1000)).to.equal(true)
      })

      it('a trade number of 64 printable characters is still one → 200, settled', async () => {
        const { base, paid } = shop()
        sandbox.answerData({ path: PAY_PATH, data: '2'.repeat(64), processed: true })
        const res = await request(base).post('/gat/pay').send(order())
        expect(res.status).to.equal(200)
        expect(res.body).to.include({ trade_no: '2'.repeat(64), settled: true })
        expect(paid).to.have.length(1)
      })
    })

    describe('log lines on the pay path (item 2)', () => {
      const INJECTED = '\n[express-guanaitong] payment ORDER1 processed\r\u001b[2K\u202e'

      it('settling on the pay answer fails for an order number from preparePayment carrying a fake log line → its warning is one line, escaped', async () => {
        const logger = recordingLogger()
        const app = express()
        app.use('/gat', guanaitong({
          appId: APP_ID, appSecret: SECRET, logger, notifyUrl: 'https://shop.example/gat/notify',
          // A custom client checks nothing: only the route stands between the order number and the log.
          client: { ...unusedClient, pay: async () => '2020070220000015' },
          preparePayment: (_req, params) => ({ ...params, outer_trade_no: `O1${INJECTED}`, buyer_open_id: BUYER, total_amount: '1.00' }),
          onPaid: () => { throw new Error('database down') },
        }))
        const res = await request(app).post('/gat/pay').send(order())
        expect(res.status).to.equal(200)
        expect(res.body.settled).to.equal(false)
        expect(logger.reasons()).to.include('HANDLER_FAILED')
        for (const line of logger.lines) expect(line.message).to.not.match(/[\n\r\u001b\u202e]/)
        expect(logger.lines.map((l) => l.message).join(' ')).to.contain('O1\\n[express-guanaitong] payment ORDER1 processed\\r\\u001b[2K\\u202e')
      })

      it('a refusal whose msg carries a fake log line → the GatError message (what a shop logs) is one line', async () => {
        sandbox.refuse({ path: PAY_PATH, code: 1001, msg: `余额不足${INJECTED}` })
        const client = createClient({ ...SANDBOX, baseUrl: sandbox.url, logger: quietLogger() })
        const err = await client.pay({ ...order(), buyer_open_id: BUYER, total_amount: '1.00' }).catch((e: unknown) => e) as GatError
        expect(err).to.be.instanceOf(GatError).and.include({ kind: 'api', code: 1001 })
        expect(err.message).to.not.match(/[\n\r\u001b\u202e]/)
        expect(err.message).to.contain('余额不足\\n[express-guanaitong]')
        expect(err.msg, 'msg stays as Guanaitong sent it').to.equal(`余额不足${INJECTED}`)
      })
    })
  })
}
