"""schemathesis hooks (SCHEMATHESIS_HOOKS=tests.contract.hooks): uploads carry real, small videos, so that
the stateful phase gets jobs to follow from upload to job to download and delete.

The videos are the files named in CONTRACT_VIDEOS (os.pathsep-separated). A schema-valid upload is a
video, which the spec cannot say; schemathesis's negative phases send everything else."""

import os
from pathlib import Path

import schemathesis
from hypothesis import strategies as st

_videos = [Path(name).read_bytes() for name in os.environ.get("CONTRACT_VIDEOS", "").split(os.pathsep) if name]
if _videos:
    schemathesis.openapi.media_type("video/*", st.sampled_from(_videos))
