// ipvsadm's command-line rules beyond the golden cases: popt's ways of writing options, the C
// parsers behind the values, and the order in which validation messages win.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { atoi, inetAton, inetPton4, stringToNumber } from '../../../src/cli/vsadm/inet.js';
import { ServicesDb, StaticResolver } from '../../../src/cli/vsadm/names.js';
import { parseServiceAddress } from '../../../src/cli/vsadm/parse.js';
import { PoptContext } from '../../../src/cli/vsadm/popt.js';
import { DEBIAN_SERVICES, newApi, testResolver, vsadm } from './harness.js';

describe('popt', () => {
  const table = [
    { long: 'list', short: 'L', arg: 'none' as const, tag: 'L' },
    { long: 'numeric', short: 'n', arg: 'none' as const, tag: 'n' },
    { long: 'weight', short: 'w', arg: 'required' as const, tag: 'w' },
    { long: 'persistent', short: 'p', arg: 'optional' as const, tag: 'p' },
  ];
  const all = (args: string[]) => {
    const c = new PoptContext(args, table);
    const out: string[] = [];
    for (;;) {
      const r = c.getNextOpt();
      if (r.kind === 'end') break;
      if (r.kind === 'error') {
        out.push(`error ${r.code} at ${c.badOption()}`);
        break;
      }
      out.push(r.arg === null ? r.tag : `${r.tag}=${r.arg}`);
    }
    let a = c.getArg();
    while (a !== null) {
      out.push(`leftover ${a}`);
      a = c.getArg();
    }
    return out;
  };

  test('bundles of short options, arguments glued or after "="', () => {
    assert.deepEqual(all(['-Ln']), ['L', 'n']);
    assert.deepEqual(all(['-Lw5']), ['L', 'w=5']);
    assert.deepEqual(all(['-w=5']), ['w=5']);
    assert.deepEqual(all(['-L=n']), ['L', 'n']);
    assert.deepEqual(all(['-nw', '7']), ['n', 'w=7']);
  });

  test('long options: "--opt value" and "--opt=value", exact names only', () => {
    assert.deepEqual(all(['--weight', '5', '--weight=6']), ['w=5', 'w=6']);
    assert.deepEqual(all(['--numeric=1']), ['error UNWANTEDARG at --numeric=1']);
    assert.deepEqual(all(['--num']), ['error BADOPT at --num']);
    // a single dash never names a long option: "-list" is -l -i -s -t
    assert.deepEqual(all(['-Ln', '-list']), ['L', 'n', 'error BADOPT at -list']);
  });

  test('a required argument takes the next word whatever it is', () => {
    assert.deepEqual(all(['-w', '-L']), ['w=-L']);
    assert.deepEqual(all(['-L', '-w']), ['L', 'error NOARG at -w']);
  });

  test('the optional argument (-p) never takes a word starting with "-"', () => {
    assert.deepEqual(all(['-p', '600', '-L']), ['p=600', 'L']);
    assert.deepEqual(all(['-p', '-L']), ['p', 'L']);
    assert.deepEqual(all(['-p']), ['p']);
    assert.deepEqual(all(['-p600']), ['p=600']);
    assert.deepEqual(all(['--persistent=30']), ['p=30']);
    assert.deepEqual(all(['-p', 'x']), ['p=x']);
  });

  test('leftovers: words, "-" alone, everything after "--"', () => {
    assert.deepEqual(all(['a', '-L', '-', '--', '-n', 'b']), ['L', 'leftover a', 'leftover -', 'leftover -n', 'leftover b']);
  });
});

describe('C parsers', () => {
  test('inet_aton accepts the short, octal and hex forms', () => {
    assert.equal(inetAton('10.1'), 0x0a000001);
    assert.equal(inetAton('10.1.2'), 0x0a010002);
    assert.equal(inetAton('0x0a000001'), 0x0a000001);
    assert.equal(inetAton('012.0.0.1'), 0x0a000001);
    assert.equal(inetAton('4294967295'), 0xffffffff);
    assert.equal(inetAton('1.2.3.4 trailing'), 0x01020304);
    for (const bad of ['', '1.2.3.4.5', '1.2.3.256', '1.2.65536', '08.1.1.1', '0x', '1..2', 'a.b.c.d', '1.2.3.4x', '4294967296']) {
      assert.equal(inetAton(bad), null, bad);
    }
  });

  test('inet_pton(AF_INET) is strict', () => {
    assert.equal(inetPton4('224.0.0.81'), 0xe0000051);
    assert.equal(inetPton4('224.0.0.081'), null);
    assert.equal(inetPton4('224.0.81'), null);
  });

  test('string_to_number is strtol over the whole string', () => {
    assert.equal(stringToNumber('42', 0, 100), 42);
    assert.equal(stringToNumber(' +42', 0, 100), 42);
    assert.equal(stringToNumber('42 ', 0, 100), -1);
    assert.equal(stringToNumber('', 0, 100), -1);
    assert.equal(stringToNumber('-0', 0, 100), 0);
    assert.equal(stringToNumber('99999999999999999999', 0, 100), -1);
  });

  test('atoi reads a leading number', () => {
    assert.equal(atoi('64'), 64);
    assert.equal(atoi('64abc'), 64);
    assert.equal(atoi('abc'), 0);
    assert.equal(atoi(' -3'), -3);
  });

  test('service addresses: brackets, bare IPv6, last colon, names', async () => {
    const r = testResolver;
    assert.deepEqual(await parseServiceAddress('198.18.0.1:http', 6, r).then((p) => p && [p.af, `${p.addr}`, p.port]), [4, '198.18.0.1', 80]);
    assert.deepEqual(await parseServiceAddress('[2001:db8::1]:53', 17, r).then((p) => p && [p.af, `${p.addr}`, p.port]), [6, '2001:db8::1', 53]);
    // a bare IPv6 literal has no port, whatever it ends with
    assert.deepEqual(await parseServiceAddress('2001:db8::1:80', 6, r).then((p) => p && [p.af, `${p.addr}`, p.port]), [6, '2001:db8::1:80', null]);
    // "[1.2.3.4]:80" is 1.2.3.4 without a port (the port is looked for inside the brackets)
    assert.deepEqual(await parseServiceAddress('[1.2.3.4]:80', 6, r).then((p) => p && [p.af, `${p.addr}`, p.port]), [4, '1.2.3.4', null]);
    assert.deepEqual(await parseServiceAddress('10.1:8080', 6, r).then((p) => p && [`${p.addr}`, p.port]), ['10.0.0.1', 8080]);
    // service names are per protocol: mdns is UDP only
    assert.equal(await parseServiceAddress('1.2.3.4:mdns', 6, r), null);
    assert.equal((await parseServiceAddress('1.2.3.4:mdns', 17, r))?.port, 5353);
    for (const bad of ['12345', '', '[2001:db8::1]', '[2001:db8::1]80', '1.2.3.4:65536', '1.2.3.4:', 'nosuchhost:80']) {
      assert.equal(await parseServiceAddress(bad, 6, r), null, bad);
    }
  });

  test('host names resolve to IPv4 through the resolver', async () => {
    const r = new StaticResolver(ServicesDb.fromText(DEBIAN_SERVICES), new Map([['web1', 0xc6130002]]));
    const p = await parseServiceAddress('web1:http', 6, r);
    assert.deepEqual(p && [`${p.addr}`, p.port], ['198.19.0.2', 80]);
  });
});

describe('validation order and messages', () => {
  const expectFail = async (args: string, err: string, status = 2) => {
    const { api } = newApi();
    const r = await vsadm(api, args.split(' '));
    assert.deepEqual({ err: r.err, status: r.status, out: r.out }, { err, status, out: '' }, args);
  };

  test('the first option must be a command', async () => {
    await expectFail('-t 1.2.3.4:80 -A', "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n", 255);
    await expectFail('--foo', "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n", 255);
    await expectFail('--list=1', "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n", 255);
    // words before the first option do not count as options
    await expectFail('foo -L -n', 'unexpected argument foo\n');
  });

  test('the word quoted for a second command is the last one read', async () => {
    await expectFail('-LA', "invalid option `-LA'\n");
    await expectFail('-L --start-daemon master', "invalid option `master'\n");
    await expectFail('-L -h', "invalid option `-h'\n");
  });

  test('popt errors after the command: "<word>: <text>", status 255', async () => {
    await expectFail('-L -t', '-t: missing argument\n', 255);
    await expectFail('-L --numeric=yes', '--numeric=yes: option does not take an argument\n', 255);
    await expectFail('-L -nq', '-nq: unknown option\n', 255);
  });

  test('values are checked in command-line order, before the matrix', async () => {
    await expectFail('-a -w x -s rr', 'illegal weight specified\n');
    await expectFail('-A -s rr -s rr -w x', "multiple 'scheduler' options specified\n");
    await expectFail('-a -t 1.2.3.4:80 -r 1.2.3.5 -i -g', "multiple 'forwarding-method' options specified\n");
    await expectFail('-A -t 1.2.3.4:80 -u 1.2.3.4:53', "multiple 'service-address' options specified\n");
    await expectFail('-A -f 1 -t 1.2.3.4:80', "multiple 'service-address' options specified\n");
  });

  test('--set values, then leftovers, then scheduler flags, then the matrix', async () => {
    await expectFail('--set 1 2 3 4', 'unexpected argument 4\n');
    await expectFail('--set 1 2 3 -n', "Illegal 'numeric' option with the 'set' command\n");
    await expectFail('-A -b bogus extra', 'unexpected argument extra\n');
    await expectFail('-A -b bogus', "invalid scheduler flag `bogus'\n");
    await expectFail('-A -b mh-port -s mh', "You need to supply the 'service-address' option for the 'add-service' command\n");
    await expectFail('-A -t 1.2.3.4:80 -b mh-port', "incompatible scheduler flag `mh-port'\n");
    await expectFail('-A -t 1.2.3.4:80 -s sh -b mh-port', "incompatible scheduler flag `mh-port'\n");
  });

  test('the matrix is walked in option-index order', async () => {
    // both 'numeric' (0) and 'service-address' (2) are wrong for -C; numeric is reported
    await expectFail('-C -t 1.2.3.4:80 -n', "Illegal 'numeric' option with the 'flush' command\n");
    // among the list command's exclusive options the later index is named first
    await expectFail('-L --daemon -c', "The option 'daemon' conflicts with the 'connection' option in the 'list' command\n");
    await expectFail('-L --timeout --daemon', "The option 'daemon' conflicts with the 'timeout' option in the 'list' command\n");
    await expectFail('-d -t 1.2.3.4:80 -r 1.2.3.5 -w 3', "Illegal 'weight' option with the 'delete-server' command\n");
    await expectFail('--stop-daemon master --mcast-interface lo', "Illegal 'mcast-interface' option with the 'stop-daemon' command\n");
    await expectFail('-Z -n', "Illegal 'numeric' option with the 'zero' command\n");
  });

  test('-6 only after -f, and -M read with the family known so far', async () => {
    await expectFail('-A -6 -f 5', '-6 used before -f\n\n');
    await expectFail('-A -t [2001:db8::1]:80 -p -M 255.255.255.0', 'illegal ipv6 netmask specified\n');
    const { api } = newApi();
    assert.equal((await vsadm(api, '-A -f 5 -6 -p -M 64'.split(' '))).status, 0);
    assert.equal((await vsadm(api, '-L -n -f 5 -6'.split(' '))).out.split('\n')[2], 'FWM  5 IPv6 wlc persistent 360 mask 64');
  });

  test('real-server rules: port forcing, family, tunnel options', async () => {
    const { api } = newApi();
    await vsadm(api, '-A -t 1.2.3.4:80'.split(' '));
    await vsadm(api, '-A -f 9'.split(' '));
    // DR and TUN take the service port; NAT keeps its own; fwmark services keep what was typed
    await vsadm(api, '-a -t 1.2.3.4:80 -r 10.0.0.1:8080 -g'.split(' '));
    await vsadm(api, '-a -t 1.2.3.4:80 -r 10.0.0.2:8080 -i'.split(' '));
    await vsadm(api, '-a -t 1.2.3.4:80 -r 10.0.0.3:8080 -m'.split(' '));
    await vsadm(api, '-a -t 1.2.3.4:80 -r 10.0.0.4 -m'.split(' '));
    await vsadm(api, '-a -f 9 -r 10.0.0.5:8080 -g'.split(' '));
    const r = await vsadm(api, '-S -n'.split(' '));
    assert.equal(
      r.out,
      [
        '-A -t 1.2.3.4:80 -s wlc',
        '-a -t 1.2.3.4:80 -r 10.0.0.1:80 -g -w 1',
        '-a -t 1.2.3.4:80 -r 10.0.0.2:80 -i -w 1 --tun-type ipip',
        '-a -t 1.2.3.4:80 -r 10.0.0.3:8080 -m -w 1',
        '-a -t 1.2.3.4:80 -r 10.0.0.4:80 -m -w 1',
        '-A -f 9 -s wlc',
        '-a -f 9 -r 10.0.0.5:8080 -g -w 1',
        '',
      ].join('\n'),
    );
    await expectFail('-a -t 1.2.3.4:80 -r 10.0.0.1 -m --tun-csum', 'Tunnel options conflict with forward method\n');
    await expectFail('-a -t 1.2.3.4:80 -r 10.0.0.1 -i --tun-csum', "Illegal 'tun-csum' option with the 'ipip' tunnel type\n");
    await expectFail('-a -t 1.2.3.4:80 -r 10.0.0.1 -i --tun-type gue --tun-port 6080 --tun-remcsum --tun-csum', "The option 'tun-remcsum' conflicts with the 'tun-csum' option in the 'gue' tunnel type\n");
    await expectFail('-a -t 1.2.3.4:80 -r [::1]:80 -g', 'Different address family is allowed only for tunneling servers\n');
  });

  test('zero port and one-packet scheduling', async () => {
    await expectFail('-E -t 1.2.3.4', 'Zero port specified for non-persistent service\n');
    await expectFail('-A -t 1.2.3.4:53 -o', 'One-Packet Scheduling is only for UDP virtual services\n');
    const { api } = newApi();
    assert.equal((await vsadm(api, '-A -t 1.2.3.4 -p'.split(' '))).status, 0);
    assert.equal((await vsadm(api, '-A -f 3 -o'.split(' '))).status, 0);
    assert.equal((await vsadm(api, '-A -u 1.2.3.4:53 -o'.split(' '))).status, 0);
  });

  test('ranges of the numeric options', async () => {
    await expectFail('-A -t 1.2.3.4:80 -p 2678401', "invalid timeout value `2678401' specified\n");
    await expectFail('-a -t 1.2.3.4:80 -r 1.2.3.5 -x -1', 'illegal u_threshold specified\n');
    await expectFail('-a -t 1.2.3.4:80 -r 1.2.3.5 -y 2147483648', 'illegal l_threshold specified\n');
    await expectFail('--start-daemon master --mcast-port 0', 'illegal mcast-port specified\n');
    await expectFail('--start-daemon master --mcast-ttl 256', 'illegal mcast-ttl specified\n');
    await expectFail('--start-daemon master --sync-maxlen 65508', 'illegal sync-maxlen specified\n');
    await expectFail('--start-daemon master --mcast-group ff02::1:x', "invalid IPv6 mcast-group `ff02::1:x'\n");
    await expectFail('--start-daemon master --mcast-group 2001:db8::1', "invalid IPv6 mcast-group `2001:db8::1'\n");
    await expectFail('--set 1 2 2678401', "invalid timeout value `2678401' specified\n");
    await expectFail('-A -f 4294967296', "invalid fwmark value `4294967296' specified\n");
  });

  test('kernel errors print their text and give 255', async () => {
    const { api } = newApi();
    await vsadm(api, '-A -t 1.2.3.4:80'.split(' '));
    // EEXIST is checked before the scheduler exists
    let r = await vsadm(api, '-A -t 1.2.3.4:80 -s nosuch'.split(' '));
    assert.deepEqual([r.err, r.status], ['Service already exists\n', 255]);
    r = await vsadm(api, '-E -t 1.2.3.4:80 -s nosuch'.split(' '));
    assert.deepEqual([r.err, r.status], ['Scheduler or persistence engine not found\n', 255]);
    r = await vsadm(api, '-a -t 1.2.3.4:80 -r 10.0.0.1 -x 5 -y 4'.split(' '));
    assert.deepEqual([r.err, r.status], ['', 0]);
    r = await vsadm(api, '-d -t 1.2.3.5:80 -r 10.0.0.1'.split(' '));
    assert.deepEqual([r.err, r.status], ['Service not defined\n', 255]);
    r = await vsadm(api, '--stop-daemon backup'.split(' '));
    assert.deepEqual([r.err, r.status], ['No daemon is running\n', 255]);
  });

  test('-h and -v end everything with status 0', async () => {
    const { api } = newApi();
    const r = await vsadm(api, ['-v', '-L', '--bogus']);
    assert.deepEqual(r, { out: 'ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n', err: '', status: 0 });
    const h = await vsadm(api, ['--help'], { argv0: '/usr/sbin/ipvsadm' });
    assert.match(h.out, /^ {2}\/usr\/sbin\/ipvsadm -A\|E virtual-service/m);
    assert.equal(h.status, 0);
  });
});
