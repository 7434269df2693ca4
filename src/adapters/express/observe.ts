import type { NextFunction, Request, Response } from 'express'
import { traceNotify, type NotifyAnswer } from '../../observe/telemetry'
import { notifyState } from './state'

/**
 * First on the notify route: opens the notification's span and channel event, and runs the rest
 * of the chain inside it, so the store calls and the shop's handler nest under it. They end when
 * answerSuccess / answerFail (answer.ts) report the answer.
 */
export function observeNotification() {
  return function observe(_req: Request, res: Response, next: NextFunction): void {
    const state = notifyState(res)
    void traceNotify('notify', () => new Promise<NotifyAnswer>((resolve) => {
      state.answered = resolve
      next()
    }))
  }
}
