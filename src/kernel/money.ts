import { ParamError } from './errors'

/**
 * Money is a decimal string with at most two decimals and integer fen, never a float.
 * Guanaitong's limits (seed): total_amount in [0.01, 99999999.99].
 */
export const MIN_FEN = 1
export const MAX_FEN = 9_999_999_999

/** Yuan part without leading zeros, up to 8 digits; 0 to 2 decimals. No sign, exponent or spaces. */
const AMOUNT = /^(0|[1-9][0-9]{0,7})(?:\.([0-9]{1,2}))?$/

/** Integer fen for a well-formed amount string, or null. Does not check the range. */
export function amountToFen(amount: string): number | null {
  const m = AMOUNT.exec(amount)
  if (!m) return null
  const decimals = m[2] ?? ''
  return Number(m[1]) * 100 + Number(decimals.padEnd(2, '0'))
}

/** Any number of decimals, as databases print NUMERIC/DECIMAL ("12.5000"); no sign, exponent or spaces. */
const DECIMAL = /^([0-9]+)(?:\.([0-9]+))?$/

/**
 * Integer fen of a decimal string by value, exactly (bigint, no float): "12.5000" → 1250n,
 * "12.5" → 1250n. Null when it is not a decimal or holds a fraction of a fen ("12.505").
 */
export function decimalToFen(text: string): bigint | null {
  const m = DECIMAL.exec(text)
  if (!m) return null
  const decimals = m[2] ?? ''
  if (/[^0]/.test(decimals.slice(2))) return null
  return BigInt(m[1]) * 100n + BigInt(decimals.slice(0, 2).padEnd(2, '0'))
}

/** `12345` → `"123.45"`. Anything but a whole, non-negative number of fen is a ParamError, never a made-up amount. */
export function fenToAmount(fen: number): string {
  if (!Number.isSafeInteger(fen) || fen < 0) throw new ParamError('fen', `must be a whole number of fen ≥ 0; got ${String(fen)}`)
  const yuan = Math.floor(fen / 100)
  const rest = fen % 100
  return `${yuan}.${rest < 10 ? '0' : ''}${rest}`
}

export type AmountCheck = { ok: true; amount: string; fen: number } | { ok: false; rule: string }

const RULE = 'must be a decimal amount between 0.01 and 99999999.99 with at most 2 decimals (e.g. "100.00")'

/**
 * A JS number is a binary float: 0.1 + 0.2 prints as 0.30000000000000004, and 1e2 or 100.1 only
 * look like amounts by accident of printing. Amounts come from the shop's order as strings
 * (a DECIMAL column, or integer fen through fenToAmount), so a number is refused, not guessed at.
 */
const NUMBER_RULE = 'must be a decimal string such as "100.00", not a JS number (a binary float): ' +
  'pass the amount as your database returns a DECIMAL, or integer fen through fenToAmount()'

/**
 * Normalises an amount string to Guanaitong's two-decimal form: "100.1" → "100.10". Refuses
 * numbers of any kind, and "0", "0.001", "1e2", "-1", "100000000.00", " 1.00".
 */
export function normalizeAmount(input: unknown): AmountCheck {
  if (typeof input === 'number' || typeof input === 'bigint') return { ok: false, rule: NUMBER_RULE }
  if (typeof input !== 'string') return { ok: false, rule: RULE }
  const fen = amountToFen(input)
  if (fen === null || fen < MIN_FEN || fen > MAX_FEN) return { ok: false, rule: RULE }
  return { ok: true, amount: fenToAmount(fen), fen }
}
