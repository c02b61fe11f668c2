/**
 * Signed image URLs (imgproxy-style): `s:<signature>` where the signature is the unpadded
 * base64url HMAC-SHA256, under IMAGE_SIGNING_KEY, of `/<options>/<source URL as written>`.
 * Verified with WebCrypto's constant-time verify.
 */
const encoder = new TextEncoder()

async function key(secret: string, usage: 'sign' | 'verify'): Promise<CryptoKey> {
  return crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, [
    usage,
  ])
}

const toBase64Url = (bytes: ArrayBuffer) =>
  btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '')

function fromBase64Url(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]{43}$/.test(text)) return undefined
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '=')
  return Uint8Array.from(binary, (c) => c.charCodeAt(0))
}

export async function signImagePath(secret: string, signed: string): Promise<string> {
  return toBase64Url(await crypto.subtle.sign('HMAC', await key(secret, 'sign'), encoder.encode(signed)))
}

export async function verifyImagePath(
  secret: string,
  signed: string,
  signature: string | undefined
): Promise<boolean> {
  const mac = signature === undefined ? undefined : fromBase64Url(signature)
  if (!mac) return false
  return crypto.subtle.verify('HMAC', await key(secret, 'verify'), mac, encoder.encode(signed))
}
