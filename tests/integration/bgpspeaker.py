"""A small raw BGP speaker for hostile-input and resilience tests.

Owns: building BGP messages byte by byte (correct or deliberately broken),
opening sessions with chosen capabilities, sending arbitrary bytes, and
reading and decoding what the other side answers (OPEN, UPDATE with
MP_REACH/MP_UNREACH, NOTIFICATION, KEEPALIVE, ROUTE-REFRESH).

Threads: none; one Speaker is one TCP connection driven by one caller.

Why it is built this way: the tests must be able to produce every byte
sequence a broken or hostile peer could send, so the encoders take raw
values (lengths, flags, markers) that callers may override, and nothing
validates on the way out.  Every socket operation has a bounded timeout; a
read that sees EOF or a reset reports it instead of raising, because "the
daemon closed the session" is a normal test outcome.  Python 3 stdlib only.
"""

import ipaddress
import socket
import struct
import time

# message types
OPEN, UPDATE, NOTIFICATION, KEEPALIVE, ROUTE_REFRESH = 1, 2, 3, 4, 5
# attribute flags
F_OPT, F_TRANS, F_PART, F_EXT = 0x80, 0x40, 0x20, 0x10
F_WK = F_TRANS
F_ON = F_OPT
F_OT = F_OPT | F_TRANS
# attribute types
ORIGIN, AS_PATH, NEXT_HOP, MED, LOCAL_PREF, ATOMIC_AGGREGATE, AGGREGATOR = 1, 2, 3, 4, 5, 6, 7
COMMUNITIES, ORIGINATOR_ID, CLUSTER_LIST = 8, 9, 10
MP_REACH, MP_UNREACH, EXT_COMMUNITIES, AS4_PATH, AS4_AGGREGATOR = 14, 15, 16, 17, 18
LARGE_COMMUNITY = 32
AS_SET, AS_SEQUENCE, AS_CONFED_SEQUENCE, AS_CONFED_SET = 1, 2, 3, 4
AFI_IPV4, AFI_IPV6, SAFI_UNICAST = 1, 2, 1
# capabilities
CAP_MP, CAP_RR, CAP_EXT_MSG, CAP_GR, CAP_AS4, CAP_ADDPATH, CAP_ERR = 1, 2, 6, 64, 65, 69, 70

MARKER = b"\xff" * 16


# ------------------------------------------------------------------ encoding

def header(mtype, body, length=None, marker=MARKER):
    """A message: marker, length (computed unless given), type, body."""
    if length is None:
        length = 19 + len(body)
    return marker + struct.pack("!HB", length & 0xFFFF, mtype & 0xFF) + body


def cap(code, value=b""):
    return bytes([code, len(value)]) + value


def cap_mp(afi, safi=SAFI_UNICAST):
    return cap(CAP_MP, struct.pack("!HBB", afi, 0, safi))


def cap_as4(asn):
    return cap(CAP_AS4, struct.pack("!I", asn))


def cap_addpath(entries):
    """entries: [(afi, safi, mode)] with mode 1 receive, 2 send, 3 both."""
    return cap(CAP_ADDPATH, b"".join(struct.pack("!HBB", a, s, m) for a, s, m in entries))


def caps_default(asn, v4=True, v6=True, as4=True, addpath=None, ext_msg=False, rr=True):
    caps = []
    if v4:
        caps.append(cap_mp(AFI_IPV4))
    if v6:
        caps.append(cap_mp(AFI_IPV6))
    if as4:
        caps.append(cap_as4(asn))
    if rr:
        caps.append(cap(CAP_RR))
    if ext_msg:
        caps.append(cap(CAP_EXT_MSG))
    if addpath:
        caps.append(cap_addpath(addpath))
    return caps


def open_msg(asn, hold=90, bgp_id="10.0.0.9", caps=(), version=4, opt_params=None,
             extended=False, optlen=None, length=None):
    """OPEN.  caps go in one Capabilities parameter (type 2) unless opt_params
    (raw bytes) is given.  extended=True uses the RFC 9072 form (0xFF, 16-bit
    lengths).  optlen overrides the Optional Parameters Length octet."""
    my_as = asn if asn <= 0xFFFF else 23456
    if opt_params is None:
        cb = b"".join(caps)
        if not cb:
            opt_params = b""
        elif extended:
            opt_params = struct.pack("!BH", 2, len(cb)) + cb
        else:
            opt_params = bytes([2, len(cb)]) + cb
    if extended:
        ol = 255 if optlen is None else optlen
        tail = bytes([ol, 255]) + struct.pack("!H", len(opt_params)) + opt_params
    else:
        ol = len(opt_params) if optlen is None else optlen
        tail = bytes([ol & 0xFF]) + opt_params
    body = struct.pack("!BHH4s", version, my_as, hold, ipaddress.IPv4Address(bgp_id).packed) + tail
    return header(OPEN, body, length)


def keepalive(length=None):
    return header(KEEPALIVE, b"", length)


def notification(code, subcode, data=b"", length=None):
    return header(NOTIFICATION, bytes([code, subcode]) + data, length)


def route_refresh(afi=AFI_IPV4, safi=SAFI_UNICAST, subtype=0, extra=b"", length=None):
    return header(ROUTE_REFRESH, struct.pack("!HBB", afi, subtype, safi) + extra, length)


def attr(flags, atype, value, length=None):
    """A path attribute; the Extended Length bit is honoured as given in flags,
    and set automatically when the value needs it.  length overrides."""
    if len(value) > 255:
        flags |= F_EXT
    n = len(value) if length is None else length
    if flags & F_EXT:
        return bytes([flags, atype]) + struct.pack("!H", n & 0xFFFF) + value
    return bytes([flags, atype, n & 0xFF]) + value


def pfx(prefix, path_id=None):
    """NLRI encoding of one prefix ("10.1.0.0/16"), with an ADD-PATH id if given."""
    net = ipaddress.ip_network(prefix, strict=False)
    n = (net.prefixlen + 7) // 8
    b = bytes([net.prefixlen]) + net.network_address.packed[:n]
    if path_id is not None:
        b = struct.pack("!I", path_id) + b
    return b


def as_path_value(asns, asz=4, seg=AS_SEQUENCE):
    """One segment (or several when more than 255 ASes)."""
    out = b""
    asns = list(asns)
    if not asns:
        return b""
    fmt = "!I" if asz == 4 else "!H"
    for i in range(0, len(asns), 255):
        chunk = asns[i:i + 255]
        out += bytes([seg, len(chunk)]) + b"".join(struct.pack(fmt, a) for a in chunk)
    return out


def a_origin(v=0, flags=F_WK):
    return attr(flags, ORIGIN, bytes([v]))


def a_aspath(asns=(), asz=4, flags=F_WK, raw=None):
    return attr(flags, AS_PATH, raw if raw is not None else as_path_value(asns, asz))


def a_nexthop(nh="192.0.2.1", flags=F_WK):
    return attr(flags, NEXT_HOP, ipaddress.IPv4Address(nh).packed)


def a_med(v=0, flags=F_ON):
    return attr(flags, MED, struct.pack("!I", v))


def a_localpref(v=100, flags=F_WK):
    return attr(flags, LOCAL_PREF, struct.pack("!I", v))


def a_communities(comms, flags=F_OT):
    return attr(flags, COMMUNITIES, b"".join(struct.pack("!I", c) for c in comms))


def mp_reach_value(afi, safi, nexthop, nlri, nh_len=None):
    nh = b"".join(ipaddress.ip_address(a).packed for a in nexthop) if isinstance(nexthop, (list, tuple)) \
        else (ipaddress.ip_address(nexthop).packed if isinstance(nexthop, str) else nexthop)
    nl = len(nh) if nh_len is None else nh_len
    return struct.pack("!HBB", afi, safi, nl) + nh + b"\x00" + nlri


def a_mp_reach(afi, safi, nexthop, nlri, flags=F_ON, nh_len=None):
    return attr(flags, MP_REACH, mp_reach_value(afi, safi, nexthop, nlri, nh_len))


def a_mp_unreach(afi, safi, nlri, flags=F_ON):
    return attr(flags, MP_UNREACH, struct.pack("!HB", afi, safi) + nlri)


def packed_updates(attrs, prefixes, max_msg=4096):
    """UPDATEs announcing IPv4 prefixes in the NLRI field, all with attrs,
    as many per message as fit in max_msg octets."""
    room = max_msg - 23 - len(attrs)
    msgs, cur = [], b""
    for p in prefixes:
        e = pfx(p)
        if len(cur) + len(e) > room:
            msgs.append(update(attrs=attrs, nlri=cur))
            cur = b""
        cur += e
    if cur:
        msgs.append(update(attrs=attrs, nlri=cur))
    return msgs


def update(withdrawn=b"", attrs=b"", nlri=b"", wlen=None, alen=None, length=None):
    """UPDATE from raw field contents; wlen/alen/length override the counts."""
    wl = len(withdrawn) if wlen is None else wlen
    al = len(attrs) if alen is None else alen
    body = struct.pack("!H", wl & 0xFFFF) + withdrawn + struct.pack("!H", al & 0xFFFF) + attrs + nlri
    return header(UPDATE, body, length)


# ------------------------------------------------------------------ decoding

class Msg:
    __slots__ = ("type", "raw", "body")

    def __init__(self, raw):
        self.raw = raw
        self.type = raw[18]
        self.body = raw[19:]

    def __repr__(self):
        return f"Msg(type={self.type}, len={len(self.raw)})"


class Notification:
    def __init__(self, body):
        self.code = body[0] if len(body) > 0 else None
        self.subcode = body[1] if len(body) > 1 else None
        self.data = bytes(body[2:])

    def __repr__(self):
        return f"NOTIFICATION {self.code}/{self.subcode} data={self.data.hex()}"


def decode_open(body):
    version, my_as, hold, bid, ol = struct.unpack("!BHH4sB", body[:10])
    o = {"version": version, "as": my_as, "hold": hold,
         "bgp_id": str(ipaddress.IPv4Address(bid)), "caps": {}}
    p = body[10:]
    if ol == 255 and p[:1] == b"\xff":
        xl = struct.unpack("!H", p[1:3])[0]
        p, ext = p[3:3 + xl], True
    else:
        p, ext = p[:ol], False
    while p:
        t = p[0]
        if ext:
            ln = struct.unpack("!H", p[1:3])[0]
            v, p = p[3:3 + ln], p[3 + ln:]
        else:
            ln = p[1]
            v, p = p[2:2 + ln], p[2 + ln:]
        if t != 2:
            continue
        while len(v) >= 2:
            c, cl = v[0], v[1]
            o["caps"].setdefault(c, []).append(bytes(v[2:2 + cl]))
            v = v[2 + cl:]
    return o


def decode_nlri(b, afi, addpath=False):
    out = []
    i = 0
    alen = 4 if afi == AFI_IPV4 else 16
    while i < len(b):
        pid = None
        if addpath:
            pid = struct.unpack("!I", b[i:i + 4])[0]
            i += 4
        bits = b[i]
        n = (bits + 7) // 8
        a = b[i + 1:i + 1 + n] + bytes(alen - n)
        i += 1 + n
        addr = ipaddress.ip_address(bytes(a[:alen]))
        out.append((f"{addr}/{bits}", pid))
    return out


class Update:
    """A decoded UPDATE: attrs {type: (flags, value)}, announced/withdrawn as
    lists of (prefix, path_id) over IPv4 NLRI and MP_REACH/MP_UNREACH."""

    def __init__(self, body, addpath=(False, False)):
        wl = struct.unpack("!H", body[:2])[0]
        wd = body[2:2 + wl]
        al = struct.unpack("!H", body[2 + wl:4 + wl])[0]
        ab = body[4 + wl:4 + wl + al]
        nl = body[4 + wl + al:]
        self.attrs = {}
        self.attr_order = []
        i = 0
        while i < len(ab):
            fl, t = ab[i], ab[i + 1]
            if fl & F_EXT:
                ln = struct.unpack("!H", ab[i + 2:i + 4])[0]
                v = ab[i + 4:i + 4 + ln]
                i += 4 + ln
            else:
                ln = ab[i + 2]
                v = ab[i + 3:i + 3 + ln]
                i += 3 + ln
            self.attrs[t] = (fl, bytes(v))
            self.attr_order.append(t)
        self.withdrawn = decode_nlri(wd, AFI_IPV4, addpath[0])
        self.announced = decode_nlri(nl, AFI_IPV4, addpath[0])
        self.nexthop = None
        if NEXT_HOP in self.attrs:
            self.nexthop = str(ipaddress.IPv4Address(self.attrs[NEXT_HOP][1]))
        if MP_REACH in self.attrs:
            v = self.attrs[MP_REACH][1]
            afi, safi, nhl = struct.unpack("!HBB", v[:4])
            nh = v[4:4 + nhl]
            self.nexthop = str(ipaddress.ip_address(nh[:16] if afi == AFI_IPV6 else nh[:4]))
            self.announced += decode_nlri(v[5 + nhl:], afi, addpath[1 if afi == AFI_IPV6 else 0])
        if MP_UNREACH in self.attrs:
            v = self.attrs[MP_UNREACH][1]
            afi = struct.unpack("!H", v[:2])[0]
            self.withdrawn += decode_nlri(v[3:], afi, addpath[1 if afi == AFI_IPV6 else 0])
        self.eor = not self.withdrawn and not self.announced and (
            not self.attrs or (list(self.attrs) == [MP_UNREACH]))

    def as_path(self):
        """AS numbers in order (4-octet encoding assumed), sets flattened."""
        if AS_PATH not in self.attrs:
            return None
        v = self.attrs[AS_PATH][1]
        out, i = [], 0
        while i + 2 <= len(v):
            n = v[i + 1]
            out += [struct.unpack("!I", v[i + 2 + 4 * k:i + 6 + 4 * k])[0] for k in range(n)]
            i += 2 + 4 * n
        return out

    def __repr__(self):
        return f"UPDATE(+{self.announced} -{self.withdrawn} attrs={sorted(self.attrs)})"


# ------------------------------------------------------------------ session

class Closed(Exception):
    """The other side closed or reset the connection."""


class Speaker:
    """One TCP connection to a BGP speaker.

    s = Speaker("127.0.88.10", "127.0.88.1"); s.connect()
    s.establish(65000, caps=...)      # OPEN/KEEPALIVE exchange
    s.send(update(...)); n = s.expect_notification(3)
    """

    def __init__(self, local, remote, port=179, timeout=5.0, rcvbuf=None):
        self.local, self.remote, self.port = local, remote, port
        self.timeout = timeout
        self.rcvbuf = rcvbuf
        self.sock = None
        self.buf = b""
        self.closed = False
        self.peer_open = None
        self.addpath_rx = (False, False)   # we decode ADD-PATH ids per AFI
        self.received = []                 # every Msg seen, in order

    # -- transport
    def connect(self):
        fam = socket.AF_INET6 if ":" in self.remote else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        s.settimeout(self.timeout)
        s.bind((self.local, 0))
        s.connect((self.remote, self.port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = s
        return self

    def send(self, data):
        """Send bytes; returns False when the connection is already gone."""
        try:
            self.sock.settimeout(self.timeout)
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, socket.timeout, OSError):
            return False

    def close(self, reset=False):
        if self.sock is None:
            return
        if reset:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        try:
            self.sock.close()
        except OSError:
            pass
        self.sock = None

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(min(left, self.timeout))
        try:
            d = self.sock.recv(262144)
        except socket.timeout:
            return False
        except (ConnectionResetError, OSError):
            self.closed = True
            raise Closed("reset")
        if not d:
            self.closed = True
            raise Closed("eof")
        self.buf += d
        return True

    def recv_msg(self, timeout=None):
        """Next message or None on timeout; raises Closed on EOF/reset (after
        every complete message buffered has been returned)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if len(self.buf) >= 19:
                ln = struct.unpack("!H", self.buf[16:18])[0]
                if ln < 19:
                    raise ValueError(f"peer sent a bad length {ln}")
                if len(self.buf) >= ln:
                    m = Msg(self.buf[:ln])
                    self.buf = self.buf[ln:]
                    self.received.append(m)
                    return m
            if self.closed:
                raise Closed("eof")
            if not self._fill(deadline):
                if time.monotonic() >= deadline:
                    return None

    # -- session
    def establish(self, asn, hold=90, bgp_id="10.0.0.9", caps=None, open_bytes=None, timeout=5.0):
        """Full handshake; returns the peer's decoded OPEN.  Raises on failure."""
        if self.sock is None:
            self.connect()
        if caps is None:
            caps = caps_default(asn)
        self.send(open_bytes if open_bytes is not None else open_msg(asn, hold, bgp_id, caps))
        deadline = time.monotonic() + timeout
        got_open = got_ka = False
        while not (got_open and got_ka):
            m = self.recv_msg(max(0.01, deadline - time.monotonic()))
            if m is None:
                raise TimeoutError("no OPEN/KEEPALIVE from peer")
            if m.type == OPEN:
                self.peer_open = decode_open(m.body)
                self.send(keepalive())
                got_open = True
            elif m.type == KEEPALIVE:
                got_ka = got_open
            elif m.type == NOTIFICATION:
                raise ConnectionError(f"peer refused: {Notification(m.body)}")
        return self.peer_open

    def expect_notification(self, timeout=5.0):
        """Read until a NOTIFICATION (returned) or the close/timeout (None).
        Other messages are skipped (kept in self.received)."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                m = self.recv_msg(max(0.01, deadline - time.monotonic()))
                if m is None:
                    return None
                if m.type == NOTIFICATION:
                    return Notification(m.body)
        except Closed:
            return None
        return None

    def wait_closed(self, timeout=5.0):
        """True when the peer closes the connection within timeout (messages
        read meanwhile are kept)."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.recv_msg(max(0.01, deadline - time.monotonic()))
        except Closed:
            return True
        return False

    def updates(self, timeout=1.0, until=None):
        """Read UPDATEs for up to timeout s (stops early when until(upd) is
        true); KEEPALIVEs are answered by nothing (we are not a full FSM)."""
        out = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.recv_msg(max(0.01, deadline - time.monotonic()))
            if m is None:
                break
            if m.type == UPDATE:
                u = Update(m.body, self.addpath_rx)
                out.append(u)
                if until and until(u):
                    break
            elif m.type == NOTIFICATION:
                raise Closed(f"notification {Notification(m.body)}")
        return out


class RibView:
    """What a monitor has been told: prefix -> Update of its last announcement."""

    def __init__(self, speaker):
        self.sp = speaker
        self.routes = {}

    def apply(self, u):
        for p, _ in u.withdrawn:
            self.routes.pop(p, None)
        for p, _ in u.announced:
            self.routes[p] = u

    def pump(self, timeout=0.2):
        for u in self.sp.updates(timeout):
            self.apply(u)

    def wait(self, pred, timeout=5.0, step=0.1):
        """Read until pred(routes) holds; returns its truth."""
        deadline = time.monotonic() + timeout
        while True:
            if pred(self.routes):
                return True
            if time.monotonic() >= deadline:
                return False
            self.pump(min(step, max(0.01, deadline - time.monotonic())))

    def keepalive(self):
        self.sp.send(keepalive())
