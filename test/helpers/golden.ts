// Where the golden fixtures (captures of the real kernel IPVS and ipvsadm) live in the repo.
export const GOLDEN_IPVSADM = new URL('../fixtures/golden/ipvsadm/', import.meta.url).pathname;
export const GOLDEN_SCHEDULING = new URL('../fixtures/golden/scheduling/', import.meta.url).pathname;

/**
 * The ipvsadm commands the golden recording ran (uncaptured) to build the table its `list` and
 * `proc_*` cases show, as it typed them (service names included).
 */
export const GOLDEN_IPVSADM_SETUP: readonly string[] = [
  '-A -t 198.18.0.1:80 -s wlc',
  '-a -t 198.18.0.1:80 -r 198.19.0.2:80 -m -w 1',
  '-a -t 198.18.0.1:80 -r 198.19.0.3:80 -g -w 0',
  '-a -t 198.18.0.1:80 -r 198.19.0.4:8080 -m -w 5 -x 1000 -y 750',
  '-a -t 198.18.0.1:80 -r 198.18.9.9:80 -m -w 2',
  '-A -t 198.18.0.2:443 -s rr -p 360 -M 255.255.255.0',
  '-a -t 198.18.0.2:443 -r 198.19.0.5 -i -w 5',
  '-A -u 198.18.0.3:53 -s sh -o -b sh-fallback,sh-port',
  '-a -u 198.18.0.3:53 -r 198.19.0.53:5353 -m -w 3',
  '-A -t [2001:db8::80]:80 -s rr',
  '-a -t [2001:db8::80]:80 -r [2001:db8::a0a0]:80 -m -w 1',
  '-A -t [2001:db8::443]:443 -s wlc -p 1200 -M 64',
  '-a -t [2001:db8::443]:443 -r [2001:db8::a0a1]:443 -g -w 7',
  '-A -f 1 -s wrr',
  '-a -f 1 -r 198.19.0.6 -g -w 1',
  '-A -f 2 -6 -s mh -b mh-fallback,mh-port -p 600 -M 64',
  '-a -f 2 -6 -r [2001:db8::b]:0 -g -w 1',
  '-A -f 4294967295 -s lc -p',
  '-A -t 198.18.0.4:80 -s rr',
  '-a -t 198.18.0.4:80 -r 198.19.0.7:80 -i --tun-type gue --tun-port 6080 --tun-nocsum',
  '-a -t 198.18.0.4:80 -r 198.19.0.8 -i --tun-type gre --tun-csum',
  '-a -t 198.18.0.4:80 -r 198.19.0.9 -i --tun-type gue --tun-port 6081 --tun-remcsum',
  '-a -t 198.18.0.4:80 -r 198.19.0.10 -m',
  '-a -t 198.18.0.4:80 -r 198.19.0.11 -i --tun-type gue --tun-port 6082 --tun-csum',
  '-a -t 198.18.0.4:80 -r 198.19.0.12 -i --tun-type gre',
  '-a -t 198.18.0.4:80 -r 198.19.0.13:9999 -i --tun-type ipip',
  '-a -t 198.18.0.4:80 -r [2001:db8::c]:80 -i',
  '-A -u 198.18.0.5:5060 -s rr -p 1800 --pe sip',
  '-a -u 198.18.0.5:5060 -r 198.19.0.14:5060 -m',
  '-A --sctp-service 198.18.0.6:9000 -s rr',
  '-a --sctp-service 198.18.0.6:9000 -r 198.19.0.15:9001 -m -w 65535',
  '-A -t 198.18.0.7:80 -s rr -b flag-1,flag-2,flag-3',
  '-A -t 198.18.0.8:0 -s sed -p 30',
  '-a -t 198.18.0.8:0 -r 198.19.0.16 -m -w 2147483647',
  '-A -t 198.18.0.9:http -s nq',
  '-a -t 198.18.0.9:http -r 198.19.0.17:https -m',
  '-A -t 198.18.0.10:80 -p -s fo',
  ...['rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'sed', 'nq', 'fo', 'ovf', 'mh'].flatMap((s, k) => [
    `-A -t 198.18.1.${20 + k}:80 -s ${s}`,
    `-a -t 198.18.1.${20 + k}:80 -r 198.19.1.${20 + k}:80 -m -w ${(20 + k) % 5}`,
  ]),
  '-A -u 198.18.0.11:53 -s rr -o',
  '-A -f 3 -s rr -o',
  '-A -u 198.18.0.12:53 -s rr -p 60 -o',
];

/** The same commands with numeric ports (for runners without a services database). */
export const GOLDEN_IPVSADM_SETUP_NUMERIC: readonly string[] = GOLDEN_IPVSADM_SETUP.map((c) => c.replaceAll(':https', ':443').replaceAll(':http', ':80'));
