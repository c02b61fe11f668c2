/**
 * Compose variable interpolation, as `docker stack deploy` applies it to stack.yml: `$$`, `$VAR`, `${VAR}`,
 * `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`. A required variable without a value
 * throws, naming it, as docker does.
 */

/** Interpolates one string. */
export function interpolate(text: string, env: Record<string, string | undefined>): string {
  const pattern = /\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g
  return text.replace(
    pattern,
    (_match: string, dollar?: string, braced?: string, op?: string, arg?: string, bare?: string) => {
      if (dollar) return '$'
      const name = (braced ?? bare) as string
      const value = env[name]
      if (!op) return value ?? ''
      const unset = op.startsWith(':') ? !value : value === undefined
      if (op.endsWith('-')) return unset ? (arg ?? '') : (value as string)
      if (unset) throw new Error(`required variable ${name} is missing a value: ${arg}`)
      return value as string
    }
  )
}

/** Interpolates every string value (as `docker stack` does after parsing, so comments stay untouched). */
export function interpolateValues(value: unknown, env: Record<string, string | undefined>): unknown {
  if (typeof value === 'string') return interpolate(value, env)
  if (Array.isArray(value)) return value.map((item) => interpolateValues(item, env))
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateValues(v, env)]))
  }
  return value
}
