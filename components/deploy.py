from kfp import dsl

from components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE)
def deploy(model_name: str, version: str, namespace: str, release: str, image: str, serving_profile: str, values: dict,
           tracking_uri: str, parent_run_id: str, pull_secrets: list = []) -> str:  # noqa: B006 (a KFP default)
    """``helm upgrade --install`` the serving chart pinned to ``models:/NAME/VERSION`` with the run's image."""
    import json

    from spct.pipeline.stages import Tracking, deploy_stage

    result = deploy_stage(model_name, version, namespace, Tracking(tracking_uri, parent_run_id), release=release,
                          image=image, profile=serving_profile, values=values, pull_secrets=pull_secrets)
    return json.dumps(result, default=str)
