"""Entry point of the multi-process tests (``torchrun ... audited_launch.py pretrain|sft ARGS``): ``mmed train``
with an audit hook that makes every rank but 0 fail on any write, rename or removal under the ``--out`` folder."""

from __future__ import annotations

import os
import sys
from typing import Any

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_CHANGES = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "shutil.rmtree", "os.truncate", "os.symlink",
            "os.link", "os.chmod", "os.utime", "shutil.copyfile", "shutil.move"}


def _paths(args: tuple[Any, ...]) -> list[str]:
    return [os.path.realpath(os.fsdecode(a)) for a in args if isinstance(a, (str, bytes, os.PathLike))]


def guard(out: str) -> None:
    """Raise PermissionError on this process's every change under ``out``."""
    root = os.path.realpath(out)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS)
            targets = _paths((path,)) if writing else []
        elif event in _CHANGES:
            targets = _paths(args)
        else:
            return
        for p in targets:
            if p == root or p.startswith(root + os.sep):
                raise PermissionError(f"rank {os.environ.get('RANK')} wrote under the output folder: {event} {p}")

    sys.addaudithook(hook)


if __name__ == "__main__":
    argv = sys.argv[1:]
    if int(os.environ.get("RANK", "0")) != 0:
        guard(argv[argv.index("--out") + 1])
    from mmedkit.train.cli import app

    app(argv, prog_name="mmed train")
