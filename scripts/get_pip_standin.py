"""Offline stand-in for the get-pip script that ansible-test's --venv downloads.

ansible-test runs it as ``python get_pip.py [pip options] PACKAGES``. This
bootstraps pip from the interpreter's own ensurepip, then installs the
requested packages from the configured package index, so sanity runs on
networks that reach a package index but not ansible-test's file host.
"""
import subprocess
import sys

DROPPED = ('--no-setuptools', '--no-wheel')

subprocess.check_call([sys.executable, '-m', 'ensurepip', '--upgrade'])
subprocess.check_call([sys.executable, '-m', 'pip', 'install'] + [arg for arg in sys.argv[1:] if arg not in DROPPED])
