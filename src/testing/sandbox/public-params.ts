/** appid, timestamp, sign: the checks every call to the sandbox gets, before its own parameters. */
import { verifySign } from '../../kernel/signature'
import type { Fields } from '../../kernel/types'
import { Refusal, SANDBOX_CODES } from './form'
import type { SandboxConfig } from './options'

export function checkPublicParams(params: Fields, config: Pick<SandboxConfig, 'appId' | 'appSecret' | 'toleranceSec' | 'now'>): void {
  if (!params.appid) throw new Refusal(SANDBOX_CODES.INVALID_PARAM, 'appid is required')
  if (params.appid !== config.appId) throw new Refusal(SANDBOX_CODES.UNKNOWN_APPID, `appid ${params.appid} is not an application of the sandbox`)
  const ts = params.timestamp
  if (!ts) throw new Refusal(SANDBOX_CODES.BAD_TIMESTAMP, 'timestamp is required')
  if (!/^[0-9]{1,12}$/.test(ts)) throw new Refusal(SANDBOX_CODES.BAD_TIMESTAMP, `timestamp must be Unix seconds (digits only); got ${JSON.stringify(ts)}`)
  const skew = Number(ts) - config.now() / 1000
  if (Math.abs(skew) > config.toleranceSec) {
    throw new Refusal(SANDBOX_CODES.BAD_TIMESTAMP, `timestamp ${ts} is ${Math.round(Math.abs(skew))} s ${skew < 0 ? 'behind' : 'ahead of'} the sandbox clock (allowed ${config.toleranceSec} s)`)
  }
  if (!params.sign) throw new Refusal(SANDBOX_CODES.BAD_SIGN, 'sign is required')
  if (!verifySign(params, config.appSecret)) {
    throw new Refusal(SANDBOX_CODES.BAD_SIGN, 'sign does not match the parameters (expected lower-case hex sha1/sha256/sha512 of the sorted raw parameters plus appsecret)')
  }
}
