# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whole-file writes and the generation file, shared by the host modules, the host programs
and the controller's tools (standard library only: it is part of the host library).

A reader never sees half a file: each write goes to a temporary file beside its target and is
renamed over it."""

from __future__ import annotations

import os
import tempfile


def write_atomic(path, data, *, mode=0o644, dir_mode=0o755):
    """Write ``data`` (str or bytes) to ``path`` with ``mode``: a temporary file beside it, renamed
    over it. Its directory is made (``dir_mode``) when missing."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=dir_mode, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ocs-", dir=directory)
    try:
        with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as fh:
            fh.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def write_if_different(path, data, *, mode=0o644, check=False, dir_mode=0o755):
    """Write ``data`` to ``path`` (:func:`write_atomic`) unless it holds exactly that already.
    Returns whether it differed (check mode: would be written; nothing is written)."""
    try:
        with open(path, "rb" if isinstance(data, bytes) else "r") as fh:
            if fh.read() == data:
                return False
    except OSError:
        pass
    if not check:
        write_atomic(path, data, mode=mode, dir_mode=dir_mode)
    return True


def read_generation(path):
    """The generation a run recorded in ``path`` (an integer), or None when the file is absent or
    empty. ValueError, naming the file, when it holds anything else: a guard against rolling a
    host back must not be switched off by a damaged file."""
    try:
        with open(path) as fh:
            text = fh.read().strip()
    except FileNotFoundError:
        return None
    if not text:
        return None
    if not text.lstrip("-").isdigit():
        raise ValueError("%s holds %r, not a generation" % (path, text[:40]))
    return int(text)


def generation_or_none(path):
    """:func:`read_generation`, or None also when the file is damaged or unreadable: for the run lease
    (a run goes ahead and records its own) and the status report (informational). ocs-pull, which
    runs unattended, calls :func:`read_generation` and refuses a damaged file."""
    try:
        return read_generation(path)
    except (OSError, ValueError):
        return None


def write_generation(path, generation):
    """Record ``generation`` in ``path`` when it holds another one (or something else); whether it
    was written."""
    try:
        if read_generation(path) == generation:
            return False
    except ValueError:
        pass
    write_atomic(path, "%d\n" % generation)
    return True
