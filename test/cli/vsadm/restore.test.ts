// -R and -S: restore's tokenizer (config_stream.c), its abort and status rules, and the
// save → flush → restore round trip.

import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { CharReader, readConfigLine } from '../../../src/cli/vsadm/restore.js';
import { runVsadm } from '../../../src/cli/vsadm/run.js';
import { TCP_ACK } from '../../../src/core/proto/tcp.js';
import { Client } from '../../helpers/director.js';
import { newApi, testResolver, vsadm } from './harness.js';

async function lines(input: string | string[]): Promise<(string[] | null)[]> {
  const r = new CharReader(typeof input === 'string' ? input : Readable.from(input.map((s) => Buffer.from(s))));
  const out: (string[] | null)[] = [];
  for (;;) {
    const l = await readConfigLine(r, 'ipvsadm');
    out.push(l);
    if (l === null) return out;
  }
}

describe('restore tokenizer', () => {
  test('blanks, tabs and CR separate; newline ends a line; every "ipvsadm" is dropped', async () => {
    assert.deepEqual(await lines('ipvsadm -A\t-t  1.2.3.4:80 ipvsadm\r\n\n  -C\n'), [['ipvsadm', '-A', '-t', '1.2.3.4:80'], ['ipvsadm'], ['ipvsadm', '-C'], null]);
  });

  test('"#" is not a comment', async () => {
    assert.deepEqual(await lines('# comment\n-C # x\n'), [['ipvsadm', '#', 'comment'], ['ipvsadm', '-C', '#', 'x'], null]);
  });

  test('the last line needs no newline, but trailing blanks there lose it', async () => {
    assert.deepEqual(await lines('-C\n-A -t 1.2.3.4:80'), [['ipvsadm', '-C'], ['ipvsadm', '-A', '-t', '1.2.3.4:80'], null]);
    assert.deepEqual(await lines('-C\n-A -t 1.2.3.4:80 '), [['ipvsadm', '-C'], ['ipvsadm', '-A', '-t', '1.2.3.4:80'], null]);
    assert.deepEqual(await lines('-C\n-A -t 1.2.3.4:80  '), [['ipvsadm', '-C'], null]);
    assert.deepEqual(await lines('ipvsadm'), [null]);
  });

  test('input arriving in pieces (a stream) reads the same; tokens longer than 4096 are cut', async () => {
    assert.deepEqual(await lines(['-A -', 't 1.2.', '3.4:80\n-', 'C\n']), [['ipvsadm', '-A', '-t', '1.2.3.4:80'], ['ipvsadm', '-C'], null]);
    const long = 'x'.repeat(5000);
    assert.deepEqual(await lines(`${long}\n`), [['ipvsadm', 'x'.repeat(4096), 'x'.repeat(904)], null]);
  });
});

describe('restore', () => {
  test('a validation failure ends the restore at once, exit 2', async () => {
    const { api } = newApi();
    const r = await vsadm(api, ['-R'], { stdin: '-A -t 1.2.3.4:80\n-A -t 1.2.3.5:80 -w 1\n-A -t 1.2.3.6:80\n' });
    assert.deepEqual(r, { out: '', err: "Illegal 'weight' option with the 'add-service' command\n", status: 2 });
    assert.equal((await vsadm(api, ['-S', '-n'])).out, '-A -t 1.2.3.4:80 -s wlc\n');
  });

  test('kernel and popt errors are reported and the restore goes on; the last line decides', async () => {
    const { api } = newApi();
    let r = await vsadm(api, ['-R'], { stdin: '-A -t 1.2.3.4:80\n-A -t 1.2.3.4:80\n-L --bogus\n-A -t 1.2.3.5:80\n' });
    assert.deepEqual(r, { out: '', err: 'Service already exists\n--bogus: unknown option\n', status: 0 });
    r = await vsadm(api, ['-R'], { stdin: '-A -t 1.2.3.6:80\n-D -t 9.9.9.9:80\n' });
    assert.deepEqual(r, { out: '', err: 'No such service\n', status: 255 });
  });

  test('listings and -h inside a restore; -R inside -R is refused', async () => {
    const { api } = newApi();
    let r = await vsadm(api, ['-R'], { stdin: '-A -t 1.2.3.4:80\n-L -n -t 1.2.3.4:80\n' });
    assert.equal(r.out, 'Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\nTCP  1.2.3.4:80 wlc\n');
    r = await vsadm(api, ['-R'], { stdin: '-R\n-A -t 1.2.3.9:80\n' });
    assert.deepEqual(r, { out: '', err: "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n", status: 255 });
    r = await vsadm(api, ['-R'], { stdin: '-h\n-A -t 1.2.3.9:80\n' });
    assert.equal(r.status, 0);
    assert.match(r.out, /^ipvsadm v1\.31/);
    assert.equal((await vsadm(api, ['-L', '-n', '-t', '1.2.3.9:80'])).err, 'No such service\n');
  });

  test('stdin as a stream (process.stdin)', async () => {
    const { api } = newApi();
    const stdin = Readable.from([Buffer.from('-A -t 1.2.3.4:80\n-a -t 1.2.3.4:80 -r 10.0.0.1 -m\n')]);
    let err = '';
    const status = await runVsadm(['-R'], { stdout: { write: () => {} }, stderr: { write: (s: string) => (err += s) }, stdin, argv0: 'ipvsadm', resolver: testResolver }, api);
    assert.deepEqual([status, err], [0, '']);
    assert.equal((await vsadm(api, ['-S', '-n'])).out, '-A -t 1.2.3.4:80 -s wlc\n-a -t 1.2.3.4:80 -r 10.0.0.1:80 -m -w 1\n');
  });
});

describe('save and restore', () => {
  const TABLE = [
    '-A -t 10.0.0.1:80 -s wlc',
    '-a -t 10.0.0.1:80 -r 192.168.1.1:8080 -m -w 3',
    '-a -t 10.0.0.1:80 -r 192.168.1.2 -g -w 0',
    '-a -t 10.0.0.1:80 -r [2001:db8::2]:80 -i --tun-type gue --tun-port 6080 --tun-remcsum',
    '-a -t 10.0.0.1:80 -r 192.168.1.3 -i --tun-type gre --tun-csum',
    '-A -u 10.0.0.2:53 -s sh -b sh-port,flag-3 -o',
    '-a -u 10.0.0.2:53 -r 192.168.1.4:5353 -m',
    '-A -t 10.0.0.3:443 -s rr -p 60 -M 255.255.0.0 --pe sip',
    '-A -t [2001:db8::1]:443 -s mh -b mh-fallback -p 120 -M 48',
    '-a -t [2001:db8::1]:443 -r [2001:db8::5]:443 -m -w 2147483647',
    '-A --sctp-service 10.0.0.4:9000 -s fo',
    '-a --sctp-service 10.0.0.4:9000 -r 192.168.1.5:9001 -m',
    '-A -f 7 -s lblcr -p',
    '-a -f 7 -r 192.168.1.6:0 -g',
    '-A -f 8 -6 -s twos',
    '-a -f 8 -6 -r [2001:db8::6]:0 -g -w 4',
    '-A -t 10.0.0.5:0 -s nq -p 30 -M 255.255.255.255',
    '-A -t 10.0.0.6:80 -s ovf -M 255.0.0.0',
  ];

  test('-S -n fed to -R after a flush rebuilds the same table', async () => {
    const { api } = newApi();
    for (const l of TABLE) assert.equal((await vsadm(api, l.split(' '))).err, '', l);
    const saved = await vsadm(api, ['-S', '-n']);
    const listed = await vsadm(api, ['-L', '-n']);
    assert.equal((await vsadm(api, ['-C'])).status, 0);
    assert.equal((await vsadm(api, ['-S', '-n'])).out, '');
    const r = await vsadm(api, ['-R'], { stdin: saved.out });
    assert.deepEqual([r.err, r.status], ['', 0]);
    assert.equal((await vsadm(api, ['-S', '-n'])).out, saved.out);
    assert.equal((await vsadm(api, ['-L', '-n'])).out, listed.out);
  });

  test('-S with names restores too (names resolve back)', async () => {
    const { api } = newApi();
    for (const l of TABLE.slice(0, 7)) await vsadm(api, l.split(' '));
    const saved = await vsadm(api, ['-S']);
    assert.match(saved.out, /^-A -t 10\.0\.0\.1:http -s wlc$/m);
    assert.match(saved.out, /-r 192\.168\.1\.4:mdns -m -w 1$/m);
    const before = (await vsadm(api, ['-S', '-n'])).out;
    await vsadm(api, ['-C']);
    assert.deepEqual(await vsadm(api, ['-R'], { stdin: saved.out }), { out: '', err: '', status: 0 });
    assert.equal((await vsadm(api, ['-S', '-n'])).out, before);
  });

  test('what a round trip loses, as in ipvsadm: thresholds; marks >= 2^31 are refused', async () => {
    const { api } = newApi();
    await vsadm(api, '-A -t 10.0.0.1:80'.split(' '));
    await vsadm(api, '-a -t 10.0.0.1:80 -r 192.168.1.1 -m -x 100 -y 50'.split(' '));
    await vsadm(api, '-A -f 4294967294 -s rr'.split(' '));
    const saved = (await vsadm(api, ['-S', '-n'])).out;
    assert.equal(saved, '-A -f -2 -s rr\n-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 192.168.1.1:80 -m -w 1\n');
    await vsadm(api, ['-C']);
    assert.deepEqual(await vsadm(api, ['-R'], { stdin: saved }), { out: '', err: "invalid fwmark value `-2' specified\n", status: 2 });
  });
});

describe('restore by difference', () => {
  test('-C then the same table again keeps established connections and counters', async () => {
    const { api, director } = newApi();
    await vsadm(api, ['-R'], { stdin: '-A -t 198.18.0.1:80 -s rr\n-a -t 198.18.0.1:80 -r 198.19.0.2:80 -m -w 1\n-a -t 198.18.0.1:80 -r 198.19.0.3:80 -m -w 1\n' });
    const c = new Client(director, '198.18.5.5:40000', '198.18.0.1:80');
    const server = c.open();
    const before = (await vsadm(api, ['-L', '-n'])).out;
    const r = await vsadm(api, ['-R'], { stdin: '-C\n-A -t 198.18.0.1:80 -s rr\n-a -t 198.18.0.1:80 -r 198.19.0.2:80 -m -w 1\n-a -t 198.18.0.1:80 -r 198.19.0.3:80 -m -w 1\n' });
    assert.equal(r.status, 0);
    assert.equal((await vsadm(api, ['-L', '-n'])).out, before);
    assert.equal(director.conns.count, 1);
    assert.ok(c.in(TCP_ACK) >= 0);
    assert.equal(c.server(), server);
  });

  test('only what differs changes: an edited weight, a removed server, a new one', async () => {
    const { api, director } = newApi();
    await vsadm(api, ['-R'], { stdin: '-A -t 198.18.0.1:80 -s wlc\n-a -t 198.18.0.1:80 -r 198.19.0.2:80 -m -w 1\n-a -t 198.18.0.1:80 -r 198.19.0.3:80 -m -w 1\n' });
    const c = new Client(director, '198.18.5.5:40000', '198.18.0.1:80');
    const kept = c.open()!;
    const other = kept === '198.19.0.2:80' ? '198.19.0.3:80' : '198.19.0.2:80';
    await vsadm(api, ['-R'], { stdin: `-C\n-A -t 198.18.0.1:80 -s wlc\n-a -t 198.18.0.1:80 -r ${kept} -m -w 5\n-a -t 198.18.0.1:80 -r 198.19.0.4:80 -m -w 1\n` });
    assert.equal((await vsadm(api, ['-S', '-n'])).out, `-A -t 198.18.0.1:80 -s wlc\n-a -t 198.18.0.1:80 -r ${kept} -m -w 5\n-a -t 198.18.0.1:80 -r 198.19.0.4:80 -m -w 1\n`);
    assert.ok(!(await vsadm(api, ['-S', '-n'])).out.includes(other));
    assert.ok(c.in(TCP_ACK) >= 0);
  });
});
