// Host and service names, as ipvsadm gets them from the C library: gethostbyname (IPv4 only,
// first address), gethostbyaddr for listings without -n, getservbyname/getservbyport from
// /etc/services. Everything goes through one NameResolver so tests can inject a fixed one.

import { promises as dns } from 'node:dns';
import { readFileSync } from 'node:fs';
import { IpAddr } from '../../core/addr.js';

export type ServiceProto = 'tcp' | 'udp' | 'sctp';

export interface NameResolver {
  /** gethostbyname for IPv4: the first address (host-order number), or null. */
  hostToAddr(name: string): Promise<number | null>;
  /** gethostbyaddr: the host name of an address, or null (the listing then prints it numeric). */
  addrToHost(addr: IpAddr): Promise<string | null>;
  /** getservbyname(name, proto): the port, or null. */
  serviceToPort(name: string, proto: ServiceProto): number | null;
  /** getservbyport(port, proto): the official service name, or null. */
  portToService(port: number, proto: ServiceProto): string | null;
}

interface ServiceEntry {
  name: string;
  port: number;
  proto: string;
  aliases: string[];
}

/** Parse services(5) text: "name port/proto [aliases...] [# comment]". */
export function parseServices(text: string): ServiceEntry[] {
  const out: ServiceEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const [name, portProto, ...aliases] = line.split(/\s+/);
    const m = /^(\d+)\/(\S+)$/.exec(portProto ?? '');
    if (!name || !m) continue;
    const port = Number(m[1]);
    if (port > 65535) continue;
    out.push({ name, port, proto: m[2]!, aliases });
  }
  return out;
}

/**
 * Used when /etc/services cannot be read: the common entries of Debian's netbase, so that the
 * usual names (http, https, domain, ...) still work in both directions.
 */
export const BUILTIN_SERVICES = `
ftp-data 20/tcp
ftp 21/tcp
ssh 22/tcp
telnet 23/tcp
smtp 25/tcp mail
domain 53/tcp
domain 53/udp
bootps 67/udp
bootpc 68/udp
tftp 69/udp
gopher 70/tcp
finger 79/tcp
http 80/tcp www
kerberos 88/tcp kerberos5 krb5 kerberos-sec
kerberos 88/udp kerberos5 krb5 kerberos-sec
pop3 110/tcp pop-3
sunrpc 111/tcp portmapper
sunrpc 111/udp portmapper
auth 113/tcp authentication tap ident
nntp 119/tcp readnews untp
ntp 123/udp
netbios-ns 137/udp
netbios-dgm 138/udp
netbios-ssn 139/tcp
imap2 143/tcp imap
snmp 161/tcp
snmp 161/udp
snmp-trap 162/udp snmptrap
bgp 179/tcp
irc 194/tcp
ldap 389/tcp
ldap 389/udp
https 443/tcp
https 443/udp
microsoft-ds 445/tcp
syslog 514/udp
submission 587/tcp
ldaps 636/tcp
ldaps 636/udp
rsync 873/tcp
imaps 993/tcp
pop3s 995/tcp
socks 1080/tcp
openvpn 1194/tcp
openvpn 1194/udp
ms-sql-s 1433/tcp
radius 1812/tcp
radius 1812/udp
nfs 2049/tcp
nfs 2049/udp
mysql 3306/tcp
postgresql 5432/tcp postgres
sip 5060/tcp
sip 5060/udp
sip-tls 5061/tcp
sip-tls 5061/udp
mdns 5353/udp
x11 6000/tcp x11-0
http-alt 8080/tcp webcache
`;

export class ServicesDb {
  private readonly byName = new Map<string, number>();
  private readonly byPort = new Map<string, string>();

  constructor(entries: ServiceEntry[]) {
    for (const e of entries) {
      // the first entry wins, as the files backend reads top to bottom
      for (const n of [e.name, ...e.aliases]) {
        const k = `${n}/${e.proto}`;
        if (!this.byName.has(k)) this.byName.set(k, e.port);
      }
      const pk = `${e.port}/${e.proto}`;
      if (!this.byPort.has(pk)) this.byPort.set(pk, e.name);
    }
  }

  static fromText(text: string): ServicesDb {
    return new ServicesDb(parseServices(text));
  }

  /** /etc/services, or the built-in table when it cannot be read. */
  static system(path = '/etc/services'): ServicesDb {
    try {
      return ServicesDb.fromText(readFileSync(path, 'utf8'));
    } catch {
      return ServicesDb.fromText(BUILTIN_SERVICES);
    }
  }

  port(name: string, proto: string): number | null {
    return this.byName.get(`${name}/${proto}`) ?? null;
  }

  name(port: number, proto: string): string | null {
    return this.byPort.get(`${port}/${proto}`) ?? null;
  }
}

/** gethostbyname treats a name made of digits and dots as a number and never looks it up. */
function looksNumeric(name: string): boolean {
  return /^[0-9][0-9.]*$/.test(name);
}

/** The resolver of a real run: the system's resolver (nsswitch via getaddrinfo/getnameinfo). */
export class SystemResolver implements NameResolver {
  private services: ServicesDb | null = null;

  constructor(private readonly servicesPath = '/etc/services') {}

  private db(): ServicesDb {
    this.services ??= ServicesDb.system(this.servicesPath);
    return this.services;
  }

  async hostToAddr(name: string): Promise<number | null> {
    if (name === '' || looksNumeric(name)) return null;
    try {
      const r = await dns.lookup(name, { family: 4 });
      const a = IpAddr.tryParse(r.address);
      return a && a.family === 4 ? a.w0 : null;
    } catch {
      return null;
    }
  }

  async addrToHost(addr: IpAddr): Promise<string | null> {
    try {
      // getnameinfo with NI_NAMEREQD: /etc/hosts, then DNS, like gethostbyaddr
      const r = await dns.lookupService(addr.toString(), 0);
      return r.hostname && r.hostname !== addr.toString() ? r.hostname : null;
    } catch {
      return null;
    }
  }

  serviceToPort(name: string, proto: ServiceProto): number | null {
    return this.db().port(name, proto);
  }

  portToService(port: number, proto: ServiceProto): string | null {
    return this.db().name(port, proto);
  }
}

/** A resolver over fixed tables: no lookups leave the process (tests, and --numeric-only uses). */
export class StaticResolver implements NameResolver {
  constructor(
    private readonly services: ServicesDb,
    private readonly hosts: ReadonlyMap<string, number> = new Map(),
    private readonly reverse: ReadonlyMap<string, string> = new Map(),
  ) {}

  async hostToAddr(name: string): Promise<number | null> {
    return this.hosts.get(name) ?? null;
  }

  async addrToHost(addr: IpAddr): Promise<string | null> {
    return this.reverse.get(addr.toString()) ?? null;
  }

  serviceToPort(name: string, proto: ServiceProto): number | null {
    return this.services.port(name, proto);
  }

  portToService(port: number, proto: ServiceProto): string | null {
    return this.services.name(port, proto);
  }
}

export function protoForServices(protocol: number): ServiceProto | null {
  return protocol === 6 ? 'tcp' : protocol === 17 ? 'udp' : protocol === 132 ? 'sctp' : null;
}
