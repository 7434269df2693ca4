import { expect } from 'chai'
import fc from 'fast-check'
import { ParamError } from '../src/kernel/errors'
import { amountToFen, decimalToFen, fenToAmount, MAX_FEN, MIN_FEN, normalizeAmount } from '../src/kernel/money'

/**
 * Amounts whose decimal value has no exact binary double: 1.15 is stored as 1.149999…, so
 * `parseFloat(x) * 100` gives 114.99999999999999, not 115. The unit tests elsewhere use
 * 12.50, 100.00 and 100.01, which happen to come out right with floats too.
 */
const INEXACT: ReadonlyArray<readonly [string, number]> = [
  ['1.15', 115],
  ['0.29', 29],
  ['19.99', 1999],
  ['4.35', 435],
  ['0.57', 57],
  ['99999999.99', 9_999_999_999],
]

describe('money', () => {
  describe('amountToFen', () => {
    for (const [amount, fen] of INEXACT) {
      it(`${amount} → ${fen} fen exactly`, () => {
        expect(amountToFen(amount)).to.equal(fen)
      })
    }

    it('reads one decimal and no decimals as whole tens and hundreds of fen', () => {
      expect(amountToFen('4.3')).to.equal(430)
      expect(amountToFen('19')).to.equal(1900)
      expect(amountToFen('0.01')).to.equal(1)
    })

    it('is null for anything but a plain decimal of at most 8 + 2 digits', () => {
      for (const bad of ['', '.5', '1.', '1.005', '01.00', '-1.00', '+1', '1e2', ' 1.00', '1,00', '123456789.00', 'NaN']) {
        expect(amountToFen(bad), JSON.stringify(bad)).to.equal(null)
      }
    })
  })

  describe('decimalToFen (the shop order\'s amount, as a database prints it)', () => {
    it('reads any number of decimals by value: "12.5000" and "12.5" are 1250 fen, "7" is 700', () => {
      expect(decimalToFen('12.5000')).to.equal(1250n)
      expect(decimalToFen('12.5')).to.equal(1250n)
      expect(decimalToFen('7')).to.equal(700n)
      expect(decimalToFen('0.01')).to.equal(1n)
      expect(decimalToFen('99999999999.99')).to.equal(9_999_999_999_999n)
    })

    it('is null for a fraction of a fen and for anything but a plain decimal', () => {
      for (const bad of ['12.505', '12.5001', '0.001', '', '.5', '1.', '-1.00', '+1', '1e2', ' 1.00', '1,00', 'NaN']) {
        expect(decimalToFen(bad), JSON.stringify(bad)).to.equal(null)
      }
    })
  })

  describe('fenToAmount', () => {
    for (const [amount, fen] of INEXACT) {
      it(`${fen} fen → "${amount}"`, () => {
        expect(fenToAmount(fen)).to.equal(amount)
      })
    }

    it('pads fen below ten and writes whole yuan with two decimals', () => {
      expect(fenToAmount(1)).to.equal('0.01')
      expect(fenToAmount(430)).to.equal('4.30')
      expect(fenToAmount(1900)).to.equal('19.00')
    })

    it('writes 0 fen as "0.00", and refuses a negative or fractional number of fen with a ParamError', () => {
      expect(fenToAmount(0)).to.equal('0.00')
      for (const bad of [-1, 1.5, -0.5, NaN, Infinity, 2 ** 53]) {
        expect(() => fenToAmount(bad), String(bad)).to.throw(ParamError).with.property('field', 'fen')
      }
    })

    it('round-trips every amount in Guanaitong\'s range (property)', () => {
      fc.assert(fc.property(fc.integer({ min: MIN_FEN, max: MAX_FEN }), (fen) => amountToFen(fenToAmount(fen)) === fen))
    })
  })

  describe('normalizeAmount', () => {
    for (const [amount, fen] of INEXACT) {
      it(`"${amount}" → "${amount}", ${fen} fen; the number ${amount} is refused (a binary float)`, () => {
        expect(normalizeAmount(amount)).to.deep.equal({ ok: true, amount, fen })
        expect(normalizeAmount(Number(amount))).to.include({ ok: false })
      })
    }

    it('pads to two decimals: "100.1" → "100.10", "7" → "7.00"', () => {
      expect(normalizeAmount('100.1')).to.deep.equal({ ok: true, amount: '100.10', fen: 10010 })
      expect(normalizeAmount('7')).to.deep.equal({ ok: true, amount: '7.00', fen: 700 })
    })

    it('refuses 0, three decimals, exponents, NaN, negatives and 100000000.00, naming the rule', () => {
      for (const bad of [0, '0.00', 0.001, '1.005', 1e21, '1e2', NaN, Infinity, -1, '100000000.00', null, undefined, {}, true]) {
        const out = normalizeAmount(bad)
        expect(out.ok, String(bad)).to.equal(false)
        if (!out.ok) expect(out.rule).to.match(typeof bad === 'number' ? /not a JS number/ : /between 0\.01 and 99999999\.99/)
      }
    })

    it('refuses an array even when it prints as an amount (a repeated form field)', () => {
      for (const bad of [['1.00'], [1], ['1.00', '2.00']]) expect(normalizeAmount(bad).ok, JSON.stringify(bad)).to.equal(false)
    })
  })
})
