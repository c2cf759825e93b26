from kfp import dsl

from components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE)
def open_run(tracking_uri: str, experiment: str, run_key: str, params: dict) -> str:
    """Create the MLflow pipeline run every stage nests under; returns its id."""
    from spct.pipeline.stages import open_pipeline_run

    return open_pipeline_run(tracking_uri, experiment, run_key, params)


@dsl.component(base_image=DEFAULT_IMAGE)
def close_run(tracking_uri: str, experiment: str, run_key: str, status: dsl.PipelineTaskFinalStatus):
    """Exit handler: end the MLflow pipeline run as FINISHED or FAILED, whatever happened in between."""
    from spct.pipeline.stages import close_pipeline_run_by_key

    close_pipeline_run_by_key(tracking_uri, experiment, run_key, status.state == "SUCCEEDED")
