"""ffmpeg's error output is read as it comes and only what is needed is kept: the Duration line of
the source and the last few KiB (where ffmpeg says why it failed). Its log is as long as the file
makes it (a crafted file can make ffmpeg warn for every frame), up to the file-size limit of the
process, so keeping it whole would put hundreds of MB in the converter's memory or its /tmp."""

import sys
import threading
import tracemalloc

import pytest

from converter import ffmpeg
from converter.ffmpeg import ConversionFailed, convert

LOG_MIB = 64

# A stand-in for ffmpeg: its header with a duration (and a title that looks like one), then LOG_MIB
# MiB of warnings, some in one endless line, a progress report, its last words, and a failure.
NOISY_FFMPEG = f"""#!{sys.executable}
import sys
err = sys.stderr.buffer
err.write(b"Input #0, matroska,webm, from 'pipe:0':\\n  Metadata:\\n    Duration: 00:00:01.00, start\\n")
err.write(b"  Duration: 00:00:04.00, start: 0.000000, bitrate: 10 kb/s\\nOutput #0, mp3, to 'x.mp3':\\n")
err.flush()
print("out_time_us=1000000\\nprogress=continue", flush=True)
warning = b"[matroska @ 0x55] Invalid frame, skipping\\n" * 25000
for _ in range({LOG_MIB} // 2):
    err.write(warning)
err.write(b"x" * ({LOG_MIB} // 2 * 1024 * 1024))
err.write(b"\\nError while decoding stream #0:1: the last words\\n")
sys.exit(1)
"""


@pytest.fixture
def noisy_ffmpeg(tmp_path, monkeypatch):
    script = tmp_path / "ffmpeg"
    script.write_text(NOISY_FFMPEG)
    script.chmod(0o755)
    monkeypatch.setattr(ffmpeg, "ffmpeg_exe", lambda: str(script))


def test_a_huge_error_output_is_read_in_bounded_memory_and_its_end_is_the_reason(noisy_ffmpeg, samples, tmp_path):
    progress = []
    tracemalloc.start()
    try:
        with pytest.raises(ConversionFailed) as failure:
            convert(samples["video.mkv"], tmp_path / "out.mp3", cancel=threading.Event(), timeout=120,
                    max_duration=3600, on_progress=progress.append)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(failure.value) == "ffmpeg could not convert the file: Error while decoding stream #0:1: the last words"
    assert progress == [25]  # 1 s of the declared 4 s: the Duration line, not the title that looks like one
    assert peak < 4 * 1024 * 1024, f"{peak / 2**20:.0f} MiB held for a {LOG_MIB} MiB log"
    assert [path.name for path in tmp_path.iterdir()] == ["ffmpeg"], "the log was written to disk"
