/**
 * Which URLs a service may fetch: an allowlist from its environment (IMAGE_SOURCE_HOSTS,
 * RELEASE_ASSET_HOSTS), and the
 * check of one URL against it, made before connecting and again on every redirect (fetch.ts).
 *
 * Entries, comma-separated:
 *   `media.dndbeyond.com`   that host exactly, on the scheme's default port (80, 443)
 *   `*.dndbeyond.com`       any subdomain, at any depth (not the apex: list it too if wanted), default port
 *   `127.0.0.1:18801`       an explicit origin: an IP literal with a port ([::1]:18801 for IPv6). The
 *                           only way to reach a private or loopback address, and only that address and
 *                           port; this is how tests and the local platform reach their local origins.
 * Host names never permit private addresses: every address they resolve to is still checked
 * (address-guard.ts, in fetch.ts), so `localhost` on the list reaches nothing.
 */
import { isIP } from 'node:net'
import { blockedAddressReason } from './address-guard.ts'

export interface Allowlist {
  /** The environment variable it came from: refusals name it, so an operator knows where to look. */
  variable: string
  hosts: ReadonlySet<string>
  /** `.dndbeyond.com` for `*.dndbeyond.com`. */
  suffixes: readonly string[]
  /** `<ip>:<port>` of the explicit origins, IPv6 in brackets as the URL parser writes it. */
  origins: ReadonlySet<string>
}

/** Why a URL is refused before anything is fetched. */
export type UrlRefusal = 'invalid_url' | 'scheme_not_allowed' | 'host_not_allowed' | 'address_blocked'

export type UrlCheck =
  | {
      ok: true
      url: URL
      /** Set for an explicit origin: connect here, without DNS and without the address guard. */
      pinnedAddress?: string
    }
  | { ok: false; code: UrlRefusal; message: string }

const defaultPorts: Record<string, number> = { 'http:': 80, 'https:': 443 }

export function parseAllowlist(
  text: string,
  variable: string
): { ok: true; allowlist: Allowlist } | { ok: false; message: string } {
  const hosts = new Set<string>()
  const suffixes: string[] = []
  const origins = new Set<string>()
  for (const raw of text.split(',')) {
    const entry = raw.trim().toLowerCase()
    if (entry === '') continue
    const match = /^(\*\.)?(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::(\d{1,5}))?$/.exec(entry)
    let hostname: string | undefined
    try {
      // The URL parser normalises the host as it will normalise fetched URLs (IPv6 compression, IPv4 forms).
      if (match) hostname = new URL(`http://${match[2]}`).hostname
    } catch {
      hostname = undefined
    }
    if (!match || !hostname)
      return { ok: false, message: `"${entry}" must be a host name, *.domain or ip:port` }
    const [, wildcard, , port] = match
    const literal = isIP(unbracket(hostname)) !== 0
    if (wildcard) {
      if (literal || port || !hostname.includes('.'))
        return { ok: false, message: `"${entry}": a wildcard needs a domain name with a dot and no port` }
      suffixes.push(`.${hostname}`)
    } else if (port !== undefined) {
      if (!literal)
        return {
          ok: false,
          message: `"${entry}": a port may only follow an IP address (an explicit local origin)`,
        }
      if (Number(port) < 1 || Number(port) > 65535) return { ok: false, message: `"${entry}": bad port` }
      origins.add(`${hostname}:${Number(port)}`)
    } else {
      hosts.add(hostname)
    }
  }
  if (hosts.size + suffixes.length + origins.size === 0)
    return { ok: false, message: 'must name at least one host' }
  return { ok: true, allowlist: { variable, hosts, suffixes, origins } }
}

/**
 * Checks a URL against the allowlist: scheme, credentials, host, and an IP literal's address.
 * `what` names the URL in messages ("the source").
 */
export function checkUrl(allowlist: Allowlist, source: string, what: string): UrlCheck {
  let url: URL
  try {
    url = new URL(source)
  } catch {
    return { ok: false, code: 'invalid_url', message: `${what} is not an absolute URL` }
  }
  if (!(url.protocol in defaultPorts))
    return {
      ok: false,
      code: 'scheme_not_allowed',
      message: `${what}'s scheme ${url.protocol} is not allowed (http and https only)`,
    }
  if (url.username || url.password)
    return { ok: false, code: 'invalid_url', message: `credentials in the URL of ${what} are not allowed` }

  // The URL parser has already turned 2130706433, 0177.0.0.1 and 0x7f.1 into 127.0.0.1.
  const host = url.hostname
  const address = unbracket(host)
  const refused = {
    ok: false,
    code: 'host_not_allowed',
    message: `${what} host ${host} is not allowed (not in ${allowlist.variable})`,
  } as const
  if (isIP(address) !== 0) {
    const origin = `${host}:${url.port || defaultPorts[url.protocol]}`
    if (allowlist.origins.has(origin)) return { ok: true, url, pinnedAddress: address }
    const reason = blockedAddressReason(address)
    if (reason !== null)
      return {
        ok: false,
        code: 'address_blocked',
        message: `${what}'s address is not allowed (${reason}); ${privateHint(allowlist)}`,
      }
    if (!allowlist.hosts.has(host)) return refused
  } else if (!allowlist.hosts.has(host) && !allowlist.suffixes.some((suffix) => host.endsWith(suffix)))
    return refused
  // The URL parser leaves `port` empty for the scheme's default port.
  if (url.port !== '')
    return {
      ok: false,
      code: 'host_not_allowed',
      message: `${what} port ${url.port} is not allowed (a host name in ${allowlist.variable} is reached on its scheme's default port only)`,
    }
  return { ok: true, url }
}

/** How a private or loopback address is reached after all: names the list's variable, never an address. */
export function privateHint(allowlist: Allowlist): string {
  return `only an explicit ip:port entry in ${allowlist.variable} reaches a private or loopback address`
}

/**
 * The allowlist with `url`'s origin added: as an explicit origin (ip:port) when its host is an IP
 * literal, else as its host name, whose addresses are still checked.
 */
export function allowing(allowlist: Allowlist, url: URL): Allowlist {
  const host = url.hostname.toLowerCase()
  if (isIP(unbracket(host)) === 0) return { ...allowlist, hosts: new Set([...allowlist.hosts, host]) }
  const origin = `${host}:${url.port || defaultPorts[url.protocol]}`
  return { ...allowlist, origins: new Set([...allowlist.origins, origin]) }
}

function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
}
