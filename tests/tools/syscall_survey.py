#!/usr/bin/env python3
"""Which syscalls do the workers, artifact holders and jobs make on honest paths?

Runs `pvf batch` in secure mode under `strace -f` over every guest in tests/guests/, the
corpus runtimes on two kinds of junk params, and large params and results, then prints, per
process role, every syscall made after that process's last seccomp filter was installed
(`read`, `write` and `mmap` with their descriptor), and any process killed by SIGSYS. Exits 1
if one was. Use it when a policy in common/src/sandbox/policy/ changes:

    cargo build --release --workspace
    python3 tests/tools/syscall_survey.py target/release/pvf [--corpus ../shared/corpus] [--quiet-logs]

Needs strace 5.19 or newer (for --decode-pids=pidns: holders fork jobs inside their own PID
namespace).
"""
import argparse
import collections
import glob
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def compact(n):
    if n < 1 << 6:
        return bytes([n << 2])
    if n < 1 << 14:
        return struct.pack('<H', (n << 2) | 1)
    return struct.pack('<I', (n << 2) | 2)


def params(head, block, relay=7):
    data = compact(len(head)) + head + compact(len(block)) + block
    return (data + struct.pack('<I', relay) + bytes(32)).hex()


def requests(corpus):
    adder = params((1).to_bytes(8, 'little'), (2).to_bytes(8, 'little'))
    guests = sorted(glob.glob(os.path.join(ROOT, 'tests/guests/*.wat')))
    yield from ({'code': g, 'params_hex': adder, 'timeout_ms': 1000} for g in guests)
    for code in sorted(glob.glob(os.path.join(corpus, '*.code'))):
        for junk in (params(b'\x01' * 32, b'junk' * 100), params(b'', b'')):
            yield {'code': code, 'params_hex': junk, 'timeout_ms': 2000}
    placement = os.path.join(ROOT, 'tests/guests/params-placement.wat')
    yield {'code': placement, 'params_hex': params(b'\x03' * 8, bytes(16 << 20)),
           'timeout_ms': 2000}


def trace(pvf, corpus, out_dir, quiet_logs):
    batch = os.path.join(out_dir, 'batch.jsonl')
    with open(batch, 'w') as f:
        for request in requests(corpus):
            f.write(json.dumps(request) + '\n')
    env = dict(os.environ, RUST_LOG='off') if quiet_logs else dict(os.environ)
    with tempfile.TemporaryDirectory() as cache:
        # Exit code 3 is expected: the stub-call guest is Internal.
        run = subprocess.run(['strace', '--decode-pids=pidns', '-f', '-ff', '-o',
                              os.path.join(out_dir, 't'), pvf, '--cache-dir', cache, 'batch',
                              batch, '--workers', '2'],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in run.stdout.splitlines():
        answer = json.loads(line)
        print(f"request {answer['index']}: {answer['verdict']} {answer.get('reason') or ''}"[:120])
    return os.path.join(out_dir, 't')


CLONE = re.compile(r"^(clone3?|fork|vfork)\((.*)\)\s+= (\d+)(?: /\* (\d+) in strace's PID NS \*/)?")
SYSCALL = re.compile(r'^([a-z0-9_]+)\(')


def survey(prefix):
    files = {int(f.rsplit('.', 1)[1]): f for f in glob.glob(prefix + '.*')}
    lines = {pid: open(f, errors='replace').read().splitlines() for pid, f in files.items()}
    parent, thread, exe = {}, {}, {}
    for pid, ls in lines.items():
        for line in ls:
            m = CLONE.match(line)
            if m:
                child = int(m.group(4) or m.group(3))
                parent[child], thread[child] = pid, 'CLONE_THREAD' in m.group(2)
            m = re.match(r'^execve\("([^"]+)"', line)
            if m and line.endswith('= 0'):
                exe[pid] = os.path.basename(m.group(1))

    def process(pid):
        while thread.get(pid):
            pid = parent[pid]
        return pid

    def binary_and_depth(pid):
        depth, p = 0, process(pid)
        while p not in exe and p in parent:
            depth, p = depth + 1, process(parent[p])
        return exe.get(p, '?'), depth

    roles, killed = collections.defaultdict(collections.Counter), []
    for pid, ls in lines.items():
        binary, depth = binary_and_depth(pid)
        if not binary.startswith('pvf-'):
            continue
        names = {0: 'worker', 1: 'holder' if 'execute' in binary else 'job', 2: 'job'}
        role = f'{binary}/{names.get(depth, depth)}'
        start = 0
        if not thread.get(pid):
            # Only what the process does under its own last filter; threads start under it.
            start = max((i + 1 for i, l in enumerate(ls) if l.startswith('seccomp(SECCOMP_SET_MODE_FILTER')), default=0)
            if start == 0:
                continue
        for line in ls[start:]:
            if 'killed by SIGSYS' in line:
                killed.append(f'{role} ({pid}) after: {ls[-2] if len(ls) > 1 else ""}')
            m = SYSCALL.match(line)
            if not m:
                continue
            name = m.group(1)
            if name in ('read', 'write'):
                name += f'(fd {line.split("(")[1].split(",")[0]})'
            elif name == 'mmap':
                args = line.split(', ')
                name += f'({args[3]}, fd {args[4]})'
            roles[role][name] += 1
    return roles, killed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('pvf')
    parser.add_argument('--corpus', default=os.path.join(ROOT, '../shared/corpus'))
    parser.add_argument('--quiet-logs', action='store_true', help='RUST_LOG=off')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out_dir:
        roles, killed = survey(trace(os.path.abspath(args.pvf), args.corpus, out_dir,
                                     args.quiet_logs))
    for role in sorted(roles):
        print(f'{role}:')
        for name, count in sorted(roles[role].items()):
            print(f'    {name} x{count}')
    print('killed by SIGSYS:', '; '.join(killed) if killed else 'none')
    sys.exit(1 if killed else 0)


if __name__ == '__main__':
    main()
