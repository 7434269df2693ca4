import type { CoreRequest, CoreResponse } from '../http'
import { notifyAnswer, notifyResponse, shownOrderNumber } from './answer'
import { readNotificationFields, type ReadLimits } from './read'
import { verifyFields, type VerifyConfig } from './verify'
import { asRejection, type SettleOutcome } from '../settle/settle'
import type { Log } from '../../observe/log'
import { traceNotify } from '../../observe/telemetry'
import type { Fields, Notification, SettleStore } from '../../kernel/types'

/** What the notification handler is built from, resolved once (src/guanaitong.ts). */
export interface NotifyHandlerConfig<Req> {
  limits: ReadLimits
  verify: VerifyConfig
  /** The settlement core, built once (createSettlement). */
  settle: (s: { notification: Notification; req: Req; source: 'notify'; store: SettleStore; storeTimeoutMs: number }) => Promise<SettleOutcome>
  store: SettleStore
  storeTimeoutMs: number
  logger: Log
}

/**
 * The notification route without a framework: read the form, verify it, settle it, answer.
 * Never rejects: whatever goes wrong is a `fail` with its reason, logged once.
 */
export function createNotifyHandler<Req>(config: NotifyHandlerConfig<Req>) {
  const { limits, verify, settle, store, storeTimeoutMs, logger } = config
  return async function handleNotify(request: CoreRequest<Req>): Promise<CoreResponse> {
    let response!: CoreResponse
    // The span and channel event wrap the whole notification, so store calls and the shop's handler nest under it.
    await traceNotify('notify', async () => {
      let fields: Fields | undefined
      let notification: Notification | undefined
      let outcome: SettleOutcome
      try {
        fields = await readNotificationFields(request, limits)
        notification = verifyFields(fields, verify)
        outcome = await settle({ notification, req: request.request, source: 'notify', store, storeTimeoutMs })
      } catch (err) {
        outcome = { answer: 'fail', rejection: asRejection(err) }
      }
      const outerTradeNo = shownOrderNumber(fields, notification)
      response = notifyResponse(outcome, logger, outerTradeNo)
      return notifyAnswer(outcome, outerTradeNo)
    })
    return response
  }
}
