"""Shared by the local-stack tests: what another user of the host can read, what the stack's
processes listen on, which processes are left."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

NOBODY = 65534


def readable_by_nobody(path: Path) -> bool:
    """Can user ``nobody`` (no groups) read ``path``? Asked of the kernel: ``cat`` run as it."""
    done = subprocess.run(["cat", str(path)], user=NOBODY, group=NOBODY, extra_groups=[],
                          capture_output=True, timeout=10)
    return done.returncode == 0


def in_sessions(sessions: set[int]) -> list[int]:
    """PIDs of the live processes in ``sessions`` (a stack's components are session leaders,
    and Airflow's workers and task processes stay in their component's session)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) in sessions:
            found.append(int(entry))
    return sorted(found)


def listening(pids: list[int]) -> list[tuple[int, str, int]]:
    """(pid, address, port) of every TCP socket in LISTEN state that one of ``pids`` holds,
    read from /proc/net/tcp and /proc/net/tcp6."""
    sockets = {}
    for table, size in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A":
                continue
            address, port = local.split(":")
            sockets[inode] = (_address(bytes.fromhex(address), size), int(port, 16))
    found = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in sockets:
                found.append((pid, *sockets[target[8:-1]]))
    return found


def _address(raw: bytes, size: int) -> str:
    """/proc/net/tcp{,6} store the address as 32-bit words in host (little-endian) order."""
    import ipaddress
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, size, 4))
    return str(ipaddress.ip_address(words))
