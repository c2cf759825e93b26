"""The SPCT pipeline: curate -> [cold start] -> RFT -> GRPO -> meta RM -> evaluate -> register -> gate/promote -> deploy.

Wiring only: every step is a component from ``components/`` over ``spct`` library
calls. Compile with ``spct pipeline compile --out spct.yaml``; run locally with
``spct pipeline run --local --profile tiny``.
"""


from kfp import dsl

from components import close_run, coldstart, curate, deploy, evaluate, grpo, metarm, open_run, promote, register, rft
from components.image import DEFAULT_IMAGE
from pipelines.k8s import ClusterSettings, cpu_task, gpu_task


def build(settings: "ClusterSettings | None" = None):
    s = settings or ClusterSettings()

    @dsl.pipeline(name="spct", description="Self-Principled Critique Tuning of a generative reward model, gated into the registry")
    def spct_pipeline(
        image: str = DEFAULT_IMAGE,
        profile: str = "a100",
        base_model: str = "/models/gemma-2-27b-it",
        sources: list = ["builtin:verifiable?n=200&seed=1"],  # noqa: B006 - a KFP default, never mutated
        overrides: list = [],  # noqa: B006
        curate_limit: int = 0,
        eval_fraction: float = 0.1,
        tracking_uri: str = "http://spct-mlflow:5000",
        experiment: str = "spct",
        model_name: str = "spct-grm",
        coldstart_steps: int = 0,
        nodes: int = 1,
        workdir: str = "/workspace/runs",
        job: dict = {},  # noqa: B006
        tolerance: float = 0.01,
        min_parse_rate: float = 0.9,
        max_category_drop: float = 0.05,
        deploy_model: bool = True,
        namespace: str = "spct",
        serving_values: dict = {},  # noqa: B006
    ):
        key = dsl.PIPELINE_JOB_ID_PLACEHOLDER
        closing = close_run(tracking_uri=tracking_uri, experiment=experiment, run_key=key)
        cpu_task(closing.set_container_image(image), s, cpu="1", memory="2G")
        with dsl.ExitHandler(closing):
            run = open_run(tracking_uri=tracking_uri, experiment=experiment, run_key=key,
                           params={"profile": profile, "base_model": base_model, "nodes": nodes, "model_name": model_name})
            cpu_task(run.set_container_image(image), s, cpu="1", memory="2G")
            parent = run.output

            cur = curate(sources=sources, limit=curate_limit, eval_fraction=eval_fraction, tracking_uri=tracking_uri,
                         parent_run_id=parent)
            cpu_task(cur.set_container_image(image), s, cpu="4", memory="16G")

            common = dict(profile=profile, overrides=overrides, tracking_uri=tracking_uri, parent_run_id=parent,
                          nodes=nodes, workdir=workdir, job=job, cluster=s.job_defaults(), image=image)
            cs = coldstart(profile=profile, overrides=overrides, base_model=base_model, steps=coldstart_steps,
                           tracking_uri=tracking_uri, parent_run_id=parent, workdir=workdir)
            gpu_task(cs.set_container_image(image), s, train=True)
            r = rft(init=cs.outputs["model"], curated=cur.outputs["curated"], **common)
            gpu_task(r.set_container_image(image), s, train=True)
            g = grpo(init=r.outputs["model"], curated=cur.outputs["curated"], **common)
            gpu_task(g.set_container_image(image), s, train=True)
            m = metarm(grm=g.outputs["model"], rft_model=r.outputs["model"], curated=cur.outputs["curated"], **common)
            gpu_task(m.set_container_image(image), s, train=True)

            ev = evaluate(profile=profile, overrides=overrides, grm=g.outputs["model"], meta_rm=m.outputs["meta_rm"],
                          tracking_uri=tracking_uri, parent_run_id=parent)
            gpu_task(ev.set_container_image(image), s, train=False)
            reg = register(grm=g.outputs["model"], meta_rm=m.outputs["meta_rm"], results=ev.outputs["results"],
                           model_name=model_name, tracking_uri=tracking_uri, parent_run_id=parent)
            cpu_task(reg.set_container_image(image), s, cpu="2", memory="8G")
            gate = promote(model_name=model_name, version=reg.outputs["Output"], tolerance=tolerance,
                           min_parse_rate=min_parse_rate, max_category_drop=max_category_drop,
                           tracking_uri=tracking_uri, parent_run_id=parent)
            cpu_task(gate.set_container_image(image), s, cpu="1", memory="2G").set_caching_options(False)

            with dsl.If(deploy_model == True):  # noqa: E712 - a KFP condition, not a Python comparison
                with dsl.If(gate.outputs["promoted"] == True):  # noqa: E712
                    dep = deploy(model_name=model_name, namespace=namespace, values=serving_values,
                                 tracking_uri=tracking_uri, parent_run_id=parent)
                    cpu_task(dep.set_container_image(image), s, cpu="1", memory="2G").set_caching_options(False)

    return spct_pipeline


spct_pipeline = build()

if __name__ == "__main__":
    from kfp import compiler

    compiler.Compiler().compile(spct_pipeline, "spct_pipeline.yaml")
