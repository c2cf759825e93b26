from typing import NamedTuple

from kfp import dsl

from components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE)
def promote(
    model_name: str,
    version: str,
    tolerance: float,
    min_parse_rate: float,
    max_category_drop: float,
    require_above_baselines: bool,
    tracking_uri: str,
    parent_run_id: str,
) -> NamedTuple("Gate", [("promoted", bool), ("reasons", str)]):
    """The gate: ``champion`` moves to this version only if it holds up against the champion and the best
    promoted version on the same gate set. The thresholds arrive as run parameters whose defaults are
    ``GatePolicy``'s (pipelines/spct_pipeline.py); no default is restated here."""
    from collections import namedtuple

    from spct.pipeline.stages import Tracking, promote_stage
    from spct.registry.gate import GatePolicy

    policy = GatePolicy(tolerance=tolerance, min_parse_rate=min_parse_rate, max_category_drop=max_category_drop,
                        require_above_baselines=require_above_baselines)
    d = promote_stage(model_name, version, policy, Tracking(tracking_uri, parent_run_id))
    return namedtuple("Gate", ["promoted", "reasons"])(d["promoted"], "; ".join(d["reasons"]))
