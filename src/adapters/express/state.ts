import type { Response } from 'express'
import type { NotifyAnswer } from '../../observe/telemetry'
import type { Fields, Notification, SettleStore } from '../../kernel/types'

/** What the notification middleware pass to each other, kept on `res.locals.guanaitong`. */
export interface NotifyState {
  /** Set by `parseNotification`. */
  fields?: Fields
  /** Set by `verifyNotification`. */
  notification?: Notification
  /** Set by `dedupeNotification`: where `handleNotification` settles, and how long it waits for the store. */
  dedupe?: { store: SettleStore; storeTimeoutMs: number }
  /** Set by the router's observer (observe.ts): takes the answer, which ends the notification's span. */
  answered?: (answer: NotifyAnswer) => void
}

export function notifyState(res: Response): NotifyState {
  const locals = res.locals as { guanaitong?: NotifyState }
  return (locals.guanaitong ??= {})
}
