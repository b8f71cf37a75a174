"""The Typer app of the ``hf-latent-bridge`` command line, and its one-line error plumbing.

Every failure ends as one line on stderr (``error: ...``) and a non-zero exit code; set
``HF_LATENT_BRIDGE_DEBUG=1`` to see the traceback instead. Outputs are written to a temporary sibling
and renamed into place, so an interrupted or failed run leaves nothing half-written.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import typer
from typer.core import TyperGroup

from ..errors import UsageError

try:  # typer >= 0.20 vendors click as typer._click; older versions use click itself
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions


DEBUG_ENV = "HF_LATENT_BRIDGE_DEBUG"


class _OneLineErrors(TyperGroup):
    """Usage errors (unknown option, missing argument...) as one line instead of a boxed panel."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, **kwargs: Any) -> Any:
        standalone = kwargs.pop("standalone_mode", True)
        try:
            result = super().main(args=args, prog_name=prog_name, standalone_mode=False, **kwargs)
        except click_exceptions.UsageError as error:
            hint = f" (see: {error.ctx.command_path} --help)" if error.ctx is not None else ""
            _fail(f"{error.format_message()}{hint}", error.exit_code, standalone)
            return None
        except click_exceptions.ClickException as error:
            _fail(error.format_message(), error.exit_code, standalone)
            return None
        except typer.Abort:
            _fail("aborted.", 1, standalone)
            return None
        except typer.Exit as exit_:
            result = exit_.exit_code
        code = result if isinstance(result, int) else 0
        if standalone:
            sys.exit(code)
        return result


def _fail(message: str, code: int, standalone: bool) -> None:
    typer.echo(f"error: {_one_line(message)}", err=True)
    if standalone:
        sys.exit(code)
    raise typer.Exit(code)


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


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


def _errors_as_one_line(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn any exception of a command into ``error: ...`` on stderr and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # weight loading is quick; keep stderr for our bars
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, click_exceptions.UsageError):
            raise
        except KeyboardInterrupt:
            typer.echo("error: interrupted; nothing was written.", err=True)
            raise typer.Exit(130) from None
        except Exception as error:
            if os.environ.get(DEBUG_ENV):
                raise
            message = (
                str(error)
                if isinstance(error, (UsageError, ValueError))
                else f"{type(error).__name__}: {error}"
            )
            typer.echo(f"error: {_one_line(message)}", err=True)
            raise typer.Exit(1) from None

    return wrapper


def _command_line() -> str:
    return " ".join(["hf-latent-bridge", *sys.argv[1:]]) if sys.argv else "hf-latent-bridge"
