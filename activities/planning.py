"""plan_partitions: list a node's inputs, plan its partitions, store the manifest as an artifact.

Only the manifest's URI, digest and counts go back through workflow history.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from temporalio import activity

from activities.errors import heartbeater, translate_errors
from parallels import artifacts, partitioning
from parallels.errors import InputError, TransientError
from parallels.models import PlanInput, PlanResult
from parallels.partitioning import FileEntry, InputListing

MANIFEST_PATH = "parallels/manifest.json"


class Planner:
    def __init__(self, client: MlflowClient, tracking_uri: str) -> None:
        self._client = client
        self._tracking_uri = tracking_uri

    @activity.defn(name="plan_partitions")
    @translate_errors
    async def plan_partitions(self, inp: PlanInput) -> PlanResult:
        return await asyncio.to_thread(self.plan, inp, heartbeater())

    def plan(self, inp: PlanInput, beat: Callable[[str], None] = lambda _: None) -> PlanResult:
        listings: list[InputListing] = []
        for spec in inp.inputs:
            if spec.source.node is not None:
                roots = inp.upstream_roots.get(spec.source.node)
                if roots is None:
                    raise InputError(
                        f"input '{spec.name}': node '{spec.source.node}' has no output"
                    )
            else:
                assert spec.source.uri is not None
                roots = [spec.source.uri]
            files: list[FileEntry] = []
            for i, root in enumerate(roots):
                beat(f"listing {spec.name} {i + 1}/{len(roots)}")
                files.extend(artifacts.list_files(root, i, self._tracking_uri))
            listing = InputListing(name=spec.name, mode=spec.partition, roots=roots, files=files)
            found = partitioning.clash(listing)
            if found:
                a, b = found
                raise InputError(
                    f"input '{spec.name}': '{a.path}' of {roots[a.root]} and '{b.path}' of "
                    f"{roots[b.root]} would be the same path in the input directory; give each "
                    "upstream partition's outputs distinct names (for example with "
                    "$PARALLELS_PARTITION_INDEX in the file name)"
                )
            listings.append(listing)
        manifest = partitioning.plan(listings, inp.parallelism)
        data = partitioning.manifest_bytes(manifest)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / Path(MANIFEST_PATH).name
                path.write_bytes(data)
                self._client.log_artifact(
                    inp.node_run_id, str(path), str(Path(MANIFEST_PATH).parent)
                )
        except MlflowException as e:
            raise TransientError(f"cannot store the partition manifest: {e.message}") from e
        s = partitioning.summary(manifest)
        return PlanResult(
            manifest_uri=f"runs:/{inp.node_run_id}/{MANIFEST_PATH}",
            digest=partitioning.digest(data),
            partitions=s["partitions"],
            files=s["files"],
            bytes=s["bytes"],
        )
