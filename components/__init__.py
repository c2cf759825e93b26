"""KFP v2 components: thin wrappers over ``spct.pipeline.stages``, run in the project image.

Each body imports ``spct`` inside the function: KFP ships a lightweight
component's source to the pod, where ``spct`` is installed in the image (and in
``.venv`` for ``kfp.local``); nothing is pip-installed at run time.
"""

from components.curate import curate
from components.deploy import deploy
from components.evaluate import evaluate
from components.metarm import metarm
from components.promote import promote
from components.register import register
from components.tracking import close_run, open_run
from components.train import coldstart, grpo, rft

__all__ = ["close_run", "coldstart", "curate", "deploy", "evaluate", "grpo", "metarm", "open_run", "promote", "register", "rft"]
