#!/usr/bin/env python3
"""Writes one gRPC message to stdout: GetPartnerRequest { id: ID } behind gRPC's 5-byte length
prefix, for h2load's `-d` (scripts/metrics-overhead.sh, scripts/rapid-reset-h2load.sh).

    python3 scripts/get_partner_body.py ID > body.bin
"""
import struct
import sys

n, varint = int(sys.argv[1]), b""
while True:
    byte, n = n & 0x7F, n >> 7
    varint += bytes([byte | (0x80 if n else 0)])
    if not n:
        break
message = b"\x08" + varint
sys.stdout.buffer.write(b"\x00" + struct.pack(">I", len(message)) + message)
