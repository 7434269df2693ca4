export { createSandbox, Sandbox, SANDBOX_CODES, DEFAULT_RETRY_SCHEDULE, MAX_NOTIFY_ATTEMPTS, NOTIFICATION_MODES } from './sandbox'
export type * from './sandbox'
export { signNotification, encodeForm } from './sign-notification'
export { storeConformance } from './conformance'
