"""The limits a call process puts on itself before it runs user code (Linux).

Standard library only: the sandbox worker imports this module by path, without conv3n.

- memory: RLIMIT_DATA (private writable memory, heap and mmap) set to the process's current
  data size plus `memory_mb`, so the interpreter's own baseline does not eat the user's budget.
- CPU: RLIMIT_CPU in whole seconds (SIGXCPU at the soft limit, SIGKILL one second later); a
  warm process (`warm.py`) re-arms a CPU timer per call instead (SIGPROF ends it).
- processes: a seccomp filter refuses every new process (fork, vfork, clone without
  CLONE_THREAD, clone3) with EPERM; threads still work. RLIMIT_NPROC is no use here: the kernel
  does not apply it to root. Unknown architectures get no filter (see `seccomp_supported`).
- no core files. The worker itself dies with its parent (PR_SET_PDEATHSIG).
"""

import ctypes
import os
import platform
import resource
import signal
import struct

_PR_SET_PDEATHSIG = 1
_PR_SET_SECCOMP = 22
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_CHILD_SUBREAPER = 36
_SECCOMP_MODE_FILTER = 2

_BPF_LD_W_ABS = 0x20
_BPF_JEQ_K = 0x15
_BPF_JGE_K = 0x35
_BPF_JSET_K = 0x45
_BPF_RET_K = 0x06
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_CLONE_THREAD = 0x00010000
_X32_SYSCALL_BIT = 0x40000000

# machine -> (AUDIT_ARCH, clone, clone3, fork or None, vfork or None)
_ARCHES = {
    "x86_64": (0xC000003E, 56, 435, 57, 58),
    "aarch64": (0xC00000B7, 220, 435, None, None),
}

_libc = ctypes.CDLL(None, use_errno=True)
_PAGE = os.sysconf("SC_PAGE_SIZE")


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


def _stmt(code: int, k: int) -> bytes:
    return struct.pack("HBBI", code, 0, 0, k)


def _jump(code: int, k: int, jt: int, jf: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def no_process_filter(machine: str | None = None) -> bytes | None:
    """The BPF program refusing new processes on this machine (None: architecture unknown)."""
    arch = _ARCHES.get(machine or platform.machine())
    if arch is None:
        return None
    audit_arch, clone, clone3, fork, vfork = arch
    deny = _RET_ERRNO | 1  # EPERM
    # Layout (indices): 0 load arch; 1 arch check; 2 load nr; 3 x32 check; 4 clone3;
    # 5 fork; 6 vfork; 7 clone; 8 load flags; 9 CLONE_THREAD?; 10 deny; 11 allow; 12 ENOSYS.
    program = [
        _stmt(_BPF_LD_W_ABS, 4),
        _jump(_BPF_JEQ_K, audit_arch, 0, 9),
        _stmt(_BPF_LD_W_ABS, 0),
        _jump(_BPF_JGE_K, _X32_SYSCALL_BIT, 6, 0),
        _jump(_BPF_JEQ_K, clone3, 7, 0),  # ENOSYS: libc falls back to clone
        _jump(_BPF_JEQ_K, fork if fork is not None else 0xFFFFFFFF, 4, 0),
        _jump(_BPF_JEQ_K, vfork if vfork is not None else 0xFFFFFFFF, 3, 0),
        _jump(_BPF_JEQ_K, clone, 0, 3),
        _stmt(_BPF_LD_W_ABS, 16),  # low 32 bits of args[0]: the clone flags
        _jump(_BPF_JSET_K, _CLONE_THREAD, 1, 0),
        _stmt(_BPF_RET_K, deny),
        _stmt(_BPF_RET_K, _RET_ALLOW),
        _stmt(_BPF_RET_K, _RET_ERRNO | 38),  # ENOSYS
    ]
    return b"".join(program)


_FILTER = no_process_filter()
_FILTER_BUFFER = ctypes.create_string_buffer(_FILTER or b"")


def seccomp_supported() -> bool:
    """True when this machine's architecture has a process filter."""
    return _FILTER is not None


def _prctl(option: int, arg: int | ctypes.c_void_p = 0) -> None:
    if _libc.prctl(option, arg, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl({option}): {os.strerror(errno)}")


def become_subreaper() -> None:
    """Make orphaned descendants of this process its children (the worker reaps them)."""
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def die_with_parent() -> None:
    """SIGKILL this process when its parent exits."""
    _prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))


def forbid_processes() -> bool:
    """Install the seccomp filter refusing new processes; False if there is none here."""
    if _FILTER is None:
        return False
    program = _SockFprog(len(_FILTER) // 8, ctypes.addressof(_FILTER_BUFFER))
    _prctl(_PR_SET_NO_NEW_PRIVS, 1)
    if _libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(program), 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"seccomp: {os.strerror(errno)}")
    return True


def data_size() -> int:
    """This process's data + stack size in bytes (what RLIMIT_DATA counts, roughly)."""
    with open("/proc/self/statm", "rb") as statm:
        fields = statm.read().split()
    return int(fields[5]) * _PAGE


def apply(memory_mb: int, cpu_s: int | None, baseline: int) -> None:
    """Limit this process to `memory_mb` MiB more than `baseline` (its `data_size()`, taken
    before the fork, where reading it costs no copy-on-write faults) and `cpu_s` CPU seconds
    (None: no CPU rlimit; a warm process times each call with a CPU timer instead)."""
    limit = baseline + memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    if cpu_s is not None:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
