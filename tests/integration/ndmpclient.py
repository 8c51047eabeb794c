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
      and moves give (one line each: the error code and a count)
  ndmpclient.py abort PORT USER PWFILE FILESYSTEM
      as hangup, but then DATA_ABORT (prints "halted REASON" once the
      backup has halted), DATA_STOP (prints "stopped STATE")
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

    def auth(self, user, pw):
        err, _ = self.call(CONNECT_OPEN, struct.pack(">I", 4))
        assert err == 0, err
        err, body = self.call(CONFIG_GET_AUTH_ATTR, struct.pack(">I", 2))
        challenge = body[8:72]
        n = min(len(pw), 32)
        msg = bytearray(128)
        msg[0:n] = pw[:n]
        msg[64 - n:128 - n] = challenge
        msg[128 - n:128] = pw[:n]
        digest = hashlib.md5(bytes(msg)).digest()
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


def hangup(port, user, pwfile, filesystem, abort=False):
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
    env = [("FILESYSTEM", filesystem), ("LEVEL", "0")]
    b = xstr("dump") + struct.pack(">I", len(env))
    for k, v in env:
        b += xstr(k) + xstr(v)
    err, body = c.call(DATA_START_BACKUP, b)
    assert err == 0 and body[:4] == b"\0\0\0\0", "start backup"
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
        while time.time() < deadline:
            err, body = c.call(DATA_GET_STATE)
            state, reason = struct.unpack(">II", body[12:20])
            if state == 2:
                print("halted", reason)
                break
            time.sleep(0.1)
        err, body = c.call(DATA_STOP)
        assert err == 0 and body[:4] == b"\0\0\0\0", "stop"
        err, body = c.call(DATA_GET_STATE)
        print("stopped", struct.unpack(">I", body[12:16])[0])
    c.s.close()
    held.close()


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
    show("read", *c.call(TAPE_READ, struct.pack(">I", 65536)))
    show("read", *c.call(TAPE_READ, struct.pack(">I", 65536)))
    for what, op, n in (("bsf", BSF, 2), ("fsf", FSF, 1)):
        show(what, *c.call(TAPE_MTIO, struct.pack(">II", op, n)))
    show("read", *c.call(TAPE_READ, struct.pack(">I", 10)))


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
    if sys.argv[1] == "sink":
        sink(sys.argv[2], sys.argv[3])
        sys.exit(0)
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "malformed":
        malformed(port, sys.argv[3], sys.argv[4])
    elif mode == "hangup":
        hangup(port, sys.argv[3], sys.argv[4], sys.argv[5])
    elif mode == "abort":
        hangup(port, sys.argv[3], sys.argv[4], sys.argv[5], abort=True)
    elif mode == "requests":
        requests(port, sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        sys.exit("usage: see the top of " + sys.argv[0])
