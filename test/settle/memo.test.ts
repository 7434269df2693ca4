/**
 * The memo a settlement records with its done-marker, and what a duplicate is compared with
 * (src/core/settle/memo.ts). A memo this version cannot read must be read as none, never as a
 * payment of other fields: stores keep memos written by other versions and by hand.
 */
import { expect } from 'chai'
import { createHash } from 'node:crypto'
import { decodeMemo, differences, encodeMemo, MEMO_MAX_LENGTH, summarize } from '../../src/core/settle/memo'
import type { Notification } from '../../src/kernel/types'

const payment = (over: Partial<Notification> = {}): Notification => ({
  appId: '20110698',
  outerTradeNo: 'M1',
  tradeNo: 'T1',
  buyerOpenId: 'buyer',
  totalAmount: '19.90',
  totalFen: 1990,
  attach: '',
  timestamp: 1_700_000_000,
  raw: {},
  ...over,
})

const sha256 = (value: string) => `sha256:${createHash('sha256').update(value).digest('hex')}`

describe('settlement memo', () => {
  it('round-trips a payment and a failure notice', () => {
    expect(decodeMemo(encodeMemo(payment()))).to.deep.equal({ outcome: 'paid', tradeNo: 'T1', totalAmount: '19.90', totalFen: 1990, buyerOpenId: 'buyer' })
    expect(decodeMemo(encodeMemo(payment({ tradeNo: '', totalFen: 0, totalAmount: '0.00' }))))
      .to.deep.equal({ outcome: 'failed', tradeNo: '', totalAmount: '0.00', totalFen: 0, buyerOpenId: 'buyer' })
  })

  it('keeps a field of 200 characters as it is and one of 201 as its digest', () => {
    const exact = 'a'.repeat(200)
    const over = 'b'.repeat(201)
    const summary = summarize(payment({ tradeNo: exact, buyerOpenId: over }))
    expect(summary.tradeNo).to.equal(exact)
    expect(summary.buyerOpenId).to.equal(sha256(over))
    expect(decodeMemo(encodeMemo(payment({ tradeNo: over })))?.tradeNo).to.equal(sha256(over))
  })

  it('writes only printable ASCII, escaping the rest, and reads it back', () => {
    const memo = encodeMemo(payment({ buyerOpenId: '买家\u0000😀é' }))
    expect(memo).to.match(/^[\x20-\x7e]+$/)
    expect(memo).to.include('\\u4e70\\u5bb6\\u0000\\ud83d\\ude00\\u00e9')
    expect(decodeMemo(memo)?.buyerOpenId).to.equal('买家\u0000😀é')
  })

  it('counts a field as the memo writes it: 33 Chinese characters (198 written) stay, 34 (204) become a digest', () => {
    expect(summarize(payment({ buyerOpenId: '买'.repeat(33) })).buyerOpenId).to.equal('买'.repeat(33))
    expect(summarize(payment({ buyerOpenId: '买'.repeat(34) })).buyerOpenId).to.equal(sha256('买'.repeat(34)))
    expect(summarize(payment({ buyerOpenId: '"'.repeat(101) })).buyerOpenId).to.equal(sha256('"'.repeat(101)))
  })

  it('stays within MEMO_MAX_LENGTH, the bound every store keeps exactly, whatever the fields hold', () => {
    for (const char of ['a', '\u0001', '买', '😀', '"', '\\']) {
      for (const length of [100, 200, 201, 1000]) {
        const memo = encodeMemo(payment({ tradeNo: char.repeat(length), buyerOpenId: char.repeat(length), totalFen: Number.MAX_SAFE_INTEGER }))
        expect(memo.length, `${length} × ${JSON.stringify(char)}`).to.be.at.most(MEMO_MAX_LENGTH)
      }
    }
  })

  const unreadable: Array<[string, string | undefined]> = [
    ['no memo', undefined],
    ['not JSON', '[1,"p"'],
    ['not an array', '{"0":1,"1":"p","2":1990,"3":"T1","4":"buyer","length":5}'],
    ['four entries', '[1,"p",1990,"T1"]'],
    ['six entries', '[1,"p",1990,"T1","buyer",0]'],
    ['another version', '[2,"p",1990,"T1","buyer"]'],
    ['an unknown outcome', '[1,"x",1990,"T1","buyer"]'],
    ['an amount that is no integer', '[1,"p",19.9,"T1","buyer"]'],
    ['an amount as a string', '[1,"p","1990","T1","buyer"]'],
    ['an amount past 2^53', '[1,"p",9007199254740993,"T1","buyer"]'],
    ['a negative amount', '[1,"p",-1,"T1","buyer"]'],
    ['a trade number that is no string', '[1,"p",1990,7,"buyer"]'],
    ['a buyer that is no string', '[1,"p",1990,"T1",null]'],
  ]
  for (const [what, memo] of unreadable) {
    it(`reads a memo with ${what} as none`, () => {
      expect(decodeMemo(memo)).to.equal(null)
    })
  }

  it('reads an amount of 0 fen (a failure notice carries none)', () => {
    expect(decodeMemo('[1,"f",0,"","buyer"]')?.totalFen).to.equal(0)
  })

  it('summarizes a failure notice (no trade number) as failed', () => {
    expect(summarize(payment({ tradeNo: '' })).outcome).to.equal('failed')
    expect(summarize(payment()).outcome).to.equal('paid')
  })

  it('names each field a duplicate changes, and none when it matches', () => {
    const settled = summarize(payment())
    expect(differences(payment(), settled)).to.deep.equal([])
    expect(differences(payment({ tradeNo: '', buyerOpenId: 'other', totalFen: 1, totalAmount: '0.01' }), settled))
      .to.deep.equal(['outcome', 'tradeNo', 'totalAmount', 'buyerOpenId'])
  })
})
