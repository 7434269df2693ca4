import { createHash } from 'node:crypto'
import { expect } from 'chai'
import fc from 'fast-check'
import { canonicalString, maskedCanonicalString, sign, SIGN_ALGORITHMS, verifySign } from '../src/kernel/signature'
import { flipHexDigit } from './helpers'

const example = {
  appid: '20110698',
  outer_trade_no: '1000000005',
  total_amount: '100.00',
  buyer_open_id: 'd87797eea12a2f80ad72ed93214a0908',
  trade_no: '2018070920000005',
  timestamp: '1531120153',
}

describe('signature', () => {
  it('reproduces the worked example of gat-protocol.md byte for byte', () => {
    expect(canonicalString(example, 'secret123')).to.equal(
      'appid=20110698&appsecret=secret123&buyer_open_id=d87797eea12a2f80ad72ed93214a0908' +
        '&outer_trade_no=1000000005&timestamp=1531120153&total_amount=100.00&trade_no=2018070920000005',
    )
    expect(sign(example, 'secret123')).to.equal('5ad48cf46541f84b9e5741dfac48227d40b322aa')
  })

  it('verifySign with a list of algorithms accepts only those (notifySignTypes, issue 21 item 7)', () => {
    const sha1 = { ...example, sign: sign(example, 'secret123', 'sha1') }
    const sha256 = { ...example, sign: sign(example, 'secret123', 'sha256') }
    expect(verifySign(sha1, 'secret123')).to.equal(true)
    expect(verifySign(sha1, 'secret123', ['sha256'])).to.equal(false)
    expect(verifySign(sha256, 'secret123', ['sha256'])).to.equal(true)
    expect(verifySign(sha1, 'secret123', ['sha256', 'sha1'])).to.equal(true)
  })

  it('drops sign and blank values, keeps raw (unencoded) UTF-8 values', () => {
    const text = canonicalString({ b: ' ', a: '测试&x=1', sign: 'zz', c: '' }, 's')
    expect(text).to.equal('a=测试&x=1&appsecret=s')
  })

  it('sorts by UTF-16 code unit like Java TreeMap (uppercase before lowercase, _ between)', () => {
    expect(canonicalString({ b: '1', B: '2', _a: '3', a_: '4' }, 's')).to.equal('B=2&_a=3&a_=4&appsecret=s&b=1')
  })

  it('keeps a non-breaking space value, which Java does not count as blank', () => {
    expect(canonicalString({ a: '\u00a0' }, 's')).to.equal('a=\u00a0&appsecret=s')
  })

  it('signs and verifies with sha1, sha256 and sha512, picking the algorithm by length', () => {
    for (const [alg, len] of [['sha1', 40], ['sha256', 64], ['sha512', 128]] as const) {
      const sig = sign(example, 'k', alg)
      expect(sig).to.have.length(len)
      expect(verifySign({ ...example, sign: sig }, 'k')).to.equal(true)
      expect(verifySign({ ...example, sign: sig }, 'other')).to.equal(false)
    }
  })

  it('rejects an unknown algorithm with a clear error', () => {
    expect(() => sign(example, 'k', 'md5' as never)).to.throw(/unknown sign algorithm "md5"/)
  })

  it('is false, never a throw, for missing, duplicated, wrong-length, non-hex or uppercase signatures', () => {
    const good = sign(example, 'k')
    const cases: unknown[] = [
      undefined, '', good.slice(0, 39), good + '0', 'g'.repeat(40), good.toUpperCase(), [good, good], 42,
    ]
    for (const s of cases) expect(verifySign({ ...example, sign: s as string }, 'k'), String(s)).to.equal(false)
    expect(verifySign(null as never, 'k')).to.equal(false)
    expect(verifySign({ ...example, extra: ['x'] as never, sign: good }, 'k')).to.equal(false)
  })

  it('is false for a signature wrong only in its last hex digit (sha1, sha256, sha512)', () => {
    for (const algorithm of SIGN_ALGORITHMS) {
      const good = sign(example, 'k', algorithm)
      const bad = flipHexDigit(good, good.length - 1)
      expect(bad).to.have.length(good.length).and.match(/^[0-9a-f]+$/)
      expect(verifySign({ ...example, sign: good }, 'k'), algorithm).to.equal(true)
      expect(verifySign({ ...example, sign: bad }, 'k'), algorithm).to.equal(false)
    }
  })

  it('is false for a signature with any one hex digit changed, at every position (property)', () => {
    fc.assert(fc.property(
      fc.constantFrom(...SIGN_ALGORITHMS),
      fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), fc.string({ maxLength: 8 }), { maxKeys: 4, noNullPrototype: true }),
      fc.string({ minLength: 1, maxLength: 12 }),
      fc.integer({ min: 1, max: 15 }),
      (algorithm, params, secret, delta) => {
        const good = sign(params, secret, algorithm)
        if (!verifySign({ ...params, sign: good }, secret)) return false
        for (let at = 0; at < good.length; at++) {
          if (verifySign({ ...params, sign: flipHexDigit(good, at, delta) }, secret)) return false
        }
        return true
      },
    ), { numRuns: 50 })
  })

  it('verifies against any secret of a rotation list', () => {
    const sig = sign(example, 'new')
    expect(verifySign({ ...example, sign: sig }, ['old', 'new'])).to.equal(true)
    expect(verifySign({ ...example, sign: sig }, ['old', ''])).to.equal(false)
  })

  it('accepts empty fields signed either left out or as k=', () => {
    const fields = { ...example, attach: '' }
    const dropped = sign(fields, 'k')
    const kept = createSha1(canonicalString(fields, 'k', 'keep'))
    expect(dropped).to.not.equal(kept)
    expect(verifySign({ ...fields, sign: dropped }, 'k')).to.equal(true)
    expect(verifySign({ ...fields, sign: kept }, 'k')).to.equal(true)
  })

  it('masks the secret in the loggable canonical string, dropping blank values like the signer', () => {
    expect(maskedCanonicalString(example)).to.contain('appsecret=***').and.not.contain('secret123')
    expect(maskedCanonicalString({ a: '', b: '1' })).to.equal('appsecret=***&b=1')
    expect(maskedCanonicalString({ a: '', b: '1' }, 'keep')).to.equal('a=&appsecret=***&b=1')
  })

  it('uses the configured secret, never an appsecret field of the parameters', () => {
    expect(canonicalString({ appsecret: 'guess', a: '1' }, 's')).to.equal('a=1&appsecret=s')
  })

  it('counts vertical tab as blank and the letter V as text (Java whitespace, exactly)', () => {
    expect(canonicalString({ a: '\v', b: 'V' }, 's')).to.equal('appsecret=s&b=V')
  })

  it('is false, never a throw, without a sign field at all', () => {
    expect(verifySign({ ...example }, 'k')).to.equal(false)
  })

  it('is false when a non-hex character stands for a hex digit in latin1 (U+0130 reads as "0")', () => {
    // Buffer.from(s, 'latin1') keeps only the low byte: U+0100 + c becomes c. Only the hex check stops it.
    const good = sign(example, 'k')
    const disguise = (at: number) => good.slice(0, at) + String.fromCharCode(0x100 + good.charCodeAt(at)) + good.slice(at + 1)
    expect(Buffer.from(disguise(0), 'latin1').toString('latin1')).to.equal(good)
    for (const at of [0, good.length - 1]) expect(verifySign({ ...example, sign: disguise(at) }, 'k'), `at ${at}`).to.equal(false)
  })

  it('is false for a repeated field even when its values would print as the signed one', () => {
    const good = sign({ ...example, extra: 'x' }, 'k')
    expect(verifySign({ ...example, extra: 'x', sign: good }, 'k')).to.equal(true)
    expect(verifySign({ ...example, extra: ['x'] as never, sign: good }, 'k')).to.equal(false)
  })

  it('is false for a function carrying otherwise valid fields: parameters are a plain object', () => {
    const fn = Object.assign(() => undefined, { ...example, sign: sign(example, 'k') })
    expect(verifySign(fn as never, 'k')).to.equal(false)
  })

  it('never verifies under an empty or non-string secret in a rotation list', () => {
    expect(verifySign({ ...example, sign: sign(example, '') }, ['old', ''])).to.equal(false)
    expect(verifySign({ ...example, sign: sign(example, '42') }, ['old', 42 as never])).to.equal(false)
  })
})

function createSha1(s: string) {
  return createHash('sha1').update(s).digest('hex')
}
