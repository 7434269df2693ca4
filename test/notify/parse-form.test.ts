import { expect } from 'chai'
import { fieldsFromParsed, formCharset, parseForm } from '../../src/notify/parse-form'
import { NotifyRejection } from '../../src/notify/rejection'

function reason(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    expect(err).to.be.instanceOf(NotifyRejection)
    return (err as NotifyRejection).reason
  }
  throw new Error('expected a rejection')
}

const b = (s: string) => Buffer.from(s, 'latin1')

describe('parseForm', () => {
  it('decodes +, percent-escapes and raw UTF-8; keeps empty values; skips empty pairs', () => {
    const fields = parseForm(Buffer.from('a=1+2&b=%E6%B5%8B%E8%AF%95&c=&d&e=x%3Dy%26z&&f=测', 'utf8'))
    expect({ ...fields }).to.deep.equal({ a: '1 2', b: '测试', c: '', d: '', e: 'x=y&z', f: '测' })
  })

  it('returns a map without prototype, so __proto__ is a plain key', () => {
    const fields = parseForm(b('__proto__=1&constructor=2&hasOwnProperty=3'))
    expect(Object.getPrototypeOf(fields)).to.equal(null)
    expect(fields.__proto__).to.equal('1')
    expect(Object.keys(fields)).to.deep.equal(['__proto__', 'constructor', 'hasOwnProperty'])
  })

  it('decodes GBK and GB18030 escapes as GBK bytes', () => {
    expect(parseForm(b('r=%CE%E7%B2%CD'), formCharset('gbk')).r).to.equal('午餐')
    expect(parseForm(b('r=%CE%E7%B2%CD+1'), formCharset('GB18030')).r).to.equal('午餐 1')
  })

  const rejected: Array<[string, () => unknown, string]> = [
    ['an empty body', () => parseForm(Buffer.alloc(0)), 'BAD_BODY'],
    ['only separators', () => parseForm(b('&&&')), 'BAD_BODY'],
    ['a repeated key', () => parseForm(b('a=1&a=2')), 'DUPLICATE_KEY'],
    ['a repeated key spelt with an escape', () => parseForm(b('a=1&%61=2')), 'DUPLICATE_KEY'],
    ['a nested key', () => parseForm(b('a[b]=1')), 'NESTED_KEY'],
    ['an escaped nested key', () => parseForm(b('a%5Bb%5D=1')), 'NESTED_KEY'],
    ['an invalid escape', () => parseForm(b('a=%zz')), 'BAD_BODY'],
    ['a truncated escape', () => parseForm(b('a=%E6%B5')), 'BAD_BODY'],
    ['invalid raw UTF-8', () => parseForm(Buffer.from([0x61, 0x3d, 0xff])), 'BAD_BODY'],
    ['an invalid GBK escape', () => parseForm(b('a=%G1'), 'gbk'), 'BAD_BODY'],
    ['an empty key', () => parseForm(b('=1')), 'BAD_BODY'],
    ['101 parameters', () => parseForm(b(Array.from({ length: 101 }, (_, i) => `k${i}=1`).join('&'))), 'TOO_MANY_PARAMETERS'],
    ['charset latin1', () => formCharset('latin1'), 'UNSUPPORTED_MEDIA_TYPE'],
  ]
  for (const [what, fn, expected] of rejected) {
    it(`rejects ${what} with ${expected}`, () => expect(reason(fn)).to.equal(expected))
  }
})

describe('fieldsFromParsed (a body express.urlencoded() already read)', () => {
  it('copies a flat object of strings into a prototype-less map', () => {
    const fields = fieldsFromParsed({ a: '1', b: '' })
    expect({ ...fields }).to.deep.equal({ a: '1', b: '' })
    expect(Object.getPrototypeOf(fields)).to.equal(null)
  })
  it('rejects arrays (repeated keys), objects (nested keys), an empty object and non-objects', () => {
    expect(reason(() => fieldsFromParsed({ a: ['1', '2'] }))).to.equal('DUPLICATE_KEY')
    expect(reason(() => fieldsFromParsed({ a: { b: '1' } }))).to.equal('NESTED_KEY')
    expect(reason(() => fieldsFromParsed({}))).to.equal('BAD_BODY')
    expect(reason(() => fieldsFromParsed('a=1'))).to.equal('BAD_BODY')
  })
})
