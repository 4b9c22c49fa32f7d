"""The ``kataster`` command: thin commands that resolve arguments and call one function of
the API (:mod:`pipeline.api`), in modules by subject (``root``: the group and helpers;
``database``, ``data``, ``checks``, ``service``).

Exit codes (README, "Exit codes"): 0 success (also "already imported"), 1 the operation failed
and nothing was committed, 2 usage error, 3 timed out waiting for the import lock,
4 validation found ``error`` findings under ``--strict``.
"""

from __future__ import annotations

import sys

import click

# Importing the command modules registers their commands on the group.
from pipeline.cli import checks, data, database, service  # noqa: F401
from pipeline.cli.root import cli, error
from pipeline.config import mask_url
from pipeline.errors import KatasterError


def main():
    import psycopg

    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort as err:
        # click turns Ctrl-C into Abort; 130 is the shell's code for an interrupted command.
        if isinstance(err.__cause__, KeyboardInterrupt):
            error("interrupted; an import in progress kept nothing of its run")
            sys.exit(130)
        error("aborted")
        sys.exit(1)
    except click.ClickException as err:
        err.show()
        sys.exit(2)
    except KatasterError as err:
        error(mask_url(str(err)))
        sys.exit(err.exit_code)
    except psycopg.errors.InsufficientPrivilege as err:
        error(f"not allowed for this database role: {err.diag.message_primary} (reading "
             "commands need kataster_leser, owner look-ups kataster_eigentum, everything else "
             "the database's owner; see SECURITY.md)")
        sys.exit(1)
    sys.exit(0)
