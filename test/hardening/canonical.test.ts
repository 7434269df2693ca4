/**
 * Property (issue 9, the re-split forgery): two different field maps that the verifier accepts
 * never produce the same canonical string, so no accepted notification's sign is valid for any
 * other accepted notification.
 *
 * Random maps almost never collide by chance, so the second map is made the way an attacker
 * would: by reading the first map's canonical string back with other splits (any `&` may or may
 * not end a field, any `=` in a piece may end its key). Values are built from the pieces that
 * matter: `&`, `=`, field names, amounts, blanks.
 */
import { expect } from 'chai'
import fc from 'fast-check'
import { verifyFields } from '../../src/core/notify/verify'
import { canonicalString, isBlank } from '../../src/kernel/signature'
import { signNotification } from '../../src/testing/sign-notification'
import type { Fields } from '../../src/kernel/types'
import { APP_ID, NOW_MS, NOW_SEC, SECRET } from './support'

const config = { appId: APP_ID, secrets: [SECRET], toleranceSec: 300, now: () => NOW_MS, debug: false }

function accepts(fields: Fields): boolean {
  try {
    verifyFields(fields, config)
    return true
  } catch {
    return false
  }
}

/** What a map means to the verifier: `sign` aside, blank values read as absent (the signer drops them). */
function meaning(fields: Fields): Record<string, string> {
  const out: Record<string, string> = {}
  for (const key of Object.keys(fields).sort()) if (key !== 'sign' && !isBlank(fields[key])) out[key] = fields[key]
  return out
}

const piece = fc.constantFrom('&', '=', 'x', '1', ' ', 'outer_trade_no', 'total_amount', 'trade_no', 'buyer_open_id',
  'timestamp', 'attach', 'appid', APP_ID, '8888.00', '0.01', 'VICTIM', String(NOW_SEC))
const textArb = fc.array(piece, { maxLength: 8 }).map((parts) => parts.join(''))
const keyArb = fc.array(fc.constantFrom('a', 'b', '_', '&', '='), { minLength: 1, maxLength: 4 }).map((parts) => parts.join(''))

const notificationArb = fc.record({
  attach: textArb,
  trade_no: fc.oneof(fc.constant('2018070920000005'), textArb),
  buyer_open_id: fc.oneof(fc.constant('d87797eea12a2f80ad72ed93214a0908'), textArb),
  extras: fc.dictionary(keyArb, textArb, { maxKeys: 3, noNullPrototype: true }),
}).map(({ extras, ...named }): Fields => {
  const fields: Fields = Object.create(null)
  Object.assign(fields, extras, named, { appid: APP_ID, outer_trade_no: 'CHEAP1', total_amount: '0.01' })
  return signNotification(fields, SECRET, 'sha1', () => NOW_MS)
})

/** Reads `canonical` back as fields: `cuts[i]` says whether the i-th `&` ends a field, `splits` which `=` ends each key. */
function resplit(canonical: string, cuts: boolean[], splits: number[], sign: string): Fields | null {
  const pieces: string[] = []
  let current = ''
  canonical.split('&').forEach((part, i) => {
    if (i === 0) current = part
    else if (cuts[(i - 1) % cuts.length]) {
      pieces.push(current)
      current = part
    } else current += `&${part}`
  })
  pieces.push(current)
  const fields: Fields = Object.create(null)
  for (let i = 0; i < pieces.length; i++) {
    const equals = [...pieces[i].matchAll(/=/g)].map((m) => m.index)
    if (equals.length === 0) return null
    const at = equals[splits[i % splits.length] % equals.length]
    const key = pieces[i].slice(0, at)
    const value = pieces[i].slice(at + 1)
    if (key === 'appsecret' && value === SECRET) continue // the secret's own slot, never sent
    if (key in fields) return null // a form with a repeated key is refused when parsed
    fields[key] = value
  }
  fields.sign = sign
  return fields
}

describe('property: no two different accepted notifications share a canonical string (re-split, issue 9)', function () {
  this.timeout(60_000)

  it('a second map read from the first one\'s canonical string is refused, unless it means the same', () => {
    fc.assert(
      fc.property(
        notificationArb,
        fc.array(fc.boolean(), { minLength: 1, maxLength: 24 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 24 }),
        (first, cuts, splits) => {
          const canonical = canonicalString(first, SECRET)
          const second = resplit(canonical, cuts, splits, first.sign)
          fc.pre(second !== null)
          if (accepts(first) && accepts(second!)) {
            expect(meaning(second!), `both accepted, one signed string:\n${canonical}`).to.deep.equal(meaning(first))
          }
        },
      ),
      { numRuns: 3000 },
    )
  })

  it('the verifier does accept notifications in this space: the property is not vacuous', () => {
    let accepted = 0
    fc.assert(fc.property(notificationArb, (fields) => {
      if (accepts(fields)) accepted++
    }), { numRuns: 500 })
    expect(accepted).to.be.greaterThan(50)
  })
})
