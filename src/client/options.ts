import { DEFAULTS } from '../kernel/defaults'
import { toLogger, type Log } from '../observe/log'
import type { ClientOptions, SignAlgorithm, TokenCache } from '../kernel/types'
import { checkOptions, checkSecrets, CLIENT_RULES } from '../kernel/validate'
import { MemoryTokenCache } from './token'

export interface ResolvedClientOptions {
  appId: string
  signingSecret: string
  signType: SignAlgorithm
  baseUrl: string
  timeoutMs: number
  tokenCache: TokenCache
  now: () => number
  logger: Log
}

/** Validates createClient's options once, at construction (src/kernel/validate.ts), so a misconfiguration fails at startup, not at the first payment. */
export function resolveClientOptions(options: ClientOptions): ResolvedClientOptions {
  checkOptions('createClient()', options, CLIENT_RULES, '{ appId, appSecret }')
  return {
    appId: options.appId,
    signingSecret: checkSecrets(options.appSecret)[0],
    signType: options.signType ?? DEFAULTS.signType,
    // Paths are appended as "/token/create"; a trailing slash would make "//token/create".
    baseUrl: (options.baseUrl ?? DEFAULTS.baseUrl).replace(/\/+$/, ''),
    timeoutMs: options.timeoutMs ?? DEFAULTS.timeoutMs,
    tokenCache: options.tokenCache ?? new MemoryTokenCache(),
    now: options.now ?? Date.now,
    logger: toLogger(options.logger),
  }
}
