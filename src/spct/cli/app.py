"""The one typer application every ``spct`` sub-command registers on.

Command modules import heavy libraries (torch, transformers) inside the command
functions, so ``spct --help`` stays fast.
"""

import typer

app = typer.Typer(
    name="spct",
    help="Self-Principled Critique Tuning: curate data, judge, evaluate, train and serve generative reward models.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
