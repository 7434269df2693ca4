import type { Response } from 'express'
import type { HeldClaim } from '../notify/dedupe'
import type { NotifyAnswer } from '../observe/telemetry'
import type { Fields, Notification } from '../types'

/** What the notification middleware pass to each other, kept on `res.locals.guanaitong`. */
export interface NotifyState {
  /** Set by `parseNotification`. */
  fields?: Fields
  /** Set by `verifyNotification`. */
  notification?: Notification
  /** Set by `dedupeNotification` when this request owns the notification. */
  claim?: HeldClaim
  /** Set by the router's observer: reports the answer, which ends the notification's span. */
  answered?: (answer: NotifyAnswer) => void
}

export function notifyState(res: Response): NotifyState {
  const locals = res.locals as { guanaitong?: NotifyState }
  return (locals.guanaitong ??= {})
}
