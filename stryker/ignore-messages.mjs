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
 * - the message (2nd argument) of `new NotifyRejection(reason, message, context)`, and of the errors
 *   that take their type or field first: `new BodyReadError(type, message)`, `new PayBodyError(type,
 *   message)`, `new ParamError(field, rule)` (the code, type and field stay mutated);
 * - the message (1st argument) of `new SomethingError(message)`;
 * - the message (2nd argument) of `logger.debug/info/warn/error(fields, message)`, and of
 *   `logger[level](fields, message)` where the level is chosen at run time (the level and the
 *   logged fields stay mutated). The package's `Log` and the public `Logger` take pino's order.
 */
const LOG_LEVELS = new Set(['debug', 'info', 'warn', 'error'])
/** Constructors whose message is not their first argument: the position of the message. */
const MESSAGE_AT = { NotifyRejection: 1, BodyReadError: 1, PayBodyError: 1, ParamError: 1 }
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
    if (name !== undefined && Object.hasOwn(MESSAGE_AT, name)) return path.key === MESSAGE_AT[name]
    return name !== undefined && /Error$/.test(name) && path.key === 0
  }
  if (parent.isCallExpression()) {
    const callee = parent.node.callee
    if (path.key !== 1 || callee.type !== 'MemberExpression') return false
    return LOG_LEVELS.has(name) || (callee.computed && callee.object.type === 'Identifier' && callee.object.name === 'logger')
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
