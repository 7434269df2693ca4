/**
 * A Stryker ignore-plugin: mutants inside human-readable message text are not tested.
 *
 * A message says what went wrong to the person reading a log; tests assert the reason code,
 * the HTTP status and the answer, not the wording. Mutating `"charset … not supported"` to `""`
 * cannot lose or double a payment, so such mutants are reported as ignored (with this reason)
 * rather than counted as survivors. Everything else in a rejection stays mutated: the reason
 * code, the context fields that are logged with it, and the condition that raised it.
 *
 * Ignored:
 * - the message (2nd argument) of `new NotifyRejection(reason, message, context)`;
 * - the message (1st argument) of `new SomethingError(message)`;
 * - the message (1st argument) of `logger.debug/info/warn/error(message, context)`.
 */
const LOG_LEVELS = new Set(['debug', 'info', 'warn', 'error'])
const REASON = 'message text only: tests assert reason codes and answers, not wording (stryker/ignore-messages.mjs)'

function calleeName(callee) {
  if (callee.type === 'Identifier') return callee.name
  if (callee.type === 'MemberExpression' && !callee.computed && callee.property.type === 'Identifier') return callee.property.name
  return undefined
}

function isMessageArgument(path) {
  if (path.listKey !== 'arguments' || typeof path.key !== 'number') return false
  const parent = path.parentPath
  const name = calleeName(parent.node.callee)
  if (parent.isNewExpression()) {
    if (name === 'NotifyRejection') return path.key === 1
    return name !== undefined && /Error$/.test(name) && path.key === 0
  }
  if (parent.isCallExpression()) {
    return path.key === 0 && parent.node.callee.type === 'MemberExpression' && LOG_LEVELS.has(name)
  }
  return false
}

export const strykerPlugins = [
  {
    kind: 'Ignore',
    name: 'message-text',
    value: {
      shouldIgnore(path) {
        return isMessageArgument(path) ? REASON : undefined
      },
    },
  },
]
