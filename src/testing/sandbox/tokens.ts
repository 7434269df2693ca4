/**
 * The access tokens the sandbox issued. Issuing a new token leaves the older ones valid until
 * they expire: THE SANDBOX'S CHOICE, Guanaitong does not say whether a new token revokes the old.
 */
import { randomBytes } from 'node:crypto'
import { TOKEN_INVALID_CODE } from '../../kernel/errors'
import { Refusal, SANDBOX_CODES } from './form'

export class TokenRegistry {
  /** Token → expiry, epoch ms by the sandbox clock. */
  private readonly expiries = new Map<string, number>()

  constructor(private readonly now: () => number) {}

  issue(ttlSec: number): { accessToken: string; expiresAt: number } {
    const accessToken = randomBytes(16).toString('hex')
    const expiresAt = this.now() + ttlSec * 1000
    this.expiries.set(accessToken, expiresAt)
    return { accessToken, expiresAt }
  }

  /** Refuses a missing, unknown or expired `access_token` the way the platform does (1000210004). */
  check(token: string | undefined): void {
    if (!token) throw new Refusal(SANDBOX_CODES.INVALID_PARAM, 'access_token is required')
    const expiresAt = this.expiries.get(token)
    if (expiresAt === undefined) throw new Refusal(TOKEN_INVALID_CODE, 'access_token is invalid (unknown or revoked): create a new one')
    if (this.now() >= expiresAt) {
      this.expiries.delete(token)
      throw new Refusal(TOKEN_INVALID_CODE, 'access_token has expired: create a new one')
    }
  }

  /** Tokens not expired yet. */
  valid(): string[] {
    const now = this.now()
    return [...this.expiries].filter(([, expiresAt]) => now < expiresAt).map(([token]) => token)
  }

  /** Forgets every token, so the next call with any of them is refused as unknown. */
  revokeAll(): void {
    this.expiries.clear()
  }
}
