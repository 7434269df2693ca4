import { ConfigError } from './errors'

function checkSecret(secret: unknown, label: string): string {
  if (typeof secret !== 'string' || secret.trim() === '') {
    throw new ConfigError(`${label} is missing or blank: pass the app secret of your Guanaitong application (e.g. from process.env.GAT_APPSECRET)`)
  }
  if (secret !== secret.trim()) {
    throw new ConfigError(`${label} has leading or trailing whitespace (probably copied with a newline): trim it`)
  }
  return secret
}

/**
 * The app secret as a checked list: one secret, or several during a rotation (the first signs).
 * Shared by `guanaitong()` and `createClient()`, so both refuse the same mistakes alike.
 */
export function checkSecrets(appSecret: unknown): string[] {
  if (!Array.isArray(appSecret)) return [checkSecret(appSecret, 'appSecret')]
  if (appSecret.length === 0) throw new ConfigError('appSecret is an empty list: give at least one secret (the first signs)')
  return appSecret.map((secret, i) => checkSecret(secret, `appSecret[${i}]`))
}
