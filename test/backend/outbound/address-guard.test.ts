import { describe, expect, it } from 'vitest'
import { blockedAddressReason } from '../../../backend/outbound/address-guard.ts'

describe('address guard', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['0.0.0.0', 'unspecified'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['192.168.0.1', 'private'],
    ['169.254.169.254', 'metadata'],
    ['169.254.1.1', 'linkLocal'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['192.0.2.1', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fe80::1', 'linkLocal'],
    ['fc00::1', 'uniqueLocal'],
    ['fd12:3456::1', 'uniqueLocal'],
    ['fd00:ec2::254', 'metadata'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', /ipv4Mapped of 127\.0\.0\.1 \(loopback\)/],
    ['::ffff:10.0.0.1', /private/],
    ['::ffff:0:127.0.0.1', /loopback/],
    ['64:ff9b::a9fe:a9fe', /metadata/],
    ['64:ff9b:1::1', 'rfc6052'],
    ['2002:7f00:1::1', /6to4 of 127\.0\.0\.1/],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'teredo'],
    ['2001:db8::1', 'reserved'],
    ['::127.0.0.1', /loopback|not global unicast/],
    ['fe80::1%eth0', 'not an IP address'],
    ['0177.0.0.1', 'not an IP address'],
    ['2130706433', 'not an IP address'],
    ['localhost', 'not an IP address'],
  ])('refuses %s (%s)', (address, reason) => {
    const got = blockedAddressReason(address)
    if (typeof reason === 'string') expect(got).toBe(reason)
    else expect(got).toMatch(reason)
  })

  it.each([
    '93.184.216.34',
    '8.8.8.8',
    '104.16.0.1',
    '2606:4700::6810:84e5',
    '2a00:1450:4001:80b::200e',
    '::ffff:93.184.216.34',
    '2002:5db8:d822::1',
  ])('allows the public address %s', (address) => {
    expect(blockedAddressReason(address)).toBeNull()
  })
})
