import { ParamError } from '../kernel/errors'
import { sign } from '../kernel/signature'
import type { AppSecret, Fields, SignAlgorithm } from '../kernel/types'

/** Form fields to sign or encode; `undefined` values are left out. */
export type FieldsInput = Readonly<Record<string, string | undefined>>

/** A copy of `fields` without its undefined values. */
export function defined(fields: FieldsInput): Fields {
  // No prototype: a `__proto__` field is copied as a field, not turned into the object's prototype.
  const out: Fields = Object.create(null)
  for (const key of Object.keys(fields)) {
    const value = fields[key]
    if (value !== undefined) out[key] = value
  }
  return out
}

/**
 * Signs a notification (or any parameter set) the way Guanaitong does and returns a new object
 * with `sign` added. `timestamp` is set to the current Unix time in seconds when it is missing;
 * a given one is kept (so a test can sign a stale notification on purpose). An existing `sign`
 * is replaced. With a list of secrets, the first one signs (as during a rotation).
 */
export function signNotification(
  fields: FieldsInput,
  appSecret: AppSecret,
  algorithm: SignAlgorithm = 'sha1',
  now: () => number = Date.now,
): Fields {
  const out = defined(fields)
  delete out.sign
  if (out.timestamp === undefined) out.timestamp = String(Math.floor(now() / 1000))
  const secret = typeof appSecret === 'string' ? appSecret : appSecret[0]
  if (typeof secret !== 'string' || secret === '') {
    throw new ParamError('appSecret', 'must be a non-empty string (signNotification)')
  }
  out.sign = sign(out, secret, algorithm)
  return out
}

/** The `application/x-www-form-urlencoded` body for `fields` (URLSearchParams encoding, UTF-8). */
export function encodeForm(fields: FieldsInput): string {
  return new URLSearchParams(defined(fields)).toString()
}
