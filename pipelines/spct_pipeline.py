"""The SPCT pipeline: curate -> [cold start] -> RFT -> GRPO -> meta RM -> evaluate -> register -> gate/promote -> deploy.

Wiring only: every step is a component from ``components/`` over ``spct`` library
calls; which pod mounts what comes from ``pipelines/k8s.py``. Compile with
``spct pipeline compile --out spct.yaml``; run locally with ``spct pipeline run --local``.

Two choices are structural and so fixed at compile time, like the pods' GPU requests:
``ClusterSettings.nodes`` (> 1: RFT, GRPO and the meta RM run as CPU launchers of a
multi-node job instead of holding the GPUs of a pod that only waits) and ``coldstart``
(False: no cold-start task at all; RFT starts from ``base_model``).
"""


from kfp import dsl

from components import close_run, coldstart, curate, deploy, evaluate, grpo, metarm, open_run, promote, register, rft
from pipelines.k8s import ClusterSettings, cpu_task, gpu_task, launcher_task
from spct.k8s.settings import DEFAULT_IMAGE, gpu_toleration
from spct.registry.gate import GatePolicy
from spct.serving.deploy import RELEASE


GATE = GatePolicy()  # the thresholds are declared once, in spct.registry.gate


def build(settings: "ClusterSettings | None" = None, *, coldstart_stage: bool = False):
    s = settings or ClusterSettings()

    @dsl.pipeline(name="spct", description="Self-Principled Critique Tuning of a generative reward model, gated into the registry")
    def spct_pipeline(
        image: str = DEFAULT_IMAGE,
        profile: str = "a100",
        base_model: str = "/models/gemma-2-27b-it",
        sources: list = ["/data/train"],  # noqa: B006 - a KFP default, never mutated
        overrides: list = [],  # noqa: B006
        curate_limit: int = 0,
        eval_fraction: float = 0.1,
        tracking_uri: str = "http://spct-mlflow:5000",
        experiment: str = "spct",
        model_name: str = "spct-grm",
        coldstart_steps: int = 0,
        workdir: str = "/workspace/runs",
        job: dict = {},  # noqa: B006
        # The GPU node pool, as run parameters (a run can move pools without a recompile).
        gpu_node_selector: dict = s.node_selector,  # noqa: B006
        gpu_tolerations: list = [dict(t) for t in s.tolerations] or [gpu_toleration(s.accelerator)],  # noqa: B006
        # The gate: GatePolicy's defaults (the a100 profile's gate); `spct pipeline run` passes its profile's.
        tolerance: float = GATE.tolerance,
        min_parse_rate: float = GATE.min_parse_rate,
        max_category_drop: float = GATE.max_category_drop,
        require_above_baselines: bool = GATE.require_above_baselines,
        deploy_model: bool = True,
        namespace: str = "spct",
        serving_values: dict = {},  # noqa: B006
        serving_profile: str = "a100",
    ):
        key = dsl.PIPELINE_JOB_ID_PLACEHOLDER
        closing = close_run(tracking_uri=tracking_uri, experiment=experiment, run_key=key)
        cpu_task(closing.set_container_image(image), s, cpu="1", memory="2Gi")
        with dsl.ExitHandler(closing):
            run = open_run(tracking_uri=tracking_uri, experiment=experiment, run_key=key,
                           params={"profile": profile, "base_model": base_model, "nodes": s.nodes, "model_name": model_name,
                                   "image": image})
            cpu_task(run.set_container_image(image), s, cpu="1", memory="2Gi")
            parent = run.output

            cur = curate(sources=sources, limit=curate_limit, eval_fraction=eval_fraction, tracking_uri=tracking_uri,
                         parent_run_id=parent)
            cpu_task(cur.set_container_image(image), s, cpu="4", memory="16Gi", data=True)

            # The multi-node job's nodes: the compiled settings, the run's node pool, then the user's overrides.
            cluster = s.model_dump(mode="json", exclude={"nodes"}, exclude_none=True)
            common = dict(profile=profile, overrides=overrides, tracking_uri=tracking_uri, parent_run_id=parent,
                          nodes=s.nodes, workdir=workdir, job=job, cluster=cluster, image=image,
                          node_selector=gpu_node_selector, tolerations=gpu_tolerations)

            def place(task, train=True):
                task.set_container_image(image)
                if s.nodes > 1:
                    return launcher_task(task, s)
                return gpu_task(task, s, train=train, node_selector=gpu_node_selector, tolerations=gpu_tolerations)

            if coldstart_stage:
                cs = coldstart(profile=profile, overrides=overrides, base_model=base_model, steps=coldstart_steps,
                               tracking_uri=tracking_uri, parent_run_id=parent, workdir=workdir)
                gpu_task(cs.set_container_image(image), s, train=True, node_selector=gpu_node_selector,
                         tolerations=gpu_tolerations)
                r = rft(init=cs.outputs["model"], base_model=base_model, curated=cur.outputs["curated"], **common)
            else:
                r = rft(base_model=base_model, curated=cur.outputs["curated"], **common)
            place(r)
            g = grpo(init=r.outputs["model"], curated=cur.outputs["curated"], **common)
            place(g)
            m = metarm(grm=g.outputs["model"], rft_model=r.outputs["model"], curated=cur.outputs["curated"], **common)
            place(m)

            # The held-out guard and the response-only baseline read what this run trained on.
            # With a cold-start task its model is judged beside the GRM: what RFT and GRPO added, paired.
            ev = evaluate(profile=profile, overrides=overrides, grm=g.outputs["model"], meta_rm=m.outputs["meta_rm"],
                          curated=cur.outputs["curated"], coldstart_steps=coldstart_steps if coldstart_stage else 0,
                          tracking_uri=tracking_uri, parent_run_id=parent,
                          **({"coldstart": cs.outputs["model"]} if coldstart_stage else {}))
            # Evaluation reads eval.data (/data/...) and samples on the GPUs of its own pod.
            gpu_task(ev.set_container_image(image), s, train=False, node_selector=gpu_node_selector,
                     tolerations=gpu_tolerations, data=True)
            reg = register(grm=g.outputs["model"], meta_rm=m.outputs["meta_rm"], results=ev.outputs["results"],
                           model_name=model_name, tracking_uri=tracking_uri, parent_run_id=parent, workdir=workdir)
            # The model is on the checkpoint volume; the bundle is built there too, not in a KFP artifact.
            cpu_task(reg.set_container_image(image), s, cpu="2", memory="8Gi", checkpoints=True)
            gate = promote(model_name=model_name, version=reg.outputs["Output"], tolerance=tolerance,
                           min_parse_rate=min_parse_rate, max_category_drop=max_category_drop,
                           require_above_baselines=require_above_baselines, tracking_uri=tracking_uri, parent_run_id=parent)
            cpu_task(gate.set_container_image(image), s, cpu="1", memory="2Gi").set_caching_options(False)

            with dsl.If(deploy_model == True):  # noqa: E712 - a KFP condition, not a Python comparison
                with dsl.If(gate.outputs["promoted"] == True):  # noqa: E712
                    dep = deploy(model_name=model_name, version=reg.outputs["Output"], namespace=namespace,
                                 release=RELEASE, image=image, serving_profile=serving_profile, values=serving_values,
                                 tracking_uri=tracking_uri, parent_run_id=parent, pull_secrets=list(s.image_pull_secrets))
                    cpu_task(dep.set_container_image(image), s, cpu="1", memory="2Gi").set_caching_options(False)

    return spct_pipeline


spct_pipeline = build()

if __name__ == "__main__":
    from kfp import compiler

    compiler.Compiler().compile(spct_pipeline, "spct_pipeline.yaml")
