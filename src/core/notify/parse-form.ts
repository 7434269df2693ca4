import iconv from 'iconv-lite'
import { printable } from '../../kernel/printable'
import type { Fields } from '../../kernel/types'
import { NotifyRejection } from '../rejection'

/** Charsets a notification body may declare. GBK-family escapes are GBK bytes, not UTF-8. */
const CHARSETS: Record<string, 'utf8' | 'gbk' | 'gb18030'> = {
  'utf-8': 'utf8',
  utf8: 'utf8',
  gbk: 'gbk',
  gb2312: 'gbk',
  gb18030: 'gb18030',
}

export type FormCharset = 'utf8' | 'gbk' | 'gb18030'

/** The decoder for a declared charset (utf-8 when none), or a rejection naming the charset. */
export function formCharset(declared: string | undefined): FormCharset {
  if (declared === undefined || declared === '') return 'utf8'
  const charset = CHARSETS[declared.toLowerCase()]
  if (!charset) {
    throw new NotifyRejection('UNSUPPORTED_MEDIA_TYPE', `charset "${printable(declared, 40)}" is not supported (use utf-8, gbk or gb18030)`)
  }
  return charset
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

function decodeUtf8Component(text: string): string {
  if (text.indexOf('+') !== -1) text = text.replace(/\+/g, ' ')
  if (text.indexOf('%') === -1) return text
  try {
    return decodeURIComponent(text)
  } catch {
    throw new NotifyRejection('BAD_BODY', `invalid percent-escape or UTF-8 sequence in "${printable(text, 40)}"`)
  }
}

function hexValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48
  if (code >= 65 && code <= 70) return code - 55
  if (code >= 97 && code <= 102) return code - 87
  return -1
}

/** `latin1` holds the raw bytes one per char; escapes become bytes, then the whole is decoded as GBK. */
function decodeLegacyComponent(latin1: string, charset: 'gbk' | 'gb18030'): string {
  const bytes = Buffer.allocUnsafe(latin1.length)
  let n = 0
  for (let i = 0; i < latin1.length; i++) {
    const c = latin1.charCodeAt(i)
    if (c === 0x2b) bytes[n++] = 0x20
    else if (c === 0x25) {
      const hi = hexValue(latin1.charCodeAt(i + 1))
      const lo = hexValue(latin1.charCodeAt(i + 2))
      if (hi < 0 || lo < 0) throw new NotifyRejection('BAD_BODY', `invalid percent-escape in "${printable(latin1.slice(i, i + 3))}"`)
      bytes[n++] = hi * 16 + lo
      i += 2
    } else bytes[n++] = c
  }
  const text = iconv.decode(bytes.subarray(0, n), charset)
  if (text.indexOf('\ufffd') !== -1) throw new NotifyRejection('BAD_BODY', `invalid ${charset} byte sequence`)
  return text
}

/**
 * Parses an `application/x-www-form-urlencoded` body into a flat map of strings.
 * Strict where a lenient parser would silently change what was signed: duplicate keys,
 * `a[b]`-style nested keys, bad escapes and too many parameters are rejections. The map has
 * no prototype, so `__proto__` or `constructor` are ordinary keys.
 */
export function parseForm(body: Buffer, charset: FormCharset = 'utf8', parameterLimit = 100): Fields {
  if (body.length === 0) throw new NotifyRejection('BAD_BODY', 'empty body')
  let text: string
  if (charset === 'utf8') {
    try {
      text = utf8.decode(body)
    } catch {
      throw new NotifyRejection('BAD_BODY', 'body is not valid UTF-8 (declare charset=gbk if it is GBK)')
    }
  } else text = body.toString('latin1')

  const fields: Fields = Object.create(null)
  let count = 0
  let start = 0
  while (start <= text.length) {
    let end = text.indexOf('&', start)
    if (end === -1) end = text.length
    if (end > start) {
      if (++count > parameterLimit) {
        throw new NotifyRejection('TOO_MANY_PARAMETERS', `more than ${parameterLimit} parameters`)
      }
      const eq = text.indexOf('=', start)
      const split = eq === -1 || eq > end ? end : eq
      const rawKey = text.slice(start, split)
      const rawValue = split === end ? '' : text.slice(split + 1, end)
      const key = charset === 'utf8' ? decodeUtf8Component(rawKey) : decodeLegacyComponent(rawKey, charset)
      if (key === '') throw new NotifyRejection('BAD_BODY', 'a parameter has an empty name')
      if (key.indexOf('[') !== -1 || key.indexOf(']') !== -1) {
        throw new NotifyRejection('NESTED_KEY', `nested key "${printable(key, 40)}" is not part of a Guanaitong notification`)
      }
      if (key in fields) throw new NotifyRejection('DUPLICATE_KEY', `key "${printable(key, 40)}" appears more than once`)
      fields[key] = charset === 'utf8' ? decodeUtf8Component(rawValue) : decodeLegacyComponent(rawValue, charset)
    }
    start = end + 1
  }
  if (count === 0) throw new NotifyRejection('BAD_BODY', 'body holds no parameters')
  return fields
}

/**
 * The same flat map from a body another parser (express.urlencoded) already read.
 * Arrays mean a key was repeated, objects a nested key: both are refused, as above.
 */
export function fieldsFromParsed(body: unknown, parameterLimit = 100): Fields {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new NotifyRejection('BAD_BODY', 'body was already parsed by another middleware into something that is not a form')
  }
  const fields: Fields = Object.create(null)
  const keys = Object.keys(body)
  if (keys.length === 0) {
    throw new NotifyRejection('BAD_BODY', 'empty body (or a body parser mounted before the router read it as another type)')
  }
  if (keys.length > parameterLimit) throw new NotifyRejection('TOO_MANY_PARAMETERS', `more than ${parameterLimit} parameters`)
  for (const key of keys) {
    const value = (body as Record<string, unknown>)[key]
    if (Array.isArray(value)) throw new NotifyRejection('DUPLICATE_KEY', `key "${printable(key, 40)}" appears more than once`)
    if (typeof value !== 'string') throw new NotifyRejection('NESTED_KEY', `key "${printable(key, 40)}" is not a plain string value`)
    if (key.indexOf('[') !== -1 || key.indexOf(']') !== -1) {
      throw new NotifyRejection('NESTED_KEY', `nested key "${printable(key, 40)}" is not part of a Guanaitong notification`)
    }
    fields[key] = value
  }
  return fields
}
