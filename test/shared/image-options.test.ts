import { describe, expect, it } from 'vitest'
import { canonicalOptions, negotiateFormat, parseImageOptions } from '#shared/images.ts'

const parse = (segment: string) => {
  const result = parseImageOptions(segment)
  if (!result.ok) throw new Error(`${result.option}: ${result.message}`)
  return result.options
}
const key = (segment: string) => canonicalOptions(parse(segment))

describe('image options', () => {
  it('fills in defaults', () => {
    expect(parse('_')).toEqual({ fit: 'scale-down', gravity: 'auto', format: 'auto', metadata: 'none' })
    expect(parse('')).toEqual(parse('_'))
  })

  it('takes every Cloudflare option', () => {
    expect(
      parse(
        'width=400,height=300,fit=cover,gravity=top,format=webp,quality=70,dpr=1,background=%23ff0000,rotate=90,blur=5,sharpen=2,metadata=copyright'
      )
    ).toEqual({
      width: 400,
      height: 300,
      fit: 'cover',
      gravity: 'top',
      format: 'webp',
      quality: 70,
      background: '#ff0000',
      rotate: 90,
      blur: 5,
      sharpen: 2,
      metadata: 'copyright',
    })
  })

  it.each([
    ['order', 'width=400,format=webp', 'format=webp,width=400'],
    ['aliases', 'w=400,h=300,q=80,f=png', 'width=400,height=300,quality=80,format=png'],
    ['dpr folded into pixel sizes', 'width=400,dpr=2', 'width=800'],
    ['dpr with height', 'height=150,dpr=1.5', 'height=225'],
    ['gravity where nothing is cropped', 'width=10,fit=contain,gravity=top', 'width=10,fit=contain'],
    ['colour spellings', 'fit=pad,width=5,background=%23FFF', 'fit=pad,width=5,background=%23ffffff'],
    ['opaque alpha dropped', 'background=%23ffffffff', 'background=white'],
    ['rotate=0 and blur=0 mean nothing', 'rotate=0,blur=0,sharpen=0', '_'],
    ['blur rounded to a whole radius', 'blur=100.1', 'blur=100'],
    ['blur of many decimals', 'blur=99.999999999', 'blur=100'],
    ['blur under half a pixel is none', 'blur=0.4', '_'],
    ['sharpen rounded to a half step', 'sharpen=1.3', 'sharpen=1.5'],
    ['sharpen of many decimals', 'sharpen=2.0000001', 'sharpen=2'],
    ['sharpen under a quarter is none', 'sharpen=0.2', '_'],
  ])('normalises %s so equal transforms share a key', (_case, a, b) => {
    expect(key(a)).toBe(key(b))
  })

  it('keeps different transforms apart', () => {
    expect(key('width=400')).not.toBe(key('width=401'))
    expect(key('width=400,fit=cover,gravity=top')).not.toBe(key('width=400,fit=cover,gravity=bottom'))
  })

  it('caps sizes after dpr at 8192', () => {
    expect(parse('width=8000,dpr=4').width).toBe(8192)
  })

  it('keeps blur and sharpen to a finite set of values', () => {
    const blurs = new Set(Array.from({ length: 2501 }, (_, i) => key(`blur=${(i / 10).toFixed(1)}`)))
    expect(blurs.size).toBe(251) // none, then 1..250
    const sharpens = new Set(Array.from({ length: 1001 }, (_, i) => key(`sharpen=${(i / 100).toFixed(2)}`)))
    expect(sharpens.size).toBe(21) // none, then 0.5..10 by 0.5
  })

  it('takes a box up to 16 megapixels, dpr included', () => {
    expect(parse('width=4000,height=4000,fit=pad')).toMatchObject({ width: 4000, height: 4000 })
    expect(parse('width=8192,fit=pad').width).toBe(8192) // one side: the service checks the area
  })

  it.each([
    ['width=8192,height=8192,fit=pad,format=webp,blur=100.1', 'width'],
    ['width=4096,height=4096', 'width'],
    ['height=5000,width=3300', 'width'],
    ['width=2048,height=2048,dpr=4', 'width'],
  ])('refuses %s as more than 16 megapixels', (segment, option) => {
    const result = parseImageOptions(segment)
    expect(result).toMatchObject({ ok: false, option })
    if (!result.ok) expect(result.message).toMatch(/at most 16000000 pixels; \d+x\d+ is \d+/)
  })

  it.each([
    ['width=0', 'width'],
    ['width=-5', 'width'],
    ['width=8193', 'width'],
    ['width=12.5', 'width'],
    ['width=abc', 'width'],
    ['height=1e3', 'height'],
    ['quality=0', 'quality'],
    ['quality=101', 'quality'],
    ['dpr=5', 'dpr'],
    ['dpr=0.5', 'dpr'],
    ['fit=stretch', 'fit'],
    ['gravity=face', 'gravity'],
    ['format=gif', 'format'],
    ['metadata=all', 'metadata'],
    ['rotate=45', 'rotate'],
    ['blur=300', 'blur'],
    ['sharpen=11', 'sharpen'],
    ['background=red', 'background'],
    ['background=%23gggggg', 'background'],
    ['zoom=2', 'zoom'],
    ['width', 'width'],
    ['width=', 'width'],
    ['width=1,width=2', 'width'],
    [',', '(empty)'],
    [Array.from({ length: 17 }, (_, i) => `x${i}=1`).join(','), '(options)'],
  ])('refuses %s, naming %s', (segment, option) => {
    const result = parseImageOptions(segment)
    expect(result.ok).toBe(false)
    if (!result.ok) expect(result.option).toBe(option)
  })
})

describe('format negotiation', () => {
  it.each([
    ['image/avif,image/webp,image/*,*/*;q=0.8', 'avif'],
    ['image/webp,*/*', 'webp'],
    ['image/png,image/*;q=0.8', 'original'],
    ['*/*', 'original'],
    [undefined, 'original'],
  ])('auto with Accept %s gives %s', (accept, format) => {
    expect(negotiateFormat('auto', accept)).toBe(format)
  })

  it('leaves an explicit format alone', () => {
    expect(negotiateFormat('png', 'image/avif')).toBe('png')
  })
})
