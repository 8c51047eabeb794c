#!/usr/bin/env python3
"""ndmpclient.py - a minimal NDMPv4 client for t48, for what a real DMA
never sends: a malformed message, a message of absurd length, and a DMA
that disconnects in the middle of a backup.

  ndmpclient.py malformed PORT USER PWFILE
      authenticate (MD5), send a DATA_START_BACKUP whose body is cut short
      (prints the reply's header error), ask CONFIG_GET_HOST_INFO (prints
      "answering HOSTNAME"), then announce a fragment of 2 GiB (prints
      "closed" when the server hangs up)
  ndmpclient.py hangup PORT USER PWFILE FILESYSTEM
      authenticate, DATA_CONNECT to a TCP listener of ours that never
      reads, DATA_START_BACKUP of FILESYSTEM, wait until the backup has
      moved bytes (prints "active N"), then close the connection
  ndmpclient.py greet HOST PORT [HOLD]
      open HOLD connections (default 0) and keep them, then one more: print
      the greeting of the last ("connected VERSION TEXT" or "refused
      VERSION TEXT")
  ndmpclient.py tape PORT USER PWFILE DEVICE
      on an empty file tape: write records of 3000 and 100 bytes, a
      filemark, a record of 50 bytes; then rewind and print what reads
      and moves give (one line each: the error code and a count; reads
      stop before a filemark until FSF crosses it)
  ndmpclient.py tapeseries PORT USER PWFILE DEVICE
      the tape series ndmjob's test-tape runs after the phases it gets
      through (T-WRITE, T-READ, T-MTIO): files of 1 to 100 records of 139
      to 32768 bytes written with a filemark after each, the position
      (file, record) checked after each write, read back and compared,
      reads stopping at each filemark (EOF, the head before it: FSF
      crosses it) and at the end (EOM), and FSF/FSR/BSR moves with their
      residual counts; prints "passed N checks" or the first failure and
      exits 1
  ndmpclient.py open PORT USER PWFILE DEVICE
      TAPE_OPEN of DEVICE read-only: prints "open ERR" (the NDMP error)
  ndmpclient.py serverauth PORT USER PWFILE WRONGPWFILE
      CONNECT_SERVER_AUTH before authenticating (prints "before ERR"),
      then authenticate and ask the server to prove itself over a
      challenge of ours; prints "user USER", and "right password: match"
      or "... differs" for the MD5 digest the password of PWFILE gives,
      and the same for WRONGPWFILE's
  ndmpclient.py abort PORT USER PWFILE FILESYSTEM
      as hangup, but then DATA_ABORT (prints "halted REASON" once the
      backup has halted), DATA_STOP (prints "stopped STATE")
  ndmpclient.py abort PORT USER PWFILE FILESYSTEM NAME=VALUE...
      the same with these environment variables added (HIST=y)
  ndmpclient.py restartable PORT USER PWFILE FILESYSTEM TAPE
      a backup with HIST=y through this server's mover (LOCAL) onto the
      file tape TAPE, aborted (DATA_ABORT) once the mover has written
      8 MB; prints "halted REASON", then each RESTART_ variable that
      DATA_GET_ENV returns as "NAME=VALUE", then stops the data and the
      mover and closes the tape
  ndmpclient.py requests PORT USER PWFILE N
      authenticate, then ask CONFIG_GET_HOST_INFO N times in turn, each
      after the reply to the one before, as a DMA's requests go; prints
      "answered N in SECONDS" (the wall time of the N requests)
  ndmpclient.py sink PORTFILE OUTFILE
      a remote mover's end of a three-way backup, as a TCP listener: the
      port it listens on (127.0.0.1) into PORTFILE, then everything one
      connection sends into OUTFILE
"""
import hashlib
import socket
import struct
import sys
import time

REQUEST, REPLY = 0, 1
CONNECT_OPEN, CONNECT_CLIENT_AUTH = 0x900, 0x901
CONFIG_GET_HOST_INFO, CONFIG_GET_AUTH_ATTR = 0x100, 0x103
DATA_GET_STATE, DATA_START_BACKUP, DATA_CONNECT = 0x400, 0x401, 0x40A


def xstr(s):
    b = s.encode()
    return struct.pack(">I", len(b)) + b + b"\0" * (-len(b) % 4)


def md5_digest(challenge, pw):
    """NDMP's MD5 authentication digest of a 64-byte challenge."""
    n = min(len(pw), 32)
    msg = bytearray(128)
    msg[0:n] = pw[:n]
    msg[64 - n:128 - n] = challenge
    msg[128 - n:128] = pw[:n]
    return hashlib.md5(bytes(msg)).digest()


class Conn:
    def __init__(self, port, host="127.0.0.1"):
        self.s = socket.create_connection((host, port), timeout=30)
        self.seq = 0
        self.greeting = self.recv_msg()       # NOTIFY_CONNECTION_STATUS

    def recv_exact(self, n):
        out = b""
        while len(out) < n:
            b = self.s.recv(n - len(out))
            if not b:
                raise EOFError
            out += b
        return out

    def recv_msg(self):
        msg = b""
        while True:
            (v,) = struct.unpack(">I", self.recv_exact(4))
            msg += self.recv_exact(v & 0x7FFFFFFF)
            if v & 0x80000000:
                return msg

    def send_raw(self, body):
        self.s.sendall(struct.pack(">I", 0x80000000 | len(body)) + body)

    def call(self, code, body=b""):
        self.seq += 1
        hdr = struct.pack(">6I", self.seq, int(time.time()), REQUEST, code, 0, 0)
        self.send_raw(hdr + body)
        while True:
            m = self.recv_msg()
            seq, _, typ, mcode, rseq, err = struct.unpack(">6I", m[:24])
            if typ == REPLY and rseq == self.seq:
                return err, m[24:]

    def auth(self, user, pw, opened=False):
        if not opened:
            err, _ = self.call(CONNECT_OPEN, struct.pack(">I", 4))
            assert err == 0, err
        err, body = self.call(CONFIG_GET_AUTH_ATTR, struct.pack(">I", 2))
        digest = md5_digest(body[8:72], pw)
        err, body = self.call(CONNECT_CLIENT_AUTH,
                              struct.pack(">I", 2) + xstr(user) + digest)
        assert err == 0 and struct.unpack(">I", body[:4])[0] == 0, "auth"


def password(path):
    return open(path, "rb").read().strip()


def malformed(port, user, pwfile):
    c = Conn(port)
    c.auth(user, password(pwfile))
    # butype "dump", then an env count of 3 with no env after it
    err, _ = c.call(DATA_START_BACKUP, xstr("dump") + struct.pack(">I", 3))
    print("reply error", err)
    err, body = c.call(CONFIG_GET_HOST_INFO)
    (n,) = struct.unpack(">I", body[4:8])
    print("answering", body[8:8 + n].decode())
    c.s.sendall(struct.pack(">I", 0xFFFFFFFF) + b"\0" * 64)
    try:
        while c.s.recv(4096):
            pass
        print("closed")
    except ConnectionResetError:
        print("closed")


def start_backup(c, env):
    """DATA_START_BACKUP of butype dump with ENV, (name, value) pairs."""
    b = xstr("dump") + struct.pack(">I", len(env))
    for k, v in env:
        b += xstr(k) + xstr(v)
    err, body = c.call(DATA_START_BACKUP, b)
    assert err == 0 and body[:4] == b"\0\0\0\0", "start backup"


def hangup(port, user, pwfile, filesystem, abort=False, extra=()):
    c = Conn(port)
    c.auth(user, password(pwfile))
    sink = socket.socket()
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sink.bind(("127.0.0.1", 0))
    sink.listen(1)
    sport = sink.getsockname()[1]
    addr = struct.pack(">IIIII", 1, 1, 0x7F000001, sport, 0)
    err, body = c.call(DATA_CONNECT, addr)
    assert err == 0 and body[:4] == b"\0\0\0\0", "data connect"
    held, _ = sink.accept()                  # accepted, never read
    start_backup(c, [("FILESYSTEM", filesystem), ("LEVEL", "0")] +
                 [tuple(e.split("=", 1)) for e in extra])
    deadline = time.time() + 60
    while time.time() < deadline:
        err, body = c.call(DATA_GET_STATE)
        state = struct.unpack(">I", body[12:16])[0]
        moved = struct.unpack(">Q", body[20:28])[0]
        if state == 1 and moved > 0:
            # let the pipes and buffers fill: the dump is now blocked
            time.sleep(0.5)
            err, body = c.call(DATA_GET_STATE)
            print("active", struct.unpack(">Q", body[20:28])[0])
            break
        time.sleep(0.1)
    if abort:
        DATA_ABORT, DATA_STOP = 0x403, 0x407
        err, body = c.call(DATA_ABORT)
        assert err == 0 and body[:4] == b"\0\0\0\0", "abort"
        print("halted", wait_halted(c, deadline))
        err, body = c.call(DATA_STOP)
        assert err == 0 and body[:4] == b"\0\0\0\0", "stop"
        err, body = c.call(DATA_GET_STATE)
        print("stopped", struct.unpack(">I", body[12:16])[0])
    c.s.close()
    held.close()


def wait_halted(c, deadline):
    while time.time() < deadline:
        err, body = c.call(0x400)                      # DATA_GET_STATE
        state, reason = struct.unpack(">II", body[12:20])
        if state == 2:
            return reason
        time.sleep(0.05)
    raise TimeoutError("the backup did not halt")


def restartable(port, user, pwfile, filesystem, tape):
    TAPE_OPEN, TAPE_CLOSE = 0x300, 0x301
    MOVER_GET_STATE, MOVER_LISTEN, MOVER_STOP = 0xA00, 0xA01, 0xA04
    DATA_ABORT, DATA_GET_ENV, DATA_STOP = 0x403, 0x404, 0x407
    c = Conn(port)
    c.auth(user, password(pwfile))
    err, body = c.call(TAPE_OPEN, xstr(tape) + struct.pack(">I", 1))
    assert err == 0 and body[:4] == b"\0\0\0\0", "tape open"
    err, body = c.call(MOVER_LISTEN, struct.pack(">II", 0, 0))  # READ, LOCAL
    assert err == 0 and body[:4] == b"\0\0\0\0", "mover listen"
    err, body = c.call(DATA_CONNECT, struct.pack(">I", 0))     # LOCAL
    assert err == 0 and body[:4] == b"\0\0\0\0", "data connect"
    start_backup(c, [("FILESYSTEM", filesystem), ("HIST", "y")])
    deadline = time.time() + 60
    while time.time() < deadline:
        err, body = c.call(MOVER_GET_STATE)
        if struct.unpack(">Q", body[28:36])[0] > 8000000:   # bytes_moved
            break
        time.sleep(0.02)
    err, body = c.call(DATA_ABORT)
    assert err == 0 and body[:4] == b"\0\0\0\0", "abort"
    print("halted", wait_halted(c, deadline))
    err, body = c.call(DATA_GET_ENV)
    assert err == 0 and body[:4] == b"\0\0\0\0", "get env"
    (n,), at = struct.unpack(">I", body[4:8]), 8
    for _ in range(n):
        kv = []
        for _ in range(2):
            (ln,) = struct.unpack(">I", body[at:at + 4])
            kv.append(body[at + 4:at + 4 + ln].decode())
            at += 4 + ln + (-ln % 4)
        if kv[0].startswith("RESTART_"):
            print("%s=%s" % tuple(kv))
    c.call(DATA_STOP)
    while time.time() < deadline:                 # the mover ends its tape
        err, body = c.call(MOVER_GET_STATE)
        if struct.unpack(">I", body[8:12])[0] == 4:    # HALTED
            break
        time.sleep(0.05)
    c.call(MOVER_STOP)
    c.call(TAPE_CLOSE)
    c.s.close()


def greet(host, port, hold):
    held = [Conn(port, host) for _ in range(hold)]
    g = Conn(port, host).greeting
    reason, version, n = struct.unpack(">III", g[24:36])
    print("connected" if reason == 0 else "refused" if reason == 2 else reason,
          version, g[36:36 + n].decode())
    for c in held:
        c.s.close()


def tape(port, user, pwfile, device):
    TAPE_OPEN, TAPE_MTIO, TAPE_WRITE, TAPE_READ = 0x300, 0x303, 0x304, 0x305
    FSF, BSF, FSR, BSR, REW, EOF = 0, 1, 2, 3, 4, 5
    c = Conn(port)
    c.auth(user, password(pwfile))

    def show(what, err, body):
        (e,) = struct.unpack(">I", body[:4])
        (n,) = struct.unpack(">I", body[4:8])
        print(what, err or e, n)

    err, body = c.call(TAPE_OPEN, xstr(device) + struct.pack(">I", 1))
    print("open", err or struct.unpack(">I", body[:4])[0])
    for n in (3000, 100):
        show("write", *c.call(TAPE_WRITE, struct.pack(">I", n) + b"x" * n + b"\0" * (-n % 4)))
    show("eof", *c.call(TAPE_MTIO, struct.pack(">II", EOF, 1)))
    show("write", *c.call(TAPE_WRITE, struct.pack(">I", 50) + b"y" * 50 + b"\0" * 2))
    for what, op, n in (("rew", REW, 1), ("fsr", FSR, 5), ("bsr", BSR, 1)):
        show(what, *c.call(TAPE_MTIO, struct.pack(">II", op, n)))
    for _ in range(3):
        show("read", *c.call(TAPE_READ, struct.pack(">I", 65536)))
    show("fsf", *c.call(TAPE_MTIO, struct.pack(">II", FSF, 1)))
    for _ in range(3):
        show("read", *c.call(TAPE_READ, struct.pack(">I", 65536)))
    for what, op, n in (("bsf", BSF, 2), ("fsf", FSF, 1)):
        show(what, *c.call(TAPE_MTIO, struct.pack(">II", op, n)))
    show("read", *c.call(TAPE_READ, struct.pack(">I", 10)))


SERIES = ((1, 512), (100, 1024), (1, 512), (100, 139), (1, 512),
          (99, 10240), (1, 512), (3, 32768), (1, 512))


def record_bytes(size, recno, fileno):
    """A record that says where it belongs: no two alike."""
    head = struct.pack(">III", fileno, recno, size)
    body = bytes((fileno * 31 + recno * 7 + i) & 0xFF for i in range(size))
    return (head + body[len(head):])[:size]


class TapeFail(Exception):
    pass


def tapeseries(port, user, pwfile, device):
    TAPE_OPEN, TAPE_CLOSE, TAPE_GET_STATE = 0x300, 0x301, 0x302
    TAPE_MTIO, TAPE_WRITE, TAPE_READ = 0x303, 0x304, 0x305
    FSF, FSR, BSR, REW, EOF = 0, 2, 3, 4, 5
    NO_ERR, EOF_ERR, EOM_ERR = 0, 12, 13
    c = Conn(port)
    c.auth(user, password(pwfile))
    checks = [0]

    def check(cond, what):
        if not cond:
            raise TapeFail(what)
        checks[0] += 1

    def body_err(err, body, what):
        check(err == 0, "%s: header error %d" % (what, err))
        return struct.unpack(">I", body[:4])[0]

    def mtio(op, count, what):
        err, body = c.call(TAPE_MTIO, struct.pack(">II", op, count))
        e = body_err(err, body, what)
        check(e == NO_ERR, "%s: error %d" % (what, e))
        return struct.unpack(">I", body[4:8])[0]

    def at(fileno, recno, what):
        err, body = c.call(TAPE_GET_STATE)
        check(err == 0, "%s: header error %d" % (what, err))
        (e,) = struct.unpack(">I", body[4:8])      # after "unsupported"
        f, b = struct.unpack(">I", body[12:16])[0], struct.unpack(">I", body[24:28])[0]
        check(e == NO_ERR and f == fileno and (recno is None or b == recno),
              "%s: at file %d record %d, expected %s %s" % (what, f, b, fileno, recno))

    def read(count, what, want_err=NO_ERR):
        err, body = c.call(TAPE_READ, struct.pack(">I", count))
        e = body_err(err, body, what)
        check(e == want_err, "%s: error %d, expected %d" % (what, e, want_err))
        (n,) = struct.unpack(">I", body[4:8])
        return body[8:8 + n]

    def open_tape(mode):
        err, body = c.call(TAPE_OPEN, xstr(device) + struct.pack(">I", mode))
        check(body_err(err, body, "open") == NO_ERR, "open mode %d" % mode)

    def close_tape():
        err, body = c.call(TAPE_CLOSE)
        check(body_err(err, body, "close") == NO_ERR, "close")

    try:
        open_tape(1)
        mtio(REW, 1, "rewind")
        for fileno, (n_rec, size) in enumerate(SERIES):
            for recno in range(n_rec):
                rec = record_bytes(size, recno, fileno)
                err, body = c.call(TAPE_WRITE, struct.pack(">I", size) + rec +
                                   b"\0" * (-size % 4))
                e = body_err(err, body, "write")
                check(e == NO_ERR and struct.unpack(">I", body[4:8])[0] == size,
                      "write file %d record %d" % (fileno, recno))
                at(fileno, recno + 1, "after write %d.%d" % (fileno, recno))
            mtio(EOF, 1, "filemark")
            at(fileno + 1, 0, "after filemark %d" % fileno)
        mtio(REW, 1, "rewind")
        close_tape()

        open_tape(0)
        for fileno, (n_rec, size) in enumerate(SERIES):
            for recno in range(n_rec):
                got = read(size, "read %d.%d" % (fileno, recno))
                check(got == record_bytes(size, recno, fileno),
                      "file %d record %d differs" % (fileno, recno))
                at(fileno, recno + 1, "after read %d.%d" % (fileno, recno))
            read(size, "read at filemark %d" % fileno, EOF_ERR)
            at(fileno, None, "after EOF %d" % fileno)
            check(mtio(FSF, 1, "fsf over filemark") == 0, "fsf 1 resid")
            at(fileno + 1, 0, "after fsf %d" % fileno)
        read(1024, "read at the end", EOM_ERR)

        for fileno, (n_rec, size) in enumerate(SERIES):
            check(mtio(REW, 1, "rewind") == 0, "rewind resid")
            at(0, 0, "after rewind")
            check(mtio(FSF, fileno, "fsf %d" % fileno) == 0, "fsf resid")
            at(fileno, 0, "after fsf %d" % fileno)
            check(mtio(FSR, 1000000, "fsr 1m") == 1000000 - n_rec, "fsr 1m resid")
            at(fileno, n_rec, "after fsr 1m in file %d" % fileno)
            check(mtio(BSR, 1000000, "bsr 1m") == 1000000 - n_rec, "bsr 1m resid")
            at(fileno, 0, "after bsr 1m in file %d" % fileno)
            check(mtio(FSR, 0, "fsr 0") == 0, "fsr 0 resid")
            half = n_rec // 2
            check(mtio(FSR, half, "fsr half") == 0, "fsr half resid")
            at(fileno, half, "after fsr %d" % half)
            check(read(size, "read after fsr") == record_bytes(size, half, fileno),
                  "record %d.%d after fsr" % (fileno, half))
            if half + 1 > 1:
                check(mtio(BSR, 2, "bsr 2") == 0, "bsr 2 resid")
                at(fileno, half - 1, "after bsr 2")
                check(read(size, "read after bsr") ==
                      record_bytes(size, half - 1, fileno),
                      "record %d.%d after bsr" % (fileno, half - 1))
        close_tape()
    except TapeFail as e:
        print("failed:", e)
        sys.exit(1)
    print("passed %d checks" % checks[0])


def serverauth(port, user, pwfile, wrongfile):
    CONNECT_SERVER_AUTH = 0x903
    c = Conn(port)
    err, _ = c.call(CONNECT_OPEN, struct.pack(">I", 4))
    challenge = bytes(range(7, 71))
    req = struct.pack(">I", 2) + challenge
    err, body = c.call(CONNECT_SERVER_AUTH, req)
    print("before", err or struct.unpack(">I", body[:4])[0])
    c.auth(user, password(pwfile), opened=True)
    err, body = c.call(CONNECT_SERVER_AUTH, req)
    e, typ = struct.unpack(">II", body[:8])
    assert err == 0 and e == 0 and typ == 2, (err, e, typ)
    (n,) = struct.unpack(">I", body[8:12])
    print("user", body[12:12 + n].decode())
    digest = body[12 + n + (-n % 4):][:16]
    for what, f in (("right", pwfile), ("wrong", wrongfile)):
        same = md5_digest(challenge, password(f)) == digest
        print(what, "password:", "match" if same else "differs")


def requests(port, user, pwfile, n):
    c = Conn(port)
    c.auth(user, password(pwfile))
    answered = 0
    t = time.monotonic()
    for _ in range(n):
        err, body = c.call(CONFIG_GET_HOST_INFO)
        answered += err == 0 and body[:4] == b"\0\0\0\0"
    print("answered %d in %.3f" % (answered, time.monotonic() - t))


def sink(portfile, outfile):
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % ls.getsockname()[1])
    import os
    os.rename(portfile + ".tmp", portfile)
    ls.settimeout(60)
    c, _ = ls.accept()
    with open(outfile, "wb") as f:
        while True:
            b = c.recv(1 << 16)
            if not b:
                break
            f.write(b)


if __name__ == "__main__":
    if sys.argv[1] == "greet":
        greet(sys.argv[2], int(sys.argv[3]),
              int(sys.argv[4]) if len(sys.argv) > 4 else 0)
        sys.exit(0)
    if sys.argv[1] == "tape":
        tape(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
        sys.exit(0)
    if sys.argv[1] == "tapeseries":
        tapeseries(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
        sys.exit(0)
    if sys.argv[1] == "open":
        c = Conn(int(sys.argv[2]))
        c.auth(sys.argv[3], password(sys.argv[4]))
        err, body = c.call(0x300, xstr(sys.argv[5]) + struct.pack(">I", 0))
        print("open", err or struct.unpack(">I", body[:4])[0])
        sys.exit(0)
    if sys.argv[1] == "serverauth":
        serverauth(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
        sys.exit(0)
    if sys.argv[1] == "sink":
        sink(sys.argv[2], sys.argv[3])
        sys.exit(0)
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "malformed":
        malformed(port, sys.argv[3], sys.argv[4])
    elif mode == "hangup":
        hangup(port, sys.argv[3], sys.argv[4], sys.argv[5])
    elif mode == "abort":
        hangup(port, sys.argv[3], sys.argv[4], sys.argv[5], abort=True,
               extra=sys.argv[6:])
    elif mode == "restartable":
        restartable(port, sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6])
    elif mode == "requests":
        requests(port, sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        sys.exit("usage: see the top of " + sys.argv[0])
