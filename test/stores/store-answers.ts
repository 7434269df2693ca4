import { expect } from 'chai'
import { GuanaitongError } from '../../src/kernel/errors'
import type { CrossCheck, NotifyStore, UnsettledLedger } from '../../src/kernel/types'

/** A store of this package: claims, the unsettled ledger and peek. */
type FullStore = NotifyStore & UnsettledLedger & CrossCheck

/**
 * Tests MemoryStore and RedisStore share beyond the conformance suite (which lets a store add
 * fields and say its errors its own way): the exact answers, with no `memo` or `note` key when
 * there is none, and the store's name on every refused ledger argument.
 */
export function packageStoreAnswers(name: string, make: () => FullStore, uniqueKey: (label: string) => string): void {
  it('answers hold exactly their fields: no memo or note key when there is none', async () => {
    const s = make()
    const key = uniqueKey('exact')
    const r = await s.claim(key)
    expect(r).to.deep.equal({ status: 'claimed', owner: (r as { owner: string }).owner, attempt: 1, watched: false })
    expect(await s.peek(key)).to.deep.equal({ status: 'busy', watched: false })
    expect(await s.complete(key, (r as { owner: string }).owner)).to.equal(true)
    expect(await s.claim(key)).to.deep.equal({ status: 'done', watched: false })
    expect(await s.peek(key)).to.deep.equal({ status: 'done', watched: false })
  })

  // The conformance suite skips its memo cases for a store that keeps none: these two keep them.
  it('keeps the memo of a done-marker: claim and peek answer it', async () => {
    const s = make()
    const key = uniqueKey('memo')
    const r = await s.claim(key)
    expect(await s.complete(key, (r as { owner: string }).owner, '[1,"p",1990,"T1","b"]')).to.equal(true)
    expect(await s.claim(key)).to.deep.equal({ status: 'done', watched: false, memo: '[1,"p",1990,"T1","b"]' })
    expect(await s.peek(key)).to.deep.equal({ status: 'done', watched: false, memo: '[1,"p",1990,"T1","b"]' })
  })

  it(`every ledger method refuses a bad argument with INVALID_ARGUMENT, named "${name}"`, async () => {
    const s = make()
    const calls: [string, () => Promise<unknown>][] = [
      ['watchUnsettled', () => s.watchUnsettled(null as never)],
      ['resolveUnsettled', () => s.resolveUnsettled('')],
      ['listUnsettled', () => s.listUnsettled(0)],
      ['takeDueUnsettled limit', () => s.takeDueUnsettled(1e11, 0, 1000)],
      ['takeDueUnsettled now', () => s.takeDueUnsettled(1.5, 1, 1000)],
    ]
    for (const [what, call] of calls) {
      let error: unknown
      try { await call() } catch (err) { error = err }
      expect(error, what).to.be.instanceOf(GuanaitongError).with.property('code', 'INVALID_ARGUMENT')
      expect((error as Error).message, what).to.match(new RegExp(`^\\[express-guanaitong\\] ${name}: `))
    }
  })
}
