/**
 * The de-duplication core on its own, with stores that answer as each test scripts: a store is
 * the shop's code (or a Redis that stalls), so a malformed answer, a throw, a hang and a lost
 * lease are inputs the core must turn into STORE_FAILED or a logged warning, never into a
 * second run of the handler.
 */
import { expect } from 'chai'
import { claimKey, completeClaim, keepLease, releaseClaim, type HeldClaim } from '../../src/core/settle/claim'
import { notificationKey } from '../../src/core/settle/key'
import { toLogger } from '../../src/observe/log'
import { NotifyRejection } from '../../src/core/rejection'
import type { ClaimResult, Notification, NotifyStore } from '../../src/kernel/types'
import { recordingLogger, sleep, waitFor } from '../helpers'

/** A store whose every method fails the test unless the test replaces it. */
function store(overrides: Partial<NotifyStore> = {}, leaseMs = 60_000): NotifyStore {
  const unused = () => Promise.reject(new Error('not used in this test'))
  return { claim: unused, complete: unused, release: unused, leaseMs, retentionMs: 90_000_000, ...overrides }
}

async function rejectionOf(promise: Promise<unknown>): Promise<NotifyRejection> {
  const err = await promise.then(() => undefined, (e: unknown) => e)
  expect(err).to.be.instanceOf(NotifyRejection)
  return err as NotifyRejection
}

describe('dedupe core', () => {
  describe('notificationKey', () => {
    const n = (tradeNo: string) => ({ appId: '20110698', outerTradeNo: 'O:1', tradeNo }) as Notification
    it('is <appid>:paid:<outer_trade_no> for a payment (README, RedisStore key layout)', () => {
      expect(notificationKey(n('T1'))).to.equal('20110698:paid:O:1')
    })
    it('is <appid>:failed:<outer_trade_no> for a failed payment, so it never blocks the payment', () => {
      expect(notificationKey(n(''))).to.equal('20110698:failed:O:1')
    })
  })

  describe('claimKey', () => {
    it('passes the three well-formed answers through', async () => {
      for (const answer of [{ status: 'done' }, { status: 'busy' }, { status: 'claimed', owner: 'o', attempt: 1 }] as ClaimResult[]) {
        expect(await claimKey(store({ claim: async () => answer }), 'k', 1000)).to.deep.equal(answer)
      }
    })

    const malformed: unknown[] = [
      null, undefined, 'claimed', 1, { status: 'other' }, { status: 'claimed' },
      { status: 'claimed', owner: '', attempt: 1 }, { status: 'claimed', owner: 5, attempt: 1 },
      { status: 'claimed', owner: 'o', attempt: 0 }, { status: 'claimed', owner: 'o', attempt: 1.5 },
      { status: 'claimed', owner: 'o', attempt: '1' }, { status: 'claimed', owner: 'o' }, { status: 'claim', owner: 'o', attempt: 1 },
    ]
    for (const answer of malformed) {
      it(`answers STORE_FAILED, naming the key, for a store that answered ${JSON.stringify(answer) ?? 'undefined'}`, async () => {
        const r = await rejectionOf(claimKey(store({ claim: async () => answer as ClaimResult }), 'k1', 1000))
        expect(r.reason).to.equal('STORE_FAILED')
        expect(r.context).to.deep.equal({ key: 'k1' })
      })
    }

    it('answers STORE_FAILED for a store that throws, naming the operation and the key', async () => {
      const r = await rejectionOf(claimKey(store({ claim: () => { throw new Error('boom') } }), 'k2', 1000))
      expect(r.reason).to.equal('STORE_FAILED')
      expect(r.detail).to.equal('store claim failed: boom')
      expect(r.context).to.deep.equal({ key: 'k2' })
    })

    it('answers STORE_FAILED for a store that hangs, saying how long it waited', async () => {
      const r = await rejectionOf(claimKey(store({ claim: () => new Promise<ClaimResult>(() => {}) }), 'k3', 30))
      expect(r.detail).to.equal('store claim failed: no answer within 30 ms')
    })

    it('gives back a claim that arrives after the timeout, and nothing else', async () => {
      for (const late of [{ status: 'claimed', owner: 'late-owner', attempt: 1 }, { status: 'busy' }, null] as ClaimResult[]) {
        const released: string[][] = []
        let answer!: (r: ClaimResult) => void
        const s = store({
          claim: () => new Promise<ClaimResult>((resolve) => { answer = resolve }),
          release: async (key, owner) => { released.push([key, owner]); return true },
        })
        await rejectionOf(claimKey(s, 'k4', 20))
        answer(late)
        await sleep(20)
        expect(released, JSON.stringify(late)).to.deep.equal(late?.status === 'claimed' ? [['k4', 'late-owner']] : [])
      }
    })
  })

  describe('completeClaim and releaseClaim', () => {
    const held = (s: NotifyStore): HeldClaim => ({ store: s, key: 'k5', owner: 'o', attempt: 1, storeTimeoutMs: 1000, outerTradeNo: 'T1' })

    it('completeClaim answers STORE_FAILED naming the operation when the store fails', async () => {
      const r = await rejectionOf(completeClaim(held(store({ complete: async () => { throw new Error('down') } }))))
      expect(r.detail).to.equal('store complete failed: down')
    })

    it('releaseClaim only logs a failed release, with the reason, the key and the error', async () => {
      const logger = recordingLogger()
      await releaseClaim(held(store({ release: async () => { throw new Error('down') } })), toLogger(logger))
      expect(logger.lines).to.have.length(1)
      expect(logger.lines[0].level).to.equal('error')
      const { error, ...rest } = logger.lines[0].context ?? {}
      expect(rest).to.deep.equal({ reason: 'STORE_FAILED', key: 'k5', outerTradeNo: 'T1' })
      expect(error).to.match(/store release failed: down$/)
    })
  })

  describe('keepLease', () => {
    /** A store with `extend` answering from `answers` in turn (the last one repeats); call times are recorded. */
    function extending(leaseMs: number, answers: Array<() => Promise<boolean>>) {
      const calls: number[] = []
      const s = store({
        extend: (key, owner) => {
          expect([key, owner]).to.deep.equal(['k6', 'o'])
          calls.push(Date.now())
          return answers[Math.min(calls.length - 1, answers.length - 1)]()
        },
      }, leaseMs)
      const claim: HeldClaim = { store: s, key: 'k6', owner: 'o', attempt: 1, storeTimeoutMs: 1000, outerTradeNo: 'T1' }
      return { claim, calls }
    }

    it('does nothing for a store without extend', async () => {
      const reads: PropertyKey[] = []
      let started = false
      const watched = new Proxy(store({}, 30), { get: (target, name, receiver) => {
        if (started) reads.push(name)
        return Reflect.get(target, name, receiver)
      } })
      const logger = recordingLogger()
      const stop = keepLease({ store: watched, key: 'k6', owner: 'o', attempt: 1, storeTimeoutMs: 1000, outerTradeNo: 'T1' }, toLogger(logger), 60_000)
      started = true
      await sleep(60) // six renewal periods of a 30 ms lease
      stop()
      expect(reads, 'the store was touched after keepLease returned').to.deep.equal([])
      expect(logger.lines).to.deep.equal([])
    })

    it('renews every third of the lease, not more often', async () => {
      const { claim, calls } = extending(300, [async () => true])
      const started = Date.now()
      const stop = keepLease(claim, toLogger(recordingLogger()), 60_000)
      await waitFor('two renewals', () => calls.length >= 2)
      stop()
      // Timers fire late on a loaded machine, never early: each renewal at least 100 ms after the last.
      const gaps = [calls[0] - started, calls[1] - calls[0]]
      expect(gaps.every((gap) => gap >= 99), `gaps ${gaps.join(', ')} ms`).to.equal(true)
    })

    it('retries a failed renewal after a third of the renewal interval, logging the key and the error', async () => {
      const logger = recordingLogger()
      const { claim, calls } = extending(3000, [async () => { throw new Error('stalled') }, async () => true])
      const stop = keepLease(claim, toLogger(logger), 60_000)
      await waitFor('the retried renewal', () => calls.length >= 2)
      stop()
      expect(calls).to.have.length(2)
      const gap = calls[1] - calls[0]
      // Renewal every 1000 ms, retry after 333 ms: well below a full interval even when timers run late.
      expect(gap).to.be.at.least(320).and.below(1000)
      expect(logger.lines.map((l) => [l.level, l.context])).to.deep.equal([['warn', { key: 'k6', error: 'stalled', outerTradeNo: 'T1', reason: 'LEASE_RENEWAL_FAILED' }]])
    })

    it('stops renewing a lease that was lost, and warns with the key', async () => {
      const logger = recordingLogger()
      const { claim, calls } = extending(30, [async () => false])
      const stop = keepLease(claim, toLogger(logger), 60_000)
      await sleep(100)
      stop()
      expect(calls).to.have.length(1)
      expect(logger.lines.map((l) => [l.level, l.context])).to.deep.equal([['warn', { key: 'k6', outerTradeNo: 'T1', reason: 'LEASE_LOST' }]])
    })

    it('schedules nothing more once stopped, even when a renewal was in flight', async () => {
      let answer!: (owned: boolean) => void
      const { claim, calls } = extending(30, [() => new Promise<boolean>((resolve) => { answer = resolve })])
      const stop = keepLease(claim, toLogger(recordingLogger()), 60_000)
      await waitFor('a renewal in flight', () => calls.length >= 1)
      stop()
      answer(true)
      await sleep(60)
      expect(calls).to.have.length(1)
    })
  })
})
