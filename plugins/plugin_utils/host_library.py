# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host programs as one file: a zip application of the host library.

The ocs_agent role installs ``constants.HOST_ARCHIVE_PATH`` on every host: the
collection's own ``constants.HOST_LIBRARY`` files under their import path
(``constants.HOST_LIBRARY_PACKAGE``, namespace packages: a directory entry
each, no ``__init__.py``) and a ``__main__.py`` that runs one of
``constants.HOST_PROGRAMS`` by name::

    python3 -S /usr/lib/ocs-l3/ocs-l3.pyz restore --check

One file rather than one copy per module and program: Ansible compares one
checksum per host instead of twelve (a no-op converge of the molecule fabric
spent 57 s of 4.4 minutes in those copies). The bytes depend on the sources
only (sorted entries, fixed times and modes, stored uncompressed: no zlib
version can change them), so an unchanged collection is an unchanged file and
the role changes nothing. ``ocs_render`` builds it once per run into the build
directory; nothing else writes it.
"""

from __future__ import annotations

import io
import os
import zipfile

from ansible_collections.ocs.l3.plugins.module_utils import constants
from ansible_collections.ocs.l3.plugins.module_utils.files import write_if_different
from ansible_collections.ocs.l3.plugins.plugin_utils.render import COLLECTION_ROOT

BUILD_NAME = os.path.join(".host-library", os.path.basename(constants.HOST_ARCHIVE_PATH))
"""Where ``ocs_render`` writes the archive inside its build directory (not a host's directory name)."""

MAIN = '''\
"""ocs-l3 host programs (built by ocs_render from the collection; role ocs_agent).

Usage: python3 -S %(path)s {%(names)s} [ARGS...]   (PROGRAM --help for its options)
"""
import importlib
import sys

PROGRAMS = %(programs)r


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in PROGRAMS:
        sys.stderr.write(__doc__)
        return 2
    module = importlib.import_module("%(package)s." + PROGRAMS[sys.argv[1]])
    return module.main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
'''

_TIME = (1980, 1, 1, 0, 0, 0)


def _entry(name, mode):
    info = zipfile.ZipInfo(name, date_time=_TIME)
    info.create_system = 3  # Unix: the mode below is meaningful
    info.external_attr = mode << 16
    info.compress_type = zipfile.ZIP_STORED
    return info


def main_source():
    """The archive's ``__main__.py``."""
    programs = dict(constants.HOST_PROGRAMS)
    return MAIN % dict(path=constants.HOST_ARCHIVE_PATH, names=",".join(programs), programs=programs,
                       package=constants.HOST_LIBRARY_PACKAGE.replace("/", "."))


def archive_bytes(root=COLLECTION_ROOT):
    """The archive, as bytes: the same sources always give the same bytes."""
    source = os.path.join(root, "plugins", "module_utils")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(_entry("__main__.py", 0o100644), main_source())
        parts = constants.HOST_LIBRARY_PACKAGE.split("/")
        for i in range(1, len(parts) + 1):
            zf.writestr(_entry("/".join(parts[:i]) + "/", 0o40755), b"")
        for name in sorted(constants.HOST_LIBRARY):
            with open(os.path.join(source, name), "rb") as fh:
                zf.writestr(_entry("%s/%s" % (constants.HOST_LIBRARY_PACKAGE, name), 0o100644), fh.read())
    return buf.getvalue()


def write_archive(build_dir, root=COLLECTION_ROOT):
    """Write the archive under ``build_dir`` (replaced only when its bytes differ); return its path."""
    path = os.path.join(build_dir, BUILD_NAME)
    write_if_different(path, archive_bytes(root), dir_mode=0o700)
    return path
