import * as nodeCrypto from 'node:crypto'
import { ConfigError } from './errors'

/**
 * Java's Character.isWhitespace, which Guanaitong's SignUtil (StringUtils.isBlank) uses to drop
 * blank values. Unlike JS `\s` it does not count the non-breaking spaces (U+00A0, U+2007, U+202F).
 */
const BLANK = /^[\t\n\v\f\r\x1c-\x1f \u1680\u2000-\u2006\u2008-\u200a\u2028\u2029\u205f\u3000]*$/

const HEX_LENGTH: Record<number, SignAlgorithm> = { 40: 'sha1', 64: 'sha256', 128: 'sha512' }
const LOWER_HEX = /^[0-9a-f]+$/

export const SIGN_ALGORITHMS: readonly SignAlgorithm[] = ['sha1', 'sha256', 'sha512']

/** How empty values enter the canonical string: dropped (Guanaitong's SignUtil) or kept as `k=`. */
export type EmptyValues = 'drop' | 'keep'

/** True for a value Guanaitong's signer leaves out of the canonical string (empty or blank). */
export function isBlank(value: string): boolean {
  // BLANK matches the empty string too: one test, no separate `=== ''` branch.
  return BLANK.test(value)
}

/**
 * The string Guanaitong hashes: every parameter but `sign`, plus `appsecret`, blank values
 * dropped, sorted by key in UTF-16 code-unit order (Java's TreeMap), joined raw as `k=v&…`.
 */
export function canonicalString(
  params: Readonly<Record<string, string>>,
  appSecret: string,
  empty: EmptyValues = 'drop',
): string {
  const keys: string[] = ['appsecret']
  for (const key of Object.keys(params)) {
    if (key === 'sign' || key === 'appsecret') continue
    if (empty === 'drop' && isBlank(params[key])) continue
    keys.push(key)
  }
  // Default sort compares UTF-16 code units, exactly like Java's String.compareTo.
  keys.sort()
  let out = ''
  for (const key of keys) {
    const value = key === 'appsecret' ? appSecret : params[key]
    out += out === '' ? `${key}=${value}` : `&${key}=${value}`
  }
  return out
}

/** The canonical string with the secret replaced, safe for logs. */
export function maskedCanonicalString(params: Readonly<Record<string, string>>, empty: EmptyValues = 'drop'): string {
  return canonicalString(params, '***', empty)
}

/** One-shot `crypto.hash` (Node ≥ 20.12) is about 3× faster than a Hash object; older Node 20 lacks it. */
const oneShot = typeof nodeCrypto.hash === 'function' ? nodeCrypto.hash : undefined

function digest(text: string, algorithm: SignAlgorithm): string {
  if (oneShot) return oneShot(algorithm, text, 'hex')
  return nodeCrypto.createHash(algorithm).update(text, 'utf8').digest('hex')
}

/** Signs `params` the way Guanaitong does. `sign` itself, if present, is ignored. */
export function sign(
  params: Readonly<Record<string, string>>,
  appSecret: string,
  algorithm: SignAlgorithm = 'sha1',
): string {
  if (!SIGN_ALGORITHMS.includes(algorithm)) {
    throw new ConfigError(`unknown sign algorithm ${JSON.stringify(algorithm)}: use sha1, sha256 or sha512`)
  }
  return digest(canonicalString(params, appSecret), algorithm)
}

function hasOnlyStrings(params: Readonly<Record<string, unknown>>): params is Readonly<Record<string, string>> {
  for (const key of Object.keys(params)) if (typeof params[key] !== 'string') return false
  return true
}

function hasEmptyValue(params: Readonly<Record<string, string>>): boolean {
  for (const key of Object.keys(params)) if (key !== 'sign' && isBlank(params[key])) return true
  return false
}

function matches(expected: Buffer, text: string, algorithm: SignAlgorithm): boolean {
  return nodeCrypto.timingSafeEqual(expected, Buffer.from(digest(text, algorithm), 'latin1'))
}

/** The algorithm a signature's length says it was made with (40 sha1, 64 sha256, 128 sha512); undefined for another length. */
export function signAlgorithmOf(signature: string): SignAlgorithm | undefined {
  return HEX_LENGTH[signature.length]
}

/**
 * True when `params.sign` is the signature of the other parameters under one of the secrets.
 * The algorithm follows from the signature's length (40 sha1, 64 sha256, 128 sha512) and must be
 * one of `algorithms` (default: any of the three).
 * A missing, duplicated (non-string), non-hex, upper-case or wrongly sized signature is false,
 * never a throw. Empty values are tried both ways: Guanaitong's older signer dropped them,
 * a newer one signs whatever it is given.
 */
export function verifySign(
  params: Readonly<Record<string, unknown>>,
  appSecret: string | readonly string[],
  algorithms: readonly SignAlgorithm[] = SIGN_ALGORITHMS,
): boolean {
  if (params === null || typeof params !== 'object' || !hasOnlyStrings(params)) return false
  const signature = params.sign
  if (typeof signature !== 'string') return false
  const algorithm = signAlgorithmOf(signature)
  if (!algorithm || !algorithms.includes(algorithm) || !LOWER_HEX.test(signature)) return false
  const expected = Buffer.from(signature, 'latin1')
  const secrets = typeof appSecret === 'string' ? [appSecret] : appSecret
  const tryKept = hasEmptyValue(params)
  let ok = false
  // Every candidate is computed even after a match, so timing does not reveal which secret matched.
  for (const secret of secrets) {
    if (typeof secret !== 'string' || secret === '') continue
    if (matches(expected, canonicalString(params, secret, 'drop'), algorithm)) ok = true
    if (tryKept && matches(expected, canonicalString(params, secret, 'keep'), algorithm)) ok = true
  }
  return ok
}

/** Hash used for signatures. Guanaitong's default is sha1; an application can be switched to the others. */
export type SignAlgorithm = 'sha1' | 'sha256' | 'sha512'

/**
 * The app secret. A list during a rotation: requests are signed with the first,
 * notifications verified against any.
 */
export type AppSecret = string | readonly string[]
