import { isIP } from 'node:net';

/**
 * Which IP addresses a webhook may reach without `allow_private_network: true` (SSRF). Anything that is not
 * plainly a public unicast address is refused: loopback, private, link-local (cloud metadata lives at
 * 169.254.169.254), CGNAT, multicast, unspecified, documentation/benchmark/reserved ranges, and the IPv6 forms
 * that embed an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4) when the embedded address is refused.
 *
 * Callers pass addresses in canonical form (what `new URL()` and `dns.lookup` produce); decimal, octal and hex
 * IPv4 spellings such as `http://2130706433/` or `http://0177.0.0.1/` are normalised by the WHATWG URL parser
 * to dotted decimal before they get here.
 */

/** [first address as a 32-bit number, prefix length, reason]. */
const V4_REFUSED: [number, number, string][] = [
  [v4('0.0.0.0'), 8, 'unspecified ("this network")'],
  [v4('10.0.0.0'), 8, 'private'],
  [v4('100.64.0.0'), 10, 'carrier-grade NAT (shared address space)'],
  [v4('127.0.0.0'), 8, 'loopback'],
  [v4('169.254.0.0'), 16, 'link-local'],
  [v4('172.16.0.0'), 12, 'private'],
  [v4('192.0.0.0'), 24, 'IETF protocol assignments'],
  [v4('192.0.2.0'), 24, 'documentation'],
  [v4('192.88.99.0'), 24, '6to4 relay anycast'],
  [v4('192.168.0.0'), 16, 'private'],
  [v4('198.18.0.0'), 15, 'benchmarking'],
  [v4('198.51.100.0'), 24, 'documentation'],
  [v4('203.0.113.0'), 24, 'documentation'],
  [v4('224.0.0.0'), 4, 'multicast'],
  [v4('240.0.0.0'), 4, 'reserved (incl. broadcast)'],
];

function v4(text: string): number {
  const parts = text.split('.').map(Number);
  return (((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!) >>> 0;
}

function v4Reason(addr: number): string | null {
  for (const [base, bits, reason] of V4_REFUSED) {
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    if ((addr & mask) >>> 0 === base) return reason;
  }
  return null;
}

/** Eight 16-bit groups of an IPv6 address (zone id dropped), or null if it is not one. */
export function parseIPv6(text: string): number[] | null {
  let s = text.replace(/^\[|\]$/g, '');
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  if (isIP(s) !== 6) return null;
  const lastColon = s.lastIndexOf(':');
  const last = s.slice(lastColon + 1);
  if (last.includes('.')) {
    // A trailing dotted IPv4 part (`::ffff:127.0.0.1`) is two groups written another way.
    const n = v4(last);
    s = `${s.slice(0, lastColon + 1)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const halves = s.split('::');
  const parse = (part: string | undefined) => (part ? part.split(':').map((h) => parseInt(h, 16)) : []);
  const head = parse(halves[0]);
  const tail = parse(halves[1]);
  const groups = halves.length === 2 ? [...head, ...new Array<number>(Math.max(0, 8 - head.length - tail.length)).fill(0), ...tail] : head;
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : null;
}

const embedded = (g: number[], hi: number) => (((g[hi]! << 16) >>> 0) + g[hi + 1]!) >>> 0;
const zeros = (g: number[], from: number, to: number) => g.slice(from, to).every((x) => x === 0);

function v6Reason(g: number[]): string | null {
  if (g.every((x) => x === 0)) return 'unspecified';
  if (zeros(g, 0, 7) && g[7] === 1) return 'loopback';
  const inner = (kind: string, addr: number) => {
    const r = v4Reason(addr);
    return r ? `${kind} ${r}` : null;
  };
  if (zeros(g, 0, 5) && g[5] === 0xffff) return inner('IPv4-mapped', embedded(g, 6));
  if (zeros(g, 0, 4) && g[4] === 0xffff && g[5] === 0) return inner('IPv4-translated', embedded(g, 6));
  if (zeros(g, 0, 6)) return 'IPv4-compatible (deprecated)';
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(g, 2, 6)) return inner('NAT64', embedded(g, 6));
  if (g[0] === 0x2002) return inner('6to4', embedded(g, 1));
  if ((g[0]! & 0xe000) !== 0x2000) {
    // Outside global unicast 2000::/3: unique-local fc00::/7, link-local fe80::/10, multicast ff00::/8, …
    if ((g[0]! & 0xfe00) === 0xfc00) return 'unique-local (private)';
    if ((g[0]! & 0xffc0) === 0xfe80) return 'link-local';
    if ((g[0]! & 0xff00) === 0xff00) return 'multicast';
    return 'reserved';
  }
  if (g[0] === 0x2001 && g[1]! < 0x200) return 'IETF protocol assignments (incl. Teredo)';
  if (g[0] === 0x2001 && g[1] === 0xdb8) return 'documentation';
  return null;
}

/** Why `address` is refused as a webhook target, or null when it is a public unicast address. */
export function refusedAddressReason(address: string): string | null {
  const bare = address.replace(/^\[|\]$/g, '');
  const family = isIP(bare.split('%')[0]!);
  if (family === 4) return v4Reason(v4(bare));
  if (family === 6) {
    const g = parseIPv6(bare);
    return g ? v6Reason(g) : 'not a valid IPv6 address';
  }
  return 'not an IP address';
}

/** A refused target, with a message an operator can act on. Never retried into success by itself. */
export class RefusedAddressError extends Error {
  readonly code = 'ERR_TALLY_REFUSED_ADDRESS';
  constructor(host: string, address: string, reason: string) {
    super(`${host}${host === address ? '' : ` (${address})`} is ${reason}; set allow_private_network: true on the webhook to allow it`);
    this.name = 'RefusedAddressError';
  }
}
