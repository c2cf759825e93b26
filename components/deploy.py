from kfp import dsl

from components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE)
def deploy(model_name: str, namespace: str, values: dict, tracking_uri: str, parent_run_id: str) -> str:
    """Apply the KServe InferenceService serving ``models:/NAME@champion`` (spct.serving.deploy)."""
    import json

    from spct.pipeline.stages import Tracking, deploy_stage

    return json.dumps(deploy_stage(model_name, namespace, Tracking(tracking_uri, parent_run_id), values=values), default=str)
