"""Stand-in for pypa's get-pip.py, for ansible-test's pip bootstrap.

ansible-test (``--venv``) creates each sanity test's virtual environment
without pip and downloads get-pip.py from a host this machine cannot reach.
It first looks in its cache (``~/.ansible/test/cache/get_pip_<version>.py``):
tools/sanity/run seeds that cache with this file. It takes get-pip.py's
arguments (pip options and the packages to install), puts the interpreter's
bundled pip in place with ensurepip, then lets that pip install the requested
packages (pip itself pinned by ansible-test) from the package index.
"""

import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

if __name__ == "__main__":
    # In a child process: ensurepip points PIP_CONFIG_FILE at /dev/null in the
    # process that runs it, and the pip below needs the machine's pip settings.
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"],
                          stdout=subprocess.DEVNULL)
    args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY]
    sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "-q"] + args))
