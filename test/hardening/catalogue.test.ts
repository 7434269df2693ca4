/**
 * A catalogue of hostile and broken notifications, one case each, with the exact answer and the
 * logged reason code in the test name. Every case goes over real HTTP to the mounted router.
 */
import { expect } from 'chai'
import fc from 'fast-check'
import { createHash } from 'node:crypto'
import { deflateSync, gzipSync } from 'node:zlib'
import iconv from 'iconv-lite'
import { ConfigError } from '../../src/errors'
import { guanaitong } from '../../src/router'
import { canonicalString, sign, SIGN_ALGORITHMS } from '../../src/signature'
import { signNotification } from '../../src/testing/sign-notification'
import type { Fields, GuanaitongOptions, Payment } from '../../src/types'
import { MemoryStore } from '../../src/stores/memory'
import { EXPRESS_VERSIONS, flipHexDigit, formBody, paidFields, unusedClient, waitFor } from '../helpers'
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
      // outside production. The fix belongs in src/router.ts (an error handler on the notify path).
    })

    describe('connections', () => {
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
}
