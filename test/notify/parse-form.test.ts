import { expect } from 'chai'
import { fieldsFromParsed, formCharset, parseForm } from '../../src/core/notify/parse-form'
import { NotifyRejection } from '../../src/core/rejection'

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

  it('decodes a GBK escape whose first digit is 0 (a line break in the reason)', () => {
    expect(parseForm(b('r=%CE%E7%0A%B2%CD'), formCharset('gbk')).r).to.equal('午\n餐')
  })

  it('reads a key without "=" at the very end as an empty value', () => {
    expect({ ...parseForm(b('a=1&flag')) }).to.deep.equal({ a: '1', flag: '' })
  })

  it('decodes a raw UTF-8 key and a GBK-escaped key in their charsets', () => {
    expect(Object.keys(parseForm(Buffer.from('中=1', 'utf8')))).to.deep.equal(['中'])
    expect({ ...parseForm(b('k%CE%E7=%ce%e7'), 'gbk') }).to.deep.equal({ k午: '午' })
  })

  it('reads GBK escapes of every hex digit class, upper and lower case, at the ends of each range', () => {
    expect(parseForm(b('a=%30%39%3A%3F%3a%3f%2F%2f'), 'gbk').a).to.equal('09:?:?//')
  })

  // Each would decode to a valid GBK text if the bad digit were read as -1 (0xF0 + a trail byte, or an ASCII byte).
  for (const bad of ['%/0%A1', '%:0%A1', '%@0%A1', '%G0%A1', '%`0%A1', '%g0%A1', '%3/', '%3:', '%3@', '%3G', '%3`', '%3g', '%3', '%']) {
    it(`rejects the GBK escape "${bad}" with BAD_BODY`, () => expect(reason(() => parseForm(b(`a=${bad}`), 'gbk'))).to.equal('BAD_BODY'))
  }

  it('reads the charsets a notification may declare, utf-8 when none', () => {
    for (const [declared, charset] of [[undefined, 'utf8'], ['', 'utf8'], ['utf8', 'utf8'], ['UTF-8', 'utf8'], ['gb2312', 'gbk'], ['GBK', 'gbk'], ['gb18030', 'gb18030']]) {
      expect(formCharset(declared), String(declared)).to.equal(charset)
    }
  })

  it('accepts exactly parameterLimit parameters', () => {
    expect(Object.keys(parseForm(b(Array.from({ length: 100 }, (_, i) => `k${i}=1`).join('&'))))).to.have.length(100)
  })

  const rejected: Array<[string, () => unknown, string]> = [
    ['a key with only an opening bracket', () => parseForm(b('a[=1')), 'NESTED_KEY'],
    ['a key with only a closing bracket', () => parseForm(b('a]=1')), 'NESTED_KEY'],
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
    expect(reason(() => fieldsFromParsed(null))).to.equal('BAD_BODY')
    expect(reason(() => fieldsFromParsed(['a']))).to.equal('BAD_BODY')
  })
  it('rejects a literal bracket in a key (express.urlencoded({ extended: false }) keeps them)', () => {
    expect(reason(() => fieldsFromParsed({ 'a[': '1' }))).to.equal('NESTED_KEY')
    expect(reason(() => fieldsFromParsed({ 'a]': '1' }))).to.equal('NESTED_KEY')
  })
  it('accepts exactly parameterLimit parameters and rejects one more', () => {
    const many = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, '1']))
    expect(Object.keys(fieldsFromParsed(many(100)))).to.have.length(100)
    expect(reason(() => fieldsFromParsed(many(101)))).to.equal('TOO_MANY_PARAMETERS')
  })
})
