"""The Typer app of the ``hf-latent-bridge`` command line: every failure is one line.

A usage error (unknown option, a value out of its bounds...) and any error of the library end as one
``error: ...`` line on stderr and a non-zero exit code (2 for usage errors); a warning is one
``warning: ...`` line. ``HF_LATENT_BRIDGE_DEBUG=1`` shows the traceback instead. Outputs are staged
beside their destination and renamed into place, so a failed run leaves the previous output as it was.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

try:  # typer >= 0.20 vendors click as typer._click; older versions use click itself
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions

DEBUG_ENV = "HF_LATENT_BRIDGE_DEBUG"
_NO_ARGS_IS_HELP = getattr(click_exceptions, "NoArgsIsHelpError", ())  # click >= 8.2


class _OneLineErrors(TyperGroup):
    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, **kwargs: Any) -> Any:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # weight loading is quick; keep stderr for our bars
        standalone = kwargs.pop("standalone_mode", True)
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _warn
                result = super().main(args=args, prog_name=prog_name, standalone_mode=False, **kwargs)
            code = result if isinstance(result, int) else 0
        except _NO_ARGS_IS_HELP as error:  # no arguments: the help, as asked for
            typer.echo(error.ctx.get_help())
            code = 0
        except click_exceptions.UsageError as error:
            hint = f" (see: {error.ctx.command_path} --help)" if error.ctx is not None else ""
            code = _fail(f"{error.format_message()}{hint}", error.exit_code)
        except click_exceptions.ClickException as error:
            code = _fail(error.format_message(), error.exit_code)
        except typer.Abort:
            code = _fail("aborted.", 1)
        except Exception as error:
            if os.environ.get(DEBUG_ENV):
                raise
            ours = isinstance(error, (ValueError, OSError))  # the package's errors, and transformers' own
            code = _fail(str(error) if ours else f"{type(error).__name__}: {error}", 1)
        if standalone:
            sys.exit(code)
        return code


def _warn(message: Warning | str, *args: Any, **kwargs: Any) -> None:
    typer.echo(f"warning: {' '.join(str(message).split())}", err=True)


def _fail(message: str, code: int) -> int:
    typer.echo(f"error: {' '.join(str(message).split())}", err=True)
    return code


app = typer.Typer(
    name="hf-latent-bridge",
    cls=_OneLineErrors,
    help="Translate embeddings between encoders (inverse relative projection), and judge the result.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def command_line() -> str:
    """The command as typed, recorded in the reports a command writes."""
    return " ".join(["hf-latent-bridge", *sys.argv[1:]])
