// The packet codec: parse, rewrite and build frames in place on Uint8Array/Buffer memory at
// explicit offsets, allocating nothing per packet. Every function returns a number: Reason.Ok
// (0), a length or offset (>= 0), or a negative Reason code; none throws on hostile input.
//
// Receive:    parseFrame(buf, off, end, info)            Ethernet/VLAN -> ARP | IPv4/IPv6 -> L4
//             parseIcmpError(buf, outer, inner)          the packet quoted by an ICMP error
//             parseNeighborDiscovery(buf, info)          NS/NA validity and options
//             decapsulate(buf, outer, inner, guePort)    IPIP / IPv6-in-IP / GUE / GRE (vsrs)
// Forward:    decrementTtl4 / decrementHopLimit6         TtlExceeded when the sender gets ICMP
//             natRewriteDest / natRewriteSource          NAT (§6.1), incremental checksums
//             natIcmpIn / natIcmpOut                     ICMP error translation (§7.1, §7.2)
//             setMacAddresses, prependEthernet           DR next hop, encapsulated frames
//             encapsulate(buf, inner, spec, ipId, sport) TUN (§6.3), headers built in headroom
// Answer:     buildIcmpError / buildIcmpErrorFrame       unreachable, frag-needed, time exceeded
//             buildArpReplyTo, buildArpRequest           ARP for VIPs and next hops
//             buildNeighborAdvertReply, buildNeighborSolicit
//             icmpEchoToReply                            ping, in place
// Checksums:  onesSum, internetChecksum, pseudoSum4/6, csumReplace16/32/128, crc32c,
//             verifyL4Checksum, recomputeL4Checksum
export * from './arp.js';
export * from './bytes.js';
export * from './checksum.js';
export * from './constants.js';
export * from './ethernet.js';
export * from './frame.js';
export * from './gre.js';
export * from './gue.js';
export * from './icmp.js';
export * from './icmp-error.js';
export * from './info.js';
export * from './ipv4.js';
export * from './ipv6.js';
export * from './nat.js';
export * from './nd.js';
export * from './reasons.js';
export * from './tcp.js';
export * from './tunnel.js';
export * from './udp.js';
