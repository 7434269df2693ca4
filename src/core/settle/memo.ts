import { createHash } from 'node:crypto'
import { fenToAmount } from '../../kernel/money'
import type { Notification, SettledSummary } from '../../kernel/types'

/** Longest memo or note a store must keep exactly, in characters (all printable ASCII). */
export const MEMO_MAX_LENGTH = 1024

/**
 * Text fields longer than this as the memo writes them are kept as a digest, so a memo stays
 * bounded whatever a notification holds. Written, a character outside printable ASCII takes 6
 * (`\uXXXX`), a quote or backslash 2: counting the field's own length let 200 such characters grow to 1 200.
 */
const FIELD_MAX_LENGTH = 200

/** JSON with every character outside printable ASCII escaped, so any store column or Redis value keeps it exactly. */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** A field as the memo keeps it: itself, or `sha256:<hex>` when long once written (without its quotes). */
function bounded(value: string): string {
  return asciiJson(value).length - 2 > FIELD_MAX_LENGTH ? `sha256:${createHash('sha256').update(value).digest('hex')}` : value
}

/** What a settlement records of its payment: outcome, trade number, amount, buyer. */
export function summarize(n: Notification): SettledSummary {
  return {
    outcome: n.tradeNo === '' ? 'failed' : 'paid',
    tradeNo: bounded(n.tradeNo),
    totalAmount: fenToAmount(n.totalFen),
    totalFen: n.totalFen,
    buyerOpenId: bounded(n.buyerOpenId),
  }
}

/**
 * The memo (or note) of a payment: a versioned JSON array in printable ASCII. At most
 * 2 × 202 characters for the two text fields and 30 for the rest, under `MEMO_MAX_LENGTH`.
 */
export function encodeMemo(n: Notification): string {
  const s = summarize(n)
  return asciiJson([1, s.outcome === 'paid' ? 'p' : 'f', s.totalFen, s.tradeNo, s.buyerOpenId])
}

/** The summary a memo stands for; null for one this version did not write (or none). */
export function decodeMemo(memo: string | undefined): SettledSummary | null {
  if (typeof memo !== 'string') return null
  let parsed: unknown
  try {
    parsed = JSON.parse(memo)
  } catch {
    return null
  }
  if (!Array.isArray(parsed) || parsed.length !== 5 || parsed[0] !== 1) return null
  const [, outcome, fen, tradeNo, buyerOpenId] = parsed as unknown[]
  if ((outcome !== 'p' && outcome !== 'f') || !Number.isSafeInteger(fen) || (fen as number) < 0 || typeof tradeNo !== 'string' || typeof buyerOpenId !== 'string') {
    return null
  }
  return { outcome: outcome === 'p' ? 'paid' : 'failed', tradeNo, totalAmount: fenToAmount(fen as number), totalFen: fen as number, buyerOpenId }
}

/** The fields in which a payment differs from what settled before. */
export function differences(n: Notification, settled: SettledSummary): Array<'outcome' | 'tradeNo' | 'totalAmount' | 'buyerOpenId'> {
  const now = summarize(n)
  const fields: Array<'outcome' | 'tradeNo' | 'totalAmount' | 'buyerOpenId'> = []
  if (now.outcome !== settled.outcome) fields.push('outcome')
  if (now.tradeNo !== settled.tradeNo) fields.push('tradeNo')
  if (now.totalFen !== settled.totalFen) fields.push('totalAmount')
  if (now.buyerOpenId !== settled.buyerOpenId) fields.push('buyerOpenId')
  return fields
}
