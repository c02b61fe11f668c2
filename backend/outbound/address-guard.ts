/**
 * Which IP addresses an outbound fetch may connect to: public unicast only. Everything is refused
 * unless it is positively a global unicast address, so ranges nobody thought of stay closed.
 *
 * IPv6 forms that embed an IPv4 address (IPv4-mapped ::ffff:a.b.c.d, SIIT ::ffff:0:a.b.c.d, NAT64
 * 64:ff9b::/96, 6to4 2002::/16) are judged by the IPv4 address they reach. Teredo (2001::/32) hides its
 * client address, so it is refused outright.
 */
import ipaddr from 'ipaddr.js'

/** Cloud metadata endpoints, named in the reason so a log line says what was attempted. */
const metadataAddresses = new Set(['169.254.169.254', 'fd00:ec2::254'])

const globalUnicastV6 = ipaddr.parseCIDR('2000::/3')

/** Why `address` must not be connected to, or null when it is a public unicast address. */
export function blockedAddressReason(address: string): string | null {
  let ip: ipaddr.IPv4 | ipaddr.IPv6
  // Only canonical forms: the inet_aton spellings (0177.0.0.1, 2130706433) that ipaddr.parse also
  // accepts are turned into dotted quads by the URL parser before they get here, never by us.
  if (ipaddr.IPv4.isValidFourPartDecimal(address)) ip = ipaddr.IPv4.parse(address)
  else if (ipaddr.IPv6.isValid(address) && !address.includes('%')) ip = ipaddr.IPv6.parse(address)
  else return 'not an IP address'

  const normalized = ip.toNormalizedString()
  if (metadataAddresses.has(ip.kind() === 'ipv6' ? ip.toString() : normalized)) return 'metadata'
  if (ip.kind() === 'ipv4') {
    const range = ip.range()
    return range === 'unicast' ? null : range
  }

  const v6 = ip as ipaddr.IPv6
  const range = v6.range()
  const embedded = embeddedIPv4(v6, range)
  if (embedded) {
    const reason = blockedAddressReason(embedded.toString())
    return reason === null ? null : `${range} of ${embedded.toString()} (${reason})`
  }
  if (range !== 'unicast') return range
  if (!v6.match(globalUnicastV6)) return 'not global unicast'
  return null
}

function embeddedIPv4(ip: ipaddr.IPv6, range: string): ipaddr.IPv4 | null {
  const parts = ip.parts
  const fromWords = (hi: number, lo: number) => new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff])
  switch (range) {
    case 'ipv4Mapped':
    case 'rfc6145':
      return fromWords(parts[6]!, parts[7]!)
    case 'rfc6052':
      // 64:ff9b::/96 carries the address in its last 32 bits; 64:ff9b:1::/48 (local-use) does not.
      return parts[2] === 0 ? fromWords(parts[6]!, parts[7]!) : null
    case '6to4':
      return fromWords(parts[1]!, parts[2]!)
    default:
      return null
  }
}
