import type { Response } from 'express'
import type { Fields, Notification, SettleStore } from '../../kernel/types'

/** What the notification middleware pass to each other, kept on `res.locals.guanaitong`. */
export interface NotifyState {
  /** Set by `parseNotification`. */
  fields?: Fields
  /** Set by `verifyNotification`. */
  notification?: Notification
  /** Set by `dedupeNotification`: where `handleNotification` settles, and how long it waits for the store. */
  dedupe?: { store: SettleStore; storeTimeoutMs: number }
}

export function notifyState(res: Response): NotifyState {
  const locals = res.locals as { guanaitong?: NotifyState }
  return (locals.guanaitong ??= {})
}
