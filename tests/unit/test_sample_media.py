"""The test videos are made once per ffmpeg version and read back after that (sample_media)."""

import imageio_ffmpeg
import pytest

import sample_media


@pytest.fixture
def made(monkeypatch, tmp_path):
    """sample_set replaced by a quick one that counts its calls; ffmpeg by one whose version can change."""
    calls = []

    def quick_set(folder, seconds=4):
        calls.append(folder)
        (folder / "a.mp4").write_bytes(b"video")
        return {"a.mp4": folder / "a.mp4"}

    ffmpeg = tmp_path / "ffmpeg"
    monkeypatch.setattr(sample_media, "sample_set", quick_set)
    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", lambda: str(ffmpeg))

    def with_version(version):
        ffmpeg.write_text(f"#!/bin/sh\necho 'ffmpeg version {version} Copyright'\n")
        ffmpeg.chmod(0o755)

    with_version("7.1")
    return calls, with_version


def test_the_samples_are_made_once_then_read_back_read_only(made, tmp_path):
    calls, _ = made
    first = sample_media.cached_sample_set(tmp_path / "cache")
    again = sample_media.cached_sample_set(tmp_path / "cache")
    assert first == again and len(calls) == 1
    assert again["a.mp4"].read_bytes() == b"video"
    assert not again["a.mp4"].stat().st_mode & 0o222, "a test could change what the next run gets"


def test_another_ffmpeg_makes_them_again(made, tmp_path):
    calls, with_version = made
    first = sample_media.cached_sample_set(tmp_path / "cache")
    with_version("8.0")
    second = sample_media.cached_sample_set(tmp_path / "cache")
    assert len(calls) == 2 and first["a.mp4"].parent != second["a.mp4"].parent


def test_one_that_lost_the_race_uses_the_winners(made, tmp_path, monkeypatch):
    """Two processes at once (pytest-xdist's workers): the second's rename fails, and it uses the first's."""
    cache = tmp_path / "cache"

    def racing_set(folder, seconds=4):
        winner.mkdir(parents=True)
        (winner / "a.mp4").write_bytes(b"winner's")
        (folder / "a.mp4").write_bytes(b"loser's")
        return {"a.mp4": folder / "a.mp4"}

    monkeypatch.setattr(sample_media, "sample_set", racing_set)
    winner = cache / f"samples-{sample_media.cache_key(4)}"
    assert sample_media.cached_sample_set(cache)["a.mp4"].read_bytes() == b"winner's"
    assert [p.name for p in cache.iterdir()] == [winner.name], "the loser's copy is left behind"
