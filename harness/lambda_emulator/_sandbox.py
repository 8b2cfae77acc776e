"""How an executable is started: natively, under qemu-user (arm64), inside a chroot.

- **arm64.** An aarch64 ELF (``e_machine`` 183 in the ELF header, whatever its name) runs
  under ``qemu-aarch64-static`` (Debian's ``qemu-user-static``; ``make qemu`` installs it).
  The host has no binfmt_misc registration to rely on, so the emulator names qemu itself.
- **No-Python sandbox.** ``extension_sandbox="no-python"`` starts every external extension
  chrooted into a root that holds only ``/opt`` (a copy of the merged layers), ``/tmp`` and a
  minimal ``/etc`` (hosts, resolv.conf, the CA bundle), plus qemu when an arm64 binary needs
  it. No interpreter, no shell, no libc: only a static binary can start there, as in a
  Lambda runtime without Python (Node.js, Java, provided.*), and nothing else is reachable.
  The network namespace is the host's, so the Runtime API on 127.0.0.1 stays reachable.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

ARCHITECTURES = ("x86_64", "arm64")
SANDBOXES = ("no-python",)
#: ELF e_machine of AArch64 (the ELF spec's EM_AARCH64).
EM_AARCH64 = 183
QEMU = "qemu-aarch64-static"
#: Where qemu sits inside the chroot.
QEMU_IN_ROOT = "/usr/bin/" + QEMU
#: PATH of an extension in the sandbox: Lambda's, none of which holds anything but /opt/bin.
SANDBOX_PATH = "/usr/local/bin:/usr/bin/:/bin:/opt/bin"
_ETC_FILES = ("hosts", "resolv.conf", "nsswitch.conf")
_CA_BUNDLES = ("ssl/certs/ca-certificates.crt", "pki/tls/certs/ca-bundle.crt")


def elf_machine(path: str | os.PathLike[str]) -> int | None:
    """The ELF header's e_machine, or None when the file is not an ELF (a script)."""
    try:
        with open(path, "rb") as f:
            head = f.read(20)
    except OSError:
        return None
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    # EI_DATA (byte 5): 1 = little-endian, 2 = big-endian.
    return int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")


def is_aarch64(path: str | os.PathLike[str]) -> bool:
    return elf_machine(path) == EM_AARCH64


def find_qemu() -> str:
    found = shutil.which(QEMU)
    if found is None:
        raise FileNotFoundError(
            f"architecture='arm64' needs {QEMU} to run aarch64 binaries: run `make qemu` "
            "(installs Debian's qemu-user-static)"
        )
    return found


def build_root(root: Path, opt: Path, qemu: str | None) -> None:
    """Lay out the chroot: /opt (copied: the merged opt's symlinks point outside), /tmp, /etc."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(opt, root / "opt", symlinks=False, dirs_exist_ok=True)
    tmp = root / "tmp"
    tmp.mkdir(exist_ok=True)
    tmp.chmod(0o1777)
    etc = root / "etc"
    etc.mkdir(exist_ok=True)
    for name in _ETC_FILES:
        src = Path("/etc") / name
        if src.is_file():
            shutil.copyfile(src, etc / name)
    for rel in _CA_BUNDLES:
        src = Path("/etc") / rel
        if src.is_file():
            (etc / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, etc / rel)
    if qemu is not None:
        dest = root / QEMU_IN_ROOT.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(qemu, dest)


def chroot_into(root: Path) -> Callable[[], None]:
    """A preexec function: chroot (needs root or CAP_SYS_CHROOT), then cwd = new /.

    Only two system calls run between fork and exec, so the usual preexec_fn hazard
    (locks held by other threads at fork time) does not arise.
    """
    target = str(root)

    def enter() -> None:
        os.chroot(target)
        os.chdir("/")

    return enter


def check_can_chroot() -> None:
    if os.geteuid() != 0:
        raise PermissionError(
            "extension_sandbox='no-python' uses chroot, which needs root (or CAP_SYS_CHROOT); "
            "run the tests as root (CI does) or leave extension_sandbox unset"
        )
