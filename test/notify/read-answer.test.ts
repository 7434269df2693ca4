/**
 * The notification route's reading and answering without a framework (src/core/notify/read.ts,
 * answer.ts): what reaches verification, and what observers (span, channel, log) are told.
 */
import { expect } from 'chai'
import { Readable } from 'node:stream'
import { GuanaitongError } from '../../src/kernel/errors'
import { NotifyRejection } from '../../src/core/rejection'
import { readNotificationFields } from '../../src/core/notify/read'
import { notifyAnswer, notifyResponse, shownOrderNumber } from '../../src/core/notify/answer'
import type { CoreRequest } from '../../src/core/http'
import { toLogger } from '../../src/observe/log'
import { recordingLogger } from '../helpers'

const FORM = 'application/x-www-form-urlencoded'
const LIMITS = { bodyLimit: 1024, parameterLimit: 20, bodyTimeoutMs: 2000 }

function form(extra: Partial<CoreRequest>, method = 'POST'): CoreRequest {
  return { method, headers: { 'content-type': FORM }, request: {}, ...extra }
}

async function refusal(request: CoreRequest): Promise<unknown> {
  try {
    await readNotificationFields(request, LIMITS)
  } catch (err) {
    return err
  }
  expect.fail('the request was read')
}

describe('the notification route without a framework', () => {
  describe('readNotificationFields', () => {
    it('refuses anything but POST before reading: UNSUPPORTED_MEDIA_TYPE', async () => {
      const err = await refusal(form({ rawBody: Readable.from([Buffer.from('a=1')]) }, 'PUT'))
      expect(err).to.be.instanceOf(NotifyRejection)
      expect((err as NotifyRejection).reason).to.equal('UNSUPPORTED_MEDIA_TYPE')
    })

    it('reads bytes an earlier parser kept (express.raw) as a form in the declared charset', async () => {
      const gbk = Buffer.from('a=1&b=%D6%D0', 'latin1')
      const request = form({ parsedBody: gbk, headers: { 'content-type': `${FORM}; charset=GBK` } })
      expect(await readNotificationFields(request, LIMITS)).to.deep.equal({ a: '1', b: '中' })
    })

    it('a body that cannot be read is refused with its code; an adapter\'s own bug is not disguised as one', async () => {
      const large = await refusal(form({ rawBody: Readable.from([Buffer.alloc(2000)]) }))
      expect((large as NotifyRejection).reason).to.equal('BODY_TOO_LARGE')
      const bug = await refusal(form({ rawBody: {} as AsyncIterable<Uint8Array> }))
      expect(bug).to.not.be.instanceOf(NotifyRejection)
      expect(bug).to.be.instanceOf(GuanaitongError)
      expect((bug as GuanaitongError).code).to.equal('INVALID_ARGUMENT')
    })
  })

  describe('what observers are told', () => {
    const rejected = { answer: 'fail' as const, rejection: new NotifyRejection('BAD_SIGN', 'no', { outerTradeNo: 'O1' }) }

    it('the reason of a fail, HANDLED or DUPLICATE for a success, with the order number', () => {
      expect(notifyAnswer(rejected, 'O1')).to.deep.equal({ outcome: 'fail', reason: 'BAD_SIGN', outerTradeNo: 'O1' })
      expect(notifyAnswer({ answer: 'success', how: 'settled' }, 'O1')).to.deep.equal({ outcome: 'success', reason: 'HANDLED', outerTradeNo: 'O1' })
      expect(notifyAnswer({ answer: 'success', how: 'duplicate' }, undefined)).to.deep.equal({ outcome: 'success', reason: 'DUPLICATE', outerTradeNo: undefined })
    })

    it('the verified order number first, else the posted one, cut to 64 characters; none when neither exists', () => {
      const notification = { outerTradeNo: 'VERIFIED' } as Parameters<typeof shownOrderNumber>[1]
      expect(shownOrderNumber({ outer_trade_no: 'POSTED' }, notification)).to.equal('VERIFIED')
      expect(shownOrderNumber({ outer_trade_no: 'POSTED' }, undefined)).to.equal('POSTED')
      expect(shownOrderNumber({ outer_trade_no: 'x'.repeat(100) }, undefined)).to.equal('x'.repeat(64))
      expect(shownOrderNumber(undefined, undefined)).to.equal(undefined)
    })

    it('a fail is answered with the reason\'s status and logged once with the order number, reason and context', () => {
      const logger = recordingLogger()
      const res = notifyResponse(rejected, toLogger(logger), 'O1')
      expect(res).to.deep.equal({ status: 401, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'fail' })
      expect(logger.lines.map((l) => [l.level, l.context])).to.deep.equal([['warn', { outerTradeNo: 'O1', reason: 'BAD_SIGN' }]])
      expect(notifyResponse({ answer: 'success', how: 'settled' }, toLogger(logger), 'O1')).to.deep.equal({ status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'success' })
      expect(logger.lines).to.have.length(1)
    })
  })
})
